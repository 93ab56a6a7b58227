"""Uploads: ZIP/CBZ archives (and the images sent with them) that an io worker unpacks into pages,
resumably and in the order they were sent (docs/architecture.md, "Uploads"). The caller commits
a new upload, then enqueues its unpack task with `upload.task_id`."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from panelpaint.limits import NAME_MAX, TEXT_MAX
from panelpaint.store import batches, renders
from panelpaint.store.errors import IllegalTransition, InvalidInput, NotFound
from panelpaint.store.events import log_event
from panelpaint.store.schema import Batch, Page, Render, RunStatus, Upload, utcnow
from panelpaint.store.storage import validate_key
from panelpaint.store.styles import require_style

UNFINISHED = (RunStatus.queued, RunStatus.running)


def _log(session: Session, kind: str, upload: Upload, **data: Any) -> None:
    studio_id = session.scalar(sa.select(Batch.studio_id).where(Batch.id == upload.batch_id))
    log_event(session, kind, studio_id=studio_id, batch_id=upload.batch_id, data={"upload_id": upload.id, **data})


def create_upload(session: Session, batch_id: int, files: list[dict[str, Any]], *, user_id: int | None = None,
                  style_id: int | None = None) -> Upload:
    """A queued upload of `files`, in page order: [{"name": label, "key": storage key, "archive":
    bool, "pages": images listed}] or [{"name": label, "error": why}] for a file already refused
    (it becomes a failed page in its place). `style_id` is the pages' own style, if any."""
    batch = batches.lock_batch(session, batch_id)
    if batch.cancelled:
        raise IllegalTransition(f"batch {batch_id} is cancelled")
    require_style(session, batch.studio_id, style_id)
    if not files:
        raise InvalidInput("an upload needs at least one file")
    clean = []
    for f in files:
        name = str(f.get("name") or "upload")[:NAME_MAX]
        if f.get("error"):
            clean.append({"name": name, "error": str(f["error"])[:TEXT_MAX]})
            continue
        clean.append({"name": name, "key": validate_key(f.get("key")), "archive": bool(f.get("archive")),
                      "pages": int(f.get("pages") or 1)})
    upload = Upload(batch_id=batch_id, created_by_id=user_id, files=clean, style_id=style_id,
                    status=RunStatus.queued, next_file=0, next_entry=0, pages_added=0, task_id=str(uuid.uuid4()))
    session.add(upload)
    session.flush()
    _log(session, "upload.queued", upload, files=[f["name"] for f in clean])
    return upload


def earlier_unfinished(session: Session, upload: Upload) -> bool:
    """True while an upload of the same batch made before this one is still being unpacked."""
    return session.scalar(sa.select(sa.func.count(Upload.id)).where(
        Upload.batch_id == upload.batch_id, Upload.id < upload.id, Upload.status.in_(UNFINISHED))) > 0


def start_upload(session: Session, upload_id: int) -> Upload | None:
    """The upload, now running, for a worker to go on with from (`next_file`, `next_entry`); None
    when there is nothing to do (finished, cancelled, or its batch was cancelled: then cancelled)."""
    upload = session.get(Upload, upload_id, populate_existing=True)
    if upload is None:
        raise NotFound(f"upload {upload_id} does not exist")
    if upload.status not in UNFINISHED:
        return None
    if session.scalar(sa.select(Batch.cancelled).where(Batch.id == upload.batch_id)):
        finish_upload(session, upload_id, RunStatus.cancelled, "the batch was cancelled")
        return None
    if upload.status == RunStatus.queued:
        upload.status = RunStatus.running
        upload.updated_at = utcnow()
        session.flush()
        _log(session, "upload.started", upload)
    return upload


