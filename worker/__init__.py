"""Celery workers: the `render` queue (one process per GPU) and the `io` queue (CPU work)."""
