"""The Celery tasks, addressed by the names in `panelpaint.queue`: thin shims over the worker's steps.

Delivery is at least once (acks_late, reject_on_worker_lost), so every step is idempotent. Each
shim takes this process's resources and the settings, runs its step, and sends the task again
later when the step says so or a fault outside the job store's record (database or Redis
unreachable) stops it (`faults.retried_later`).
"""
from __future__ import annotations

from panelpaint import queue
from panelpaint.settings import get_settings
from worker import finish, ingest, render, resources, webhooks
from worker.celery_app import app
from worker.faults import MAX_UNRECORDED_RETRIES, TRANSIENT, retried_later


@app.task(name=queue.TASK_RENDER, bind=True, max_retries=MAX_UNRECORDED_RETRIES)
def render_page(self, render_id: int) -> dict | None:
    """Colour a page and the queued pages after it with the same style; hand each off to finishing."""
    # Nothing recorded on the render (say, the database is unreachable): run again later. A claimed
    # render then waits out its lease and is taken over with attempt + 1.
    with retried_later(self, Exception):
        return render.render(resources.current(), get_settings(), render_id,
                             worker=self.request.hostname or "worker", task_id=self.request.id)


@app.task(name=queue.TASK_FINISH, bind=True, max_retries=8)
def finish_page(self, render_id: int, attempt: int, handoff_key: str) -> dict | None:
    """Finish a coloured page, encode its deliverables, store them, and complete the render (fenced by attempt)."""
    with retried_later(self, *TRANSIENT):
        return finish.finish(resources.current(), get_settings(), render_id, attempt, handoff_key)


@app.task(name=queue.TASK_INGEST, bind=True, max_retries=8)
def ingest_page(self, page_id: int) -> dict | None:
    """Detect a new page's panels and cut the network's inputs for them ahead of its render."""
    with retried_later(self, *TRANSIENT):
        return ingest.ingest(resources.current(), get_settings(), page_id)


@app.task(name=queue.TASK_WEBHOOK, bind=True, max_retries=8)
def deliver_webhook(self, delivery_id: int, attempt: int) -> dict | None:
    """POST one attempt of a webhook delivery (signed) and record the endpoint's answer."""
    with retried_later(self, *TRANSIENT):
        return webhooks.deliver(resources.current(), get_settings(), delivery_id, attempt)


@app.task(name=queue.TASK_UNPACK, bind=True, max_retries=MAX_UNRECORDED_RETRIES)
def unpack_upload(self, upload_id: int) -> dict | None:
    """Turn an upload's archives (and the images sent with them) into pages, in order."""
    with retried_later(self, *TRANSIENT):
        return ingest.unpack_upload(resources.current(), get_settings(), upload_id, self.request.id)
