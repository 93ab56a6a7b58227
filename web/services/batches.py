"""Batches and their pages: finding them in the user's studio, submitting pages (images and
archives), retrying, cancelling, and the status summaries the dashboard and the API show."""
from __future__ import annotations

import enum
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from flask import url_for
from flask_login import current_user
from werkzeug.datastructures import FileStorage

from panelpaint.images import ImageError
from panelpaint.thumbnails import thumbnail_kind
from panelpaint.store import batches as batch_store
from panelpaint.store import renders as render_store
from panelpaint.store import uploads as upload_store
from panelpaint.store.batches import PREVIEW_OPTION
from panelpaint.store.errors import IllegalTransition, InvalidInput, NotFound
from panelpaint.store.rates import BatchRate, batch_rate
from panelpaint.store.schema import Batch, Page, Panel, Render, RenderStage, RunStatus, as_utc, utcnow
from panelpaint.store.schema import Upload as UploadRow
from panelpaint.unpack import image_suffix, store_page_image

from ..polling import inputs_tag
from . import db, queue, services
from .errors import QueueUnavailable
from .fields import optional_id, parse_direction, parse_options, parse_tags
from .styles import add_style
from .uploads import PageFile, StoredArchive, expand_files, has_archive

PAGE_THUMB = 360  # the thumbnail size of a page in lists (one of limits.THUMB_SIZES)
NO_PAGES = "No page images in the upload: archives are searched for PNG, JPEG, TIFF and WebP files."


@dataclass
class Submitted:
    """What one submission made: the batch, its new pages (failed ones carry their error)."""

    batch: Batch
    pages: list[Page] = field(default_factory=list)
    warning: str | None = None  # e.g. saved but the queue broker was unreachable
    unpacking: UploadRow | None = None  # archives (and the files sent with them) an io worker unpacks

    @property
    def failed(self) -> list[Page]:
        return [p for p in self.pages if p.status == RunStatus.failed]


# --- the user's studio's rows (`NotFound` for another studio's, like a missing one) ---------------

def get_batch(batch_id: int) -> Batch:
    return _found(batch_store.get_batch(db(), current_user.studio_id, batch_id), "batch", batch_id)


def get_page(page_id: int) -> Page:
    return _found(batch_store.get_page(db(), current_user.studio_id, page_id), "page", page_id)


def get_render(render_id: int) -> Render:
    return _found(batch_store.get_render(db(), current_user.studio_id, render_id), "render", render_id)


def _found(row, what: str, row_id: int):  # noqa: ANN001, ANN202 - an ORM row or None
    if row is None:
        raise NotFound(f"{what} {row_id} does not exist")
    return row


def list_batches(*, limit: int = 100, offset: int = 0, previews: bool = True) -> list[Batch]:
    """The studio's batches, newest first; without `previews`, style previews are left out."""
    rows = batch_store.list_batches(db(), current_user.studio_id, limit=limit, offset=offset)
    return rows if previews else [b for b in rows if not is_preview(b)]


def is_preview(batch: Batch) -> bool:
    return PREVIEW_OPTION in (batch.options or {})


def list_renders(page: Page) -> list[Render]:
    """Every render of the page, newest first."""
    return batch_store.list_renders(db(), current_user.studio_id, page.id)


# --- submitting pages ------------------------------------------------------------------------------

def create_from_form(form, files: list[FileStorage], style_file: FileStorage | None) -> Submitted:  # noqa: ANN001
    """A new batch from the new-batch form (the dashboard's or the API's): its name, a style from
    the library (`style_id`) or uploaded with it (`style_file`, named `style_name`, tagged
    `style_tags`), reading direction and options."""
    if style_file is not None and style_file.filename:
        style_id = add_style(form.get("style_name") or "Uploaded style", parse_tags(form.get("style_tags")),
                             style_file).id
    else:
        style_id = optional_id(form, "style_id")
    return create_batch(form.get("name", ""), style_id, parse_direction(form.get("direction")), parse_options(form),
                        files)


def create_batch(name: str, style_id: int | None, direction: str, options: dict[str, Any],
                 files: list[FileStorage]) -> Submitted:
    """A new batch with its pages; `InvalidInput` says what is wrong (nothing is kept then)."""
    if style_id is None:
        raise InvalidInput("Choose a style from the library or upload one.")
    uploads = _uploads(files)
    try:
        batch = batch_store.create_batch(db(), current_user.studio_id, current_user.id, name,
                                         default_style_id=style_id, direction=direction, options=options)
    except NotFound:
        raise InvalidInput("That style is not in your studio's library.") from None
    db().commit()
    return _add_uploads(batch, uploads, for_worker=has_archive(files))


