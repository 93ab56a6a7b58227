"""The workers' Celery app, configured from panelpaint's settings and the shared queue configuration.

Pools: the `render` queue runs the prefork pool with ONE child per GPU. The parent never touches
CUDA (importing torch does not initialise it); each child loads and warms the model in
`worker_process_init`, after the fork, so CUDA is initialised only where it is used. Prefork is
chosen over `--pool solo` because only prefork enforces the soft and hard time limits
(Celery #8395) and lets the parent survive, and report, a child killed by SIGKILL or the OOM
killer (`task_reject_on_worker_lost` then requeues the page; the job store caps attempts).
`worker_proc_alive_timeout` is raised so a slow model load is not mistaken for a dead child.
The `io` queue runs prefork with one child per core.
"""
from __future__ import annotations

import logging

from celery import Celery, signals

from panelpaint.queue import RENDER_QUEUE, celery_config
from panelpaint.settings import get_settings

log = logging.getLogger(__name__)

# The seconds a render child may take between fork and ready (model load + warm-up).
PROC_ALIVE_TIMEOUT = 300.0


def make_app(settings=None) -> Celery:
    settings = settings or get_settings()
    app = Celery("panelpaint", include=["worker.tasks"])
    app.conf.update(celery_config(settings))
    app.conf.update(
        worker_proc_alive_timeout=PROC_ALIVE_TIMEOUT,
        # A warm shutdown lets a running page reach its end; what is only reserved goes back.
        worker_soft_shutdown_timeout=0.0,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        # Long pages on a lost connection are not cancelled: the attempt fence handles a rerun.
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    return app


app = make_app()

# Queues this worker consumes, recorded in the parent before it forks its children.
consumed_queues: set[str] = set()


@signals.worker_init.connect
def _record_queues(sender=None, **_kwargs) -> None:
    consumed_queues.clear()
    consumed_queues.update(sender.app.amqp.queues.consume_from or ())


@signals.worker_process_init.connect
def _init_child(**_kwargs) -> None:
    """Load and warm the colouring model once per render child, after the fork. An io worker runs
    one child per core, so each of its children keeps OpenCV to one thread (no oversubscription)."""
    if RENDER_QUEUE not in consumed_queues:
        import cv2

        cv2.setNumThreads(1)
        return
    from worker.runtime import runtime

    try:
        runtime().load()
    except Exception:  # noqa: BLE001 - a missing model is reported per page, the worker keeps serving
        log.exception("model could not be loaded at start-up; renders will fail until it can")


def requeue_lost_renders(settings) -> list[int]:
    """Put back renders whose worker stopped reporting longer ago than the visibility timeout, and
    send their tasks again: the recovery for a message the broker itself lost (a Redis without an
    append-only file restarted, say). A message that still exists is restored by Redis at the same
    time; the duplicate finds the render claimed and stops, so this never doubles a page.

    Then send the renders that have waited queued longer than the visibility timeout while the
    broker holds no message for them: their message was never sent (the broker was down when the
    dashboard queued them) or was lost before any worker took it. Returns the ids sent again."""
    from panelpaint import queue
    from panelpaint.store import renders
    from panelpaint.store.db import Store

    # A short-lived engine: the parent forks pool children, which must not inherit open connections.
    store = Store(settings.database_url)
    try:
        with store.session() as s:
            lost = [(r.id, r.task_id) for r in renders.requeue_stale(s, lease_seconds=settings.visibility_timeout)]
        for render_id, task_id in lost:  # after the commit
            queue.enqueue_render(settings, render_id, task_id)
        if lost:
            log.warning("requeued renders whose worker was lost: %s", [r for r, _ in lost])
        with store.session() as s:
            waiting = [(r.id, r.task_id) for r in renders.waiting_since(s, settings.visibility_timeout)]
        unsent = []
        if waiting:
            held = queue.pending_task_ids(settings)  # read after the database: a render sent meanwhile is seen
            unsent = [(r, t) for r, t in waiting if t not in held]
        for render_id, task_id in unsent:
            queue.enqueue_render(settings, render_id, task_id)
        if unsent:
            with store.session() as s:
                renders.note_resent(s, [r for r, _ in unsent], "queued without a message in the broker")
            log.warning("sent renders that were queued but never sent: %s", [r for r, _ in unsent])
    finally:
        store.dispose()
    return [r for r, _ in lost] + [r for r, _ in unsent]


def resend_stalled_uploads(settings) -> list[int]:
    """Send again the unpack task of uploads that made no progress for longer than the visibility
    timeout while the broker holds no message for them (it was lost, or never sent because the
    broker was down when the dashboard stored the upload). The unpack resumes at the first entry
    it did not add, so a duplicate only finds nothing to do. Returns the upload ids sent."""
    from panelpaint import queue
    from panelpaint.store import uploads
    from panelpaint.store.db import Store

    store = Store(settings.database_url)
    try:
        with store.session() as s:
            stalled = [(u.id, u.task_id) for u in uploads.stalled(s, settings.visibility_timeout)]
    finally:
        store.dispose()
    if not stalled:
        return []
    held = queue.pending_task_ids(settings, queues=(queue.IO_QUEUE,))
    resent = [(u, t) for u, t in stalled if t not in held]
    for upload_id, task_id in resent:
        queue.enqueue_unpack(settings, upload_id, task_id)
    if resent:
        log.warning("sent uploads whose unpacking had stalled without a message: %s", [u for u, _ in resent])
    return [u for u, _ in resent]


@signals.worker_ready.connect
def _start_janitor(sender=None, **_kwargs) -> None:
    """Render workers sweep for lost renders and stalled uploads on their event loop's timer (no
    thread: the parent forks)."""
    if RENDER_QUEUE not in consumed_queues or sender is None:
        return
    settings = get_settings()

    def sweep() -> None:
        try:
            requeue_lost_renders(settings)
            resend_stalled_uploads(settings)
        except Exception:  # noqa: BLE001 - a sweep that fails (database down) is tried again next time
            log.warning("sweep for lost renders and uploads failed", exc_info=True)

    sender.timer.call_repeatedly(max(2.0, min(300.0, settings.visibility_timeout / 4)), sweep)
