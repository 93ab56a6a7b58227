"""The paper's networks, line extraction, training, evaluation and the Colorizer inference pipeline.

Imports torch, numpy and Pillow only: nothing here knows about queues, databases or web pages.
"""