def add_pages(batch: Batch, files: list[FileStorage], style_id: int | None = None) -> Submitted:
    """Add uploaded files (images, ZIP/CBZ archives) to a batch, then enqueue the good pages."""
    if batch.cancelled:
        raise IllegalTransition("This batch is cancelled; start a new batch instead.")
    # While an archive is still being unpacked into this batch, later files wait their turn behind it.
    later = bool(upload_store.unfinished(db(), batch.id))
    uploads = _uploads(files)
    db().commit()  # end the transaction that found the batch before decoding starts
    return _add_uploads(batch, uploads, style_id, for_worker=later or has_archive(files))


def _uploads(files: list[FileStorage]) -> Iterator[PageFile | StoredArchive]:
    """The uploads as pages, refusing (`InvalidInput`) an upload that holds no page at all."""
    if not any(f.filename for f in files):
        raise InvalidInput("Choose at least one page image or a ZIP/CBZ archive.")
    uploads = expand_files(files)
    first = next(uploads, None)
    if first is None:
        raise InvalidInput(NO_PAGES)
    return itertools.chain([first], uploads)


def _add_uploads(batch: Batch, uploads: Iterator[PageFile | StoredArchive], style_id: int | None = None, *,
                 for_worker: bool = False) -> Submitted:
    """Store each page and commit it on its own, then enqueue the good ones; or, with `for_worker`
    (the files include a ZIP/CBZ archive), store the files as they are for an io worker to unpack.

    The slow part, decoding every upload, thus never runs inside a write transaction: on SQLite that
    would hold the database's write lock and stall the workers' progress reports for the whole upload.
    """
    if for_worker:
        return _upload_for_worker(batch, uploads, style_id)
    result = Submitted(batch)
    renders = []
    for upload in uploads:
        try:
            page, render = _store_page(batch, upload, style_id)
        except IllegalTransition:
            db().rollback()
            result.warning = "The batch was cancelled during the upload; the remaining files were not added."
            break
        db().commit()
        result.pages.append(page)
        if render is not None:
            renders.append(render)
    try:
        queue.enqueue(renders, [r.page_id for r in renders], batch_id=batch.id)
    except QueueUnavailable as exc:
        result.warning = str(exc)
    return result


def _store_page(batch: Batch, upload: PageFile, style_id: int | None) -> tuple[Page, Render | None]:
    """Record one uploaded page: a readable image is stored and queued, anything else is a failed page."""
    error = upload.error
    key = width = height = None
    if error is None:
        try:
            key, width, height = store_page_image(upload.data, upload.name, services().storage,
                                                  services().settings.max_image_pixels)
        except ImageError as exc:
            error = exc.message
    page = batch_store.add_page(db(), batch.id, upload.name, key, width, height, error, style_id=style_id)
    render = None
    if page.status == RunStatus.queued:
        render = render_store.queue_new_page(db(), page.id, user_id=current_user.id)
    return page, render


def _upload_for_worker(batch: Batch, items: Iterator[PageFile | StoredArchive], style_id: int | None) -> Submitted:
    """Archives are stored whole (checked already) and images as they came, in the order sent;
    one `Upload` row lists them and the io worker turns them into pages in that order."""
    files = []
    for item in items:
        if isinstance(item, StoredArchive):
            files.append({"name": item.name, "key": item.key, "archive": True, "pages": item.pages})
        elif item.error:
            files.append({"name": item.name, "error": item.error})
        else:
            files.append({"name": item.name, "key": services().storage.put_bytes(item.data, image_suffix(item.data))})
    result = Submitted(batch)
    try:
        upload = upload_store.create_upload(db(), batch.id, files, user_id=current_user.id, style_id=style_id)
    except IllegalTransition:
        db().rollback()
        result.warning = "The batch was cancelled during the upload; the files were not added."
        return result
    db().commit()
    result.unpacking = upload
    try:
        queue.enqueue_unpack(upload)
    except QueueUnavailable as exc:
        result.warning = str(exc)
    return result


def retry(page: Page) -> Render:
    """Queue a failed page again (`IllegalTransition` unless it failed and can be read)."""
    render = render_store.retry_page(db(), page.id, user_id=current_user.id)
    db().commit()
    queue.enqueue([render])
    return render