def add_page(session: Session, upload_id: int, file_index: int, entry_index: int, name: str, key: str | None,
             width: int | None, height: int | None, error: str | None = None, *,
             last_of_file: bool = False) -> tuple[Page, Render | None] | None:
    """Add the page for entry `entry_index` of file `file_index` (failed with `error`, or queued with
    a render) and advance the upload past it (past the file, with `last_of_file`). Returns None,
    adding nothing, when the upload is not at that entry any more (another delivery added it)
    or no longer running (cancelled). The caller commits, then enqueues the render."""
    upload = session.get(Upload, upload_id)
    if upload is None:
        raise NotFound(f"upload {upload_id} does not exist")
    batch = batches.lock_batch(session, upload.batch_id)  # batch first, then upload: as cancel_batch
    if batch.cancelled:
        return None
    advance = {"next_file": file_index + 1, "next_entry": 0} if last_of_file else {"next_entry": entry_index + 1}
    moved = session.execute(
        sa.update(Upload)
        .where(Upload.id == upload_id, Upload.status == RunStatus.running, Upload.next_file == file_index,
               Upload.next_entry == entry_index)
        .values(pages_added=Upload.pages_added + 1, updated_at=utcnow(), **advance)
        .execution_options(synchronize_session=False)
    ).rowcount
    if moved != 1:
        return None
    page = batches.add_page(session, upload.batch_id, name, key, width, height, error, style_id=upload.style_id)
    render = None
    if page.status == RunStatus.queued:
        render = renders.queue_new_page(session, page.id, user_id=upload.created_by_id)
    return page, render


def file_done(session: Session, upload_id: int, file_index: int) -> None:
    """Move the upload past file `file_index` (once: a repeat for the same file does nothing)."""
    session.execute(
        sa.update(Upload).where(Upload.id == upload_id, Upload.status == RunStatus.running,
                                Upload.next_file == file_index)
        .values(next_file=file_index + 1, next_entry=0, updated_at=utcnow())
        .execution_options(synchronize_session=False))


def finish_upload(session: Session, upload_id: int, status: RunStatus = RunStatus.succeeded,
                  error: str | None = None) -> Upload:
    """End an unfinished upload (succeeded, failed or cancelled); a finished one is left as it is."""
    upload = session.get(Upload, upload_id, populate_existing=True)
    if upload is None:
        raise NotFound(f"upload {upload_id} does not exist")
    if upload.status in UNFINISHED:
        upload.status, upload.error, upload.finished_at = status, error, utcnow()
        upload.updated_at = upload.finished_at
        session.flush()
        _log(session, f"upload.{status.value}", upload, pages=upload.pages_added, error=error)
    return upload


def unfinished(session: Session, batch_id: int) -> list[Upload]:
    """The batch's uploads still being unpacked, oldest first (shown on the batch page)."""
    return unfinished_many(session, [batch_id])[batch_id]


def unfinished_many(session: Session, batch_ids: list[int]) -> dict[int, list[Upload]]:
    """`unfinished` of several batches in one query (for a list page); every id maps to a list."""
    out: dict[int, list[Upload]] = {i: [] for i in batch_ids}
    if batch_ids:
        for upload in session.scalars(sa.select(Upload).where(Upload.batch_id.in_(batch_ids),
                                                              Upload.status.in_(UNFINISHED)).order_by(Upload.id)):
            out[upload.batch_id].append(upload)
    return out


def stalled(session: Session, seconds: float) -> list[Upload]:
    """Unfinished uploads of batches not cancelled without progress for `seconds`: candidates for a
    lost unpack message (the janitor re-sends those the broker does not hold)."""
    cutoff = utcnow() - dt.timedelta(seconds=seconds)
    return list(session.scalars(
        sa.select(Upload).join(Batch, Upload.batch_id == Batch.id)
        .where(Upload.status.in_(UNFINISHED), Upload.updated_at < cutoff, Batch.cancelled.is_(False))
        .order_by(Upload.id)))


def note_resent(session: Session, upload_id: int, seconds: float) -> bool:
    """The janitor's guard before it sends an upload's unpack task again: one UPDATE that matches
    only while the upload is still unfinished without progress for `seconds`, and counts as
    progress, so of two sweeps only one sends it. True when this caller won."""
    now = utcnow()
    won = session.execute(
        sa.update(Upload).where(Upload.id == upload_id, Upload.status.in_(UNFINISHED),
                                Upload.updated_at < now - dt.timedelta(seconds=seconds))
        .values(updated_at=now).execution_options(synchronize_session=False)).rowcount == 1
    if won:
        upload = session.get(Upload, upload_id, populate_existing=True)
        _log(session, "upload.resent", upload, task_id=upload.task_id)
    return won
