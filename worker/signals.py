"""Points on a page's way through the worker that other code may observe (Celery signals).

Nothing in the service connects to them; tests do, to land a fault at an exact stage
(`tests/worker/fault_plugin.py`, loaded into test workers with `--include`). Receivers run in the
task's process, synchronously; an exception in one is logged by Celery, never raised.
"""
from __future__ import annotations

from celery.utils.dispatch import Signal

# A render task has claimed a page and loaded its inputs: name=str (the page's source name).
page_loaded = Signal(name="page_loaded", providing_args={"name"})
# A page's panels are about to be coloured: name=str, panels=int.
page_colouring = Signal(name="page_colouring", providing_args={"name", "panels"})
# A finishing task is at a panel boundary, before reporting progress: name=str, done=int, total=int.
panel_finished = Signal(name="panel_finished", providing_args={"name", "done", "total"})