def colour_anyway(page: Page) -> Render:
    """Colour a page that was skipped as already coloured (`IllegalTransition` unless it was)."""
    render = render_store.colour_anyway(db(), page.id, user_id=current_user.id)
    db().commit()
    queue.enqueue([render])
    return render


def retry_failed(batch: Batch) -> tuple[int, list[str]]:
    """Queue every failed page of the batch again: (how many, names of unreadable uploads skipped)."""
    retried, skipped = 0, []
    for page in batch.pages:
        if page.status == RunStatus.failed:
            if page.source_key is None:
                skipped.append(page.source_name)
                continue
            retry(page)
            retried += 1
    return retried, skipped


def cancel(batch: Batch) -> int:
    """Cancel a batch; queued work is revoked after the commit. Returns how many renders were dropped."""
    task_ids = batch_store.cancel_batch(db(), batch.id, user_id=current_user.id)
    db().commit()
    queue.revoke(task_ids)
    return len(task_ids)


# --- results ---------------------------------------------------------------------------------------

def current_render(page: Page) -> Render | None:
    return db().get(Render, page.current_render_id) if page.current_render_id else None


def result_key(render: Render | None) -> str | None:
    """The storage key of a render's coloured page (the composite), if it has one."""
    if render is None or render.status != RunStatus.succeeded:
        return None
    outputs = render.outputs or {}
    for kind in ("composite", "png", "result", "jpg", "webp"):
        if outputs.get(kind):
            return outputs[kind]
    return None


def page_image_key(page: Page, kind: str) -> str | None:
    """The storage key of a page's image: its source (never changes), or a file of its current
    render (changes with a re-render or a pick: serve it revalidated)."""
    if kind == "source":
        return page.source_key
    render = current_render(page)
    if kind == "result":
        return result_key(render)
    return render_file_key(render, kind) if render is not None else None


def render_file_key(render: Render, kind: str) -> str | None:
    """The storage key of one output of a finished render, or None."""
    return (render.outputs or {}).get(kind) if render.status == RunStatus.succeeded else None


# The images a thumbnail stands for: the line art (made by ingest) and the coloured page (by finishing).
THUMBNAILED = frozenset({"source", "result", "composite"})


def page_thumbnail_key(page: Page, kind: str, size: int) -> str | None:
    """The stored thumbnail of a page's image (`page_image_key`) at `size`, or None while the
    worker has not made it (the web never decodes a page to make one)."""
    if kind not in THUMBNAILED:
        return None
    if kind == "source":
        return (page.thumbnails or {}).get(thumbnail_kind(size))
    render = current_render(page)
    return render_thumbnail_key(render, kind, size) if render is not None else None


def page_thumb_url(page: Page, kind: str, size: int, *, api: bool = False) -> str | None:
    """The URL of a page image's thumbnail, or None while the worker has not made it."""
    if page_thumbnail_key(page, kind, size) is None:
        return None
    return url_for("api.page_image" if api else "batches.page_image", page_id=page.id, kind=kind, size=size)


def render_thumbnail_key(render: Render, kind: str, size: int) -> str | None:
    """The stored thumbnail of a finished render's coloured page at `size`, or None."""
    return render_file_key(render, thumbnail_kind(size)) if kind in THUMBNAILED - {"source"} else None


# --- status summaries ------------------------------------------------------------------------------

class BatchState(enum.StrEnum):
    """A batch as a whole, from its pages and uploads."""

    EMPTY = "empty"
    UNPACKING = "unpacking"
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


def batch_state(batch: Batch, progress: batch_store.BatchProgress, unpacking: bool = False) -> BatchState:
    if batch.cancelled and progress.finished:
        return BatchState.CANCELLED
    if unpacking:
        return BatchState.UNPACKING
    if progress.total == 0:
        return BatchState.EMPTY
    if progress.running:
        return BatchState.RUNNING
    if progress.queued:
        return BatchState.QUEUED
    if progress.succeeded == 0 and progress.skipped == 0 and progress.failed:
        return BatchState.FAILED
    return BatchState.DONE


