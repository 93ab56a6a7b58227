"""The render workers' janitor: send again the renders and uploads whose message the broker lost or never got.

Run on the parent's event-loop timer (`celery_app._start_janitor`), each sweep with a short-lived
engine, since the parent forks pool children that must not inherit open connections.
"""
from __future__ import annotations

import logging

from panelpaint import queue
from panelpaint.settings import Settings
from panelpaint.store import renders, work
from panelpaint.store.db import Store

log = logging.getLogger(__name__)


def requeue_lost_renders(settings: Settings) -> list[int]:
    """Put back renders whose worker stopped reporting longer ago than the visibility timeout, and
    send their tasks again: the recovery for a message the broker itself lost (a Redis without an
    append-only file restarted, say). A message that still exists is restored by Redis at the same
    time; the duplicate finds the render claimed and stops, so this never doubles a page.

    Then send the renders that have waited queued longer than the visibility timeout while the
    broker holds no message for them: their message was never sent (the broker was down when the
    dashboard queued them) or was lost before any worker took it. Returns the ids sent again."""
    # A short-lived engine: the parent forks pool children, which must not inherit open connections.
    store = Store(settings.database_url)
    try:
        with store.session() as s:
            lost = [(r.id, r.task_id) for r in work.requeue_lost(s, settings.visibility_timeout)]
        for render_id, task_id in lost:  # after the commit
            queue.enqueue_render(settings, render_id, task_id)
        if lost:
            log.warning("requeued renders whose worker was lost: %s", [r for r, _ in lost])
        with store.session() as s:
            waiting = [(r.id, r.task_id) for r in work.waiting_renders(s, settings.visibility_timeout)]
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


def resend_stalled_uploads(settings: Settings) -> list[int]:
    """Send again the unpack task of uploads that made no progress for longer than the visibility
    timeout while the broker holds no message for them (it was lost, or never sent because the
    broker was down when the dashboard stored the upload). The unpack resumes at the first entry
    it did not add, so a duplicate only finds nothing to do. Returns the upload ids sent."""
    store = Store(settings.database_url)
    try:
        with store.session() as s:
            stalled = [(u.id, u.task_id) for u in work.stalled_uploads(s, settings.visibility_timeout)]
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
