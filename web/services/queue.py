"""Sending committed work to the workers by task name (never before the commit), and what the
workers and queues are doing now."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import current_app

from panelpaint import queue
from panelpaint.store import batches as batch_store
from panelpaint.store.schema import Render, Upload

from . import services
from .errors import QueueUnavailable


def _unreachable(exc: Exception, what: str) -> QueueUnavailable:
    current_app.logger.exception("enqueue failed")
    return QueueUnavailable(f"Saved, but the work queue cannot be reached ({type(exc).__name__}); {what} "
                            "Tell your administrator.")


def _rank(batch_id: int) -> int:
    """The batch's rank now (`store.batches.queue_rank`), read without the write lock."""
    with services().store.reading() as session:
        return batch_store.queue_rank(session, batch_id)


def enqueue(renders: Iterable[Render], ingest_pages: Iterable[int] = (), *, batch_id: int | None = None) -> None:
    """Panel detection for new pages first, then their renders, each under the task id the job
    store made for it (`render.task_id`), so a cancel revokes exactly that id. New pages of
    `batch_id` go at its rank (older batches first, `panelpaint.queue.PRIORITY_STEPS`); a retry or
    re-render of a page goes first. Raises `QueueUnavailable` when the broker cannot be reached:
    the rows stay queued in the job store."""
    settings = services().settings
    rank = _rank(batch_id) if batch_id is not None else 0
    try:
        for page_id in ingest_pages:
            queue.enqueue_ingest(settings, page_id, rank)
        for render in renders:
            queue.enqueue_render(settings, render.id, task_id=render.task_id, rank=rank)
    except Exception as exc:  # noqa: BLE001 - kombu/redis raise many types; the user must hear of it
        raise _unreachable(exc, "the pages stay queued until it is back.") from None


def enqueue_unpack(upload: Upload) -> None:
    """Send a committed upload to the io workers at its batch's rank; `QueueUnavailable` as for `enqueue`."""
    rank = _rank(upload.batch_id)
    try:
        queue.enqueue_unpack(services().settings, upload.id, upload.task_id, rank=rank)
    except Exception as exc:  # noqa: BLE001 - kombu/redis raise many types; the user must hear of it
        raise _unreachable(exc, "the archive is unpacked once it is back.") from None


def revoke(task_ids: list[str]) -> None:
    if task_ids:
        queue.revoke(services().settings, task_ids)


def snapshot(*, with_workers: bool = True) -> dict[str, Any]:
    """Queue lengths now and, `with_workers`, the live workers; an unreachable broker is reported,
    not raised. Asking the workers waits for their replies (a second when none answers), so the
    workers screen is drawn without them and fetches them at once (`with_workers` in its JSON)."""
    settings = services().settings
    data: dict[str, Any] = {"workers": [], "queues": {}, "error": None, "flower_url": settings.flower_url}
    try:
        data["queues"] = queue.queue_lengths(settings)
        if with_workers:
            data["workers"] = queue.live_workers(settings, timeout=1.0)
    except Exception as exc:  # noqa: BLE001 - redis/kombu raise many types; the page must still render
        data["error"] = f"The queue broker cannot be reached ({type(exc).__name__}: {exc})."
    return data