def eta_text(eta_seconds: int | None, remaining: int, rate: BatchRate | None) -> str:
    """The ETA in words: "about 4 min left (3 pages at 1.2 min a page, measured on this batch)"."""
    if not remaining:
        return ""
    if rate is None:
        return "time left: known once the first page is done"
    return (f"about {_duration(eta_seconds or 0)} left ({remaining} page(s) at {_duration(rate.seconds_per_page)} "
            f"a page, measured on this batch)")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def summary(progress: batch_store.BatchProgress) -> str:
    parts = [f"{progress.succeeded}/{progress.total} done"]
    for count, what in ((progress.running, "running"), (progress.queued, "queued"), (progress.failed, "failed"),
                        (progress.cancelled, "cancelled"), (progress.skipped, "already coloured: skipped"),
                        (progress.approved, "approved"),
                        (progress.rejected, "rejected")):
        if count:
            parts.append(f"{count} {what}")
    return " · ".join(parts)


def unpacking_status(uploads: list[UploadRow]) -> list[dict[str, Any]]:
    """A batch's uploads still being unpacked by an io worker (`upload_store.unfinished`)."""
    return [{"id": up.id, "status": up.status.value, "files": [f["name"] for f in up.files],
             "pages_added": up.pages_added, "pages_expected": sum(int(f.get("pages") or 1) for f in up.files)}
            for up in uploads]


def unfinished_uploads(batch: Batch) -> list[UploadRow]:
    """The batch's uploads an io worker is still unpacking, oldest first."""
    return upload_store.unfinished(db(), batch.id)


def status_tag(batch: Batch, uploads: list[UploadRow]) -> str:
    """The ETag of the batch's status (`web.polling`): its own fields, its unfinished uploads'
    progress and its pages' rows (`batch_store.status_inputs`), hashed without building the answer.
    While a page is running its bar and the batch's ETA move with the clock, so the tag changes
    every PROGRESS_TICK seconds then."""
    rows = batch_store.status_inputs(db(), batch.id)
    running = any(row[4] == RunStatus.running for row in rows)
    return inputs_tag(batch.id, batch.name, batch.cancelled, batch.direction, batch.default_style_id,
                      sorted((batch.options or {}).items()), batch.created_at,
                      [(u.id, u.status, u.pages_added, len(u.files)) for u in uploads], rows,
                      int(time.time() // PROGRESS_TICK) if running else None)


def batch_pages(batch: Batch) -> list[Page]:
    """The batch's pages in order with their current renders, in a fixed number of queries."""
    return batch_store.pages_with_renders(db(), batch.id)


def panel_data(panel: Panel) -> dict[str, Any]:
    """A panel of a page: its geometry (`panelpaint.panels.Panel`: order, bbox, polygon) with
    detection's confidence (1.0 for a box a person drew or moved), its review status, style and hints."""
    return {"id": panel.id, **batch_store.panel_of(panel).geometry(), "confidence": round(panel.confidence, 3),
            "review_status": panel.review_status.value, "style_id": panel.style_id, "hints": panel.hints or []}


class PageStage(enum.StrEnum):
    """Where a page is on its way, as the dashboard and the API show it: queued, coloured by a render
    worker, finished by an io worker, or at an end. (Pages still in an archive being unpacked have
    no row yet: the batch page shows them as "unpacking" from the batch's `unpacking` counts.)"""

    QUEUED = "queued"
    COLOURING = "colouring"
    FINISHING = "finishing"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


# What each stage says to a person (finishing adds its panels, colouring its expected time).
STAGE_LABELS = {PageStage.QUEUED: "queued", PageStage.COLOURING: "colouring",
                PageStage.FINISHING: "finishing", PageStage.DONE: "done", PageStage.FAILED: "failed",
                PageStage.CANCELLED: "cancelled", PageStage.SKIPPED: "already coloured: skipped"}
# A page's bar: colouring fills it to COLOURED (by the time the batch's pages take), finishing
# the rest panel by panel, so it moves at every step instead of jumping from 0 to 100 %.
COLOURED = 0.5
PROGRESS_TICK = 5  # seconds: how often a running batch's status (its bars, its ETA) may change by time alone
COLOURING_STARTS = 0.05


def page_stage(page: Page, render: Render | None) -> PageStage:
    if page.status == RunStatus.running and render is not None and render.stage is not None:
        return PageStage.COLOURING if render.stage == RenderStage.colouring else PageStage.FINISHING
    return {RunStatus.queued: PageStage.QUEUED, RunStatus.running: PageStage.COLOURING,
            RunStatus.succeeded: PageStage.DONE, RunStatus.failed: PageStage.FAILED,
            RunStatus.cancelled: PageStage.CANCELLED, RunStatus.skipped: PageStage.SKIPPED}[page.status]


def page_progress(page: Page, render: Render | None, stage: PageStage, rate: BatchRate | None) -> float:
    """How far the page is (0..1): colouring by its elapsed time against the time this batch's
    pages have taken to colour (half their whole time), finishing by its panels."""
    if stage in (PageStage.DONE, PageStage.SKIPPED):
        return 1.0
    if stage == PageStage.FINISHING:
        done = page.panels_done / page.panels_total if page.panels_total else 0.0
        return COLOURED + (1 - COLOURED) * done
    if stage == PageStage.COLOURING and render is not None and render.started_at is not None:
        if rate is None or rate.page_seconds <= 0:
            return COLOURING_STARTS
        elapsed = (utcnow() - as_utc(render.started_at)).total_seconds()
        # Never quite COLOURED before the hand-off says so.
        share = min(0.95, max(0.0, elapsed) / (rate.page_seconds * COLOURED))
        return COLOURING_STARTS + (COLOURED - COLOURING_STARTS) * share
    return 0.0


def stage_label(page: Page, stage: PageStage) -> str:
    if stage == PageStage.FINISHING and page.panels_total:
        return f"finishing: panel {page.panels_done} of {page.panels_total}"
    return STAGE_LABELS[stage]


def page_status(page: Page, *, api: bool = False, rate: BatchRate | None = None) -> dict[str, Any]:
    render = current_render(page)
    stage = page_stage(page, render)
    data: dict[str, Any] = {
        "id": page.id, "batch_id": page.batch_id, "position": page.position, "name": page.source_name,
        "status": page.status.value, "error": page.error, "review_status": page.review_status.value,
        "width": page.width, "height": page.height,
        "panels_done": page.panels_done, "panels_total": page.panels_total,
        "render_id": render.id if render else None,
        "panel_check": page.panel_check.value if page.panel_check else None,
        "layout_confidence": page.layout_confidence,
        "stage": stage.value, "stage_label": stage_label(page, stage),
        "progress": round(page_progress(page, render, stage, rate), 3),
        "has_source": page.source_key is not None,  # false: the upload was unreadable (cannot be retried)
    }
    data["thumb_url"] = page_thumb_url(page, "result" if result_key(render) else "source", PAGE_THUMB, api=api)
    return data


def batch_list(rows: list[Batch], *, api: bool = False) -> list[dict[str, Any]]:
    """`batch_status` of each batch (without pages), their progress and uploads read in one go
    for all of them: the number of queries does not grow with the number of batches."""
    ids = [b.id for b in rows]
    progress = batch_store.batch_progress_many(db(), ids)
    uploads = upload_store.unfinished_many(db(), ids)
    return [batch_status(b, with_pages=False, api=api, progress=progress[b.id], uploads=uploads[b.id]) for b in rows]


def batch_status(batch: Batch, *, with_pages: bool = True, api: bool = False,
                 progress: batch_store.BatchProgress | None = None,
                 uploads: list[UploadRow] | None = None) -> dict[str, Any]:
    progress = progress or batch_store.batch_progress(db(), batch.id)
    unpacking = unpacking_status(unfinished_uploads(batch) if uploads is None else uploads)
    # Pages still to come: queued, running and still in archives (none once the batch is cancelled).
    remaining = 0 if batch.cancelled else (
        progress.queued + progress.running + sum(u["pages_expected"] - u["pages_added"] for u in unpacking))
    rate = batch_rate(db(), batch.id) if remaining and with_pages else None
    # (a finished batch needs none; a list of batches shows no ETA, so its queries do not grow with it)
    data = {
        "id": batch.id, "name": batch.name, "state": batch_state(batch, progress, bool(unpacking)).value,
        "cancelled": batch.cancelled, "unpacking": unpacking,
        "direction": batch.direction.value, "default_style_id": batch.default_style_id,
        "options": batch.options or {}, "created_at": batch.created_at.isoformat(),
        "total": progress.total, "finished": progress.total - progress.queued - progress.running,
        "summary": summary(progress), "progress": progress.as_dict(),
        "rate": rate.as_dict() if rate else None,
        # Only while work is left; None before its first page ends.
        "eta_seconds": round(rate.eta_seconds(remaining)) if rate else None,
        "mine": bool(current_user.is_authenticated and batch.created_by_id == current_user.id),
    }
    data["eta"] = eta_text(data["eta_seconds"], remaining, rate)
    if with_pages:
        data["pages"] = [page_status(p, api=api, rate=rate) for p in batch_pages(batch)]
    return data
