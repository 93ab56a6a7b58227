"""Submitting work from the dashboard and the API: batches, pages, retries, re-renders, variant sets
and picks, style previews, enqueued by task name only after the database commit; and the status
summaries both show.
"""
from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, url_for
from flask_login import current_user
from PIL import Image

from panelpaint import formats, queue
from panelpaint.limits import SEED_MAX, VARIANTS_DEFAULT, VARIANTS_MAX, VARIANTS_MIN, WORK_SIZE_MAX, WORK_SIZE_MIN
from panelpaint.panels import Direction
from panelpaint.images import ImageError
from panelpaint.store import batches as batch_store
from panelpaint.store import renders as render_store
from panelpaint.store import uploads as upload_store
from panelpaint.store import variants as variant_store
from panelpaint.store.errors import IllegalTransition, InvalidInput, NotFound, StoreError
from panelpaint.flats import Background
from panelpaint.store.schema import Batch, Page, Render, RunStatus, VariantSet
from panelpaint.store.schema import Upload as UploadRow
from panelpaint.unpack import image_suffix, store_page_image

from .services import db, services
from .uploads import Archive, Upload, expand_files, has_archive

PREVIEW_OPTION = "preview_style_id"  # in Batch.options: marks a one-page style preview batch
BACKGROUND_OPTION = "background"  # in Batch.options: "paper" | "coloured" for every page; absent: each style's own


class SubmitError(Exception):
    """Work could not be submitted; the message is meant for the user."""


class Conflict(SubmitError):
    """Not possible in the current state (a render still running, a cancelled batch...): HTTP 409."""


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


# --- enqueueing --------------------------------------------------------------------------------

class EnqueueError(SubmitError):
    """The work is recorded in the job store but could not be sent to the queue broker."""


def enqueue(renders: list[Render], ingest_pages: list[int] = ()) -> None:
    """Send committed work to the workers by task name: panel detection for new pages first, then
    their renders, each under the task id the job store made for it (`render.task_id`), so a cancel
    revokes exactly that id and nothing has to be written back after sending.

    Raises `EnqueueError` when the broker cannot be reached: the rows stay queued in the job store
    (the render workers' sweep sends them once the broker is back).
    """
    settings = services().settings
    try:
        for page_id in ingest_pages:
            queue.enqueue_ingest(settings, page_id)
        for render in renders:
            queue.enqueue_render(settings, render.id, task_id=render.task_id)
    except Exception as exc:  # noqa: BLE001 - kombu/redis raise many types; the user must hear of it
        current_app.logger.exception("enqueue failed")
        raise EnqueueError(f"Saved, but the work queue cannot be reached ({type(exc).__name__}); "
                           "the pages stay queued until it is back. Tell your administrator.") from None


def enqueue_unpack(upload: UploadRow) -> None:
    """Send a committed upload to the io workers; the janitor re-sends it if the broker is down."""
    try:
        queue.enqueue_unpack(services().settings, upload.id, upload.task_id)
    except Exception as exc:  # noqa: BLE001 - kombu/redis raise many types; the user must hear of it
        current_app.logger.exception("enqueue failed")
        raise EnqueueError(f"Saved, but the work queue cannot be reached ({type(exc).__name__}); "
                           "the archive is unpacked once it is back. Tell your administrator.") from None


def revoke(task_ids: list[str]) -> None:
    if task_ids:
        queue.revoke(services().settings, task_ids)


# --- pages -------------------------------------------------------------------------------------

def _store_page(batch: Batch, upload: Upload, style_id: int | None) -> tuple[Page, Render | None]:
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


NO_PAGES = "No page images in the upload: archives are searched for PNG, JPEG, TIFF and WebP files."


def add_pages(batch: Batch, files: list, style_id: int | None = None) -> Submitted:
    """Add uploaded files (images, ZIP/CBZ archives) to a batch, then enqueue the good pages."""
    if batch.cancelled:
        raise SubmitError("This batch is cancelled; start a new batch instead.")
    # While an archive is still being unpacked into this batch, later files wait their turn behind it.
    later = bool(upload_store.unfinished(db(), batch.id))
    uploads = _uploads(files)
    db().commit()  # end the transaction that found the batch before decoding starts
    return _add_uploads(batch, uploads, style_id, for_worker=later or has_archive(files))


def _uploads(files: list) -> Iterator[Upload | Archive]:
    """The uploads as pages, refusing (`SubmitError`) an upload that holds no page at all."""
    if not any(f.filename for f in files):
        raise SubmitError("Choose at least one page image or a ZIP/CBZ archive.")
    uploads = expand_files(files)
    first = next(uploads, None)
    if first is None:
        raise SubmitError(NO_PAGES)
    return itertools.chain([first], uploads)


def _add_uploads(batch: Batch, uploads: Iterator[Upload | Archive], style_id: int | None = None, *,
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
        enqueue(renders, [r.page_id for r in renders])
    except EnqueueError as exc:
        result.warning = str(exc)
    return result


def _upload_for_worker(batch: Batch, items: Iterator[Upload | Archive], style_id: int | None) -> Submitted:
    """Archives are stored whole (checked already) and images as they came, in the order sent;
    one `Upload` row lists them and the io worker turns them into pages in that order."""
    files = []
    for item in items:
        if isinstance(item, Archive):
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
        enqueue_unpack(upload)
    except EnqueueError as exc:
        result.warning = str(exc)
    return result


def unpacking_status(batch: Batch) -> list[dict[str, Any]]:
    """The batch's uploads still being unpacked by an io worker, for the batch page and the API."""
    out = []
    for up in upload_store.unfinished(db(), batch.id):
        names = [f["name"] for f in up.files]
        out.append({"id": up.id, "status": up.status.value, "files": names, "pages_added": up.pages_added,
                    "pages_expected": sum(int(f.get("pages") or 1) for f in up.files)})
    return out


def create_batch(name: str, style_id: int | None, direction: str, options: dict[str, Any], files: list) -> Submitted:
    """A new batch with its pages; raises `SubmitError` with a message for the user (nothing is kept then)."""
    if style_id is None:
        raise SubmitError("Choose a style from the library or upload one.")
    uploads = _uploads(files)
    try:
        batch = batch_store.create_batch(db(), current_user.studio_id, current_user.id, name,
                                         default_style_id=style_id, direction=direction or Direction.ltr,
                                         options=options)
    except NotFound:
        raise SubmitError("That style is not in your studio's library.") from None
    except InvalidInput as exc:
        raise SubmitError(str(exc)) from None
    db().commit()
    return _add_uploads(batch, uploads, for_worker=has_archive(files))


def retry(page: Page) -> None:
    try:
        render = render_store.retry_page(db(), page.id, user_id=current_user.id)
    except IllegalTransition as exc:
        raise SubmitError(str(exc)) from None
    db().commit()
    enqueue([render])


def rerender(page: Page, panel_id: int | None, style_id: int | None, seed: int | None, hints: list | None) -> Render:
    try:
        render = render_store.rerender(db(), page.id, panel_id, style_id, seed, hints, user_id=current_user.id)
    except IllegalTransition as exc:
        raise Conflict(str(exc)) from None
    except (NotFound, InvalidInput) as exc:
        raise SubmitError(str(exc)) from None
    db().commit()
    enqueue([render])
    return render


def variants(page: Page, count: int, style_id: int | None, hints: list | None) -> VariantSet:
    """Queue a variant set of a finished page and send its renders; see `panelpaint.store.variants`."""
    try:
        vset = variant_store.queue_variants(db(), page.id, count, style_id, hints, user_id=current_user.id)
    except IllegalTransition as exc:
        raise Conflict(str(exc)) from None
    except (NotFound, InvalidInput) as exc:
        raise SubmitError(str(exc)) from None
    db().commit()
    enqueue(list(vset.renders))
    return vset


def pick(render_id: int) -> Render:
    """Make a finished variant its page's result; `NotFound` for another studio's render."""
    try:
        render = variant_store.pick_variant(db(), current_user.studio_id, render_id, user_id=current_user.id)
    except IllegalTransition as exc:
        raise Conflict(str(exc)) from None
    db().commit()
    return render


def parse_count(value: str | int | None) -> int:
    """How many variants (blank: the default) from a form or JSON; `SubmitError` unless a whole
    number in the job store's range."""
    if value is None or str(value).strip() == "":
        return VARIANTS_DEFAULT
    low, high = VARIANTS_MIN, VARIANTS_MAX
    count = None
    if isinstance(value, str) and value.strip().isdigit():
        count = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        count = value
    if count is None or not low <= count <= high:
        raise SubmitError(f"Variants: ask for a whole number from {low} to {high}, got {value!r}.")
    return count


def cancel(batch: Batch) -> int:
    """Cancel a batch; queued work is revoked after the commit. Returns how many renders were dropped."""
    task_ids = batch_store.cancel_batch(db(), batch.id, user_id=current_user.id)
    db().commit()
    revoke(task_ids)
    return len(task_ids)


def parse_options(form) -> dict[str, Any]:  # noqa: ANN001 - a MultiDict of the form or API request
    """Batch options from a form: work size, seed, background, output formats. Raises `SubmitError`."""
    options: dict[str, Any] = {}
    work_size = (form.get("work_size") or "").strip()
    if work_size:
        try:
            options["work_size"] = int(work_size)
        except ValueError:
            raise SubmitError("Work size must be a whole number of pixels.") from None
        if not WORK_SIZE_MIN <= options["work_size"] <= WORK_SIZE_MAX:
            raise SubmitError(f"Work size must be between {WORK_SIZE_MIN} and {WORK_SIZE_MAX} pixels.")
    seed = parse_seed(form.get("seed"))
    if seed is not None:
        options["seed"] = seed
    background = (form.get(BACKGROUND_OPTION) or "").strip()
    if background:
        if background not in {b.value for b in Background}:
            raise SubmitError(f"Background must be {' or '.join(b.value for b in Background)} "
                              "(or blank for each style's own).")
        options[BACKGROUND_OPTION] = background
    outputs = formats.batch_formats(form.getlist("layers"))
    if outputs:
        options["formats"] = outputs
    return options


def parse_seed(value: str | int | None) -> int | None:
    """A variant seed from a form or JSON: blank/None is the canonical colouring; `SubmitError`
    unless a whole number 0..SEED_MAX (the job store's range)."""
    if value is None or str(value).strip() == "":
        return None
    message = (f"Seed must be a whole number from 0 to {SEED_MAX} "
               "(leave it blank for the canonical colouring).")
    if isinstance(value, (bool, float)):
        raise SubmitError(message)
    try:
        return render_store.check_seed(int(str(value).strip()))
    except (TypeError, ValueError):
        raise SubmitError(message) from None


def parse_direction(value: str | None) -> Direction:
    try:
        return Direction((value or Direction.ltr).strip())
    except ValueError:
        raise SubmitError("Reading direction must be ltr (western) or rtl (manga).") from None


# --- status ------------------------------------------------------------------------------------

def batch_state(batch: Batch, progress: batch_store.BatchProgress, unpacking: bool = False) -> str:
    if batch.cancelled and progress.finished:
        return "cancelled"
    if unpacking:
        return "unpacking"
    if progress.total == 0:
        return "empty"
    if progress.running:
        return "running"
    if progress.queued:
        return "queued"
    if progress.succeeded == 0 and progress.failed:
        return "failed"
    return "done"


def summary(progress: batch_store.BatchProgress) -> str:
    parts = [f"{progress.succeeded}/{progress.total} done"]
    if progress.running:
        parts.append(f"{progress.running} running")
    if progress.queued:
        parts.append(f"{progress.queued} queued")
    if progress.failed:
        parts.append(f"{progress.failed} failed")
    if progress.cancelled:
        parts.append(f"{progress.cancelled} cancelled")
    if progress.approved:
        parts.append(f"{progress.approved} approved")
    if progress.rejected:
        parts.append(f"{progress.rejected} rejected")
    return " · ".join(parts)


def result_key(render: Render | None) -> str | None:
    """The storage key of a render's coloured page (the composite), if it has one."""
    if render is None or render.status != RunStatus.succeeded:
        return None
    outputs = render.outputs or {}
    for kind in ("composite", "png", "result", "jpg", "webp"):
        if outputs.get(kind):
            return outputs[kind]
    return None


def current_render(page: Page) -> Render | None:
    return db().get(Render, page.current_render_id) if page.current_render_id else None


def page_status(page: Page, *, api: bool = False) -> dict[str, Any]:
    render = current_render(page)
    data: dict[str, Any] = {
        "id": page.id, "batch_id": page.batch_id, "position": page.position, "name": page.source_name,
        "status": page.status.value, "error": page.error, "review_status": page.review_status.value,
        "width": page.width, "height": page.height,
        "panels_done": page.panels_done, "panels_total": page.panels_total,
        "render_id": render.id if render else None,
    }
    endpoint = "api.page_image" if api else "batches.page_image"
    kind = "result" if result_key(render) else "source"
    data["thumb_url"] = url_for(endpoint, page_id=page.id, kind=kind, size=360) if page.source_key else None
    return data


def batch_status(batch: Batch, *, with_pages: bool = True, api: bool = False) -> dict[str, Any]:
    progress = batch_store.batch_progress(db(), batch.id)
    unpacking = unpacking_status(batch)
    data = {
        "id": batch.id, "name": batch.name, "state": batch_state(batch, progress, bool(unpacking)),
        "cancelled": batch.cancelled, "unpacking": unpacking,
        "direction": batch.direction.value, "default_style_id": batch.default_style_id,
        "options": batch.options or {}, "created_at": batch.created_at.isoformat(),
        "total": progress.total, "finished": progress.total - progress.queued - progress.running,
        "summary": summary(progress), "progress": progress.as_dict(),
    }
    if with_pages:
        data["pages"] = [page_status(p, api=api) for p in batch.pages]
    return data


# --- style previews ----------------------------------------------------------------------------

def sample_sketch() -> tuple[str, bytes]:
    """The line art a style preview colours: SAMPLE_SKETCH, samples/sketch.png, or a drawn page."""
    from pathlib import Path

    configured = current_app.config.get("SAMPLE_SKETCH")
    root = Path(current_app.root_path).parent
    for path in ([Path(configured)] if configured else []) + [root / "samples" / "sketch.png"]:
        if path.is_file():
            return path.name, path.read_bytes()
    return "sample-sketch.png", drawn_sketch()


def drawn_sketch(size: tuple[int, int] = (384, 512)) -> bytes:
    """A small two-panel page of simple line art, for when no sample sketch ships."""
    from PIL import ImageDraw

    w, h = size
    img = Image.new("L", size, 255)
    d = ImageDraw.Draw(img)
    d.rectangle([12, 12, w - 12, h // 2 - 6], outline=0, width=4)
    d.rectangle([12, h // 2 + 6, w - 12, h - 12], outline=0, width=4)
    d.ellipse([w // 2 - 60, 50, w // 2 + 60, 170], outline=0, width=3)  # a face
    d.ellipse([w // 2 - 30, 90, w // 2 - 14, 106], outline=0, width=3)
    d.ellipse([w // 2 + 14, 90, w // 2 + 30, 106], outline=0, width=3)
    d.arc([w // 2 - 30, 110, w // 2 + 30, 150], 20, 160, fill=0, width=3)
    d.line([40, h - 60, w // 2, h // 2 + 60, w - 40, h - 60], fill=0, width=4)  # a hill
    d.ellipse([w - 120, h // 2 + 40, w - 60, h // 2 + 100], outline=0, width=3)  # a sun
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def style_previews(session, studio_id: int) -> dict[int, dict[str, Any]]:  # noqa: ANN001
    """The latest preview batch of each style: {style_id: {batch, page, state}}."""
    import sqlalchemy as sa

    previews: dict[int, dict[str, Any]] = {}
    rows = session.scalars(sa.select(Batch).where(Batch.studio_id == studio_id).order_by(Batch.id.desc()).limit(500))
    for batch in rows:
        style_id = (batch.options or {}).get(PREVIEW_OPTION)
        if style_id is None or style_id in previews or not batch.pages:
            continue
        page = batch.pages[0]
        previews[style_id] = {"batch": batch, "page": page, "has_result": result_key(current_render(page)) is not None}
    return previews


def is_preview(batch: Batch) -> bool:
    return PREVIEW_OPTION in (batch.options or {})


def start_style_preview(style) -> Submitted:  # noqa: ANN001 - StyleReference
    """A one-page batch colouring the sample sketch with `style`, hidden from the batch list."""
    from werkzeug.datastructures import FileStorage

    name, data = sample_sketch()
    try:
        batch = batch_store.create_batch(db(), style.studio_id, current_user.id, f"Style preview: {style.name}"[:200],
                                         default_style_id=style.id, options={PREVIEW_OPTION: style.id})
    except StoreError as exc:
        raise SubmitError(str(exc)) from None
    return add_pages(batch, [FileStorage(io.BytesIO(data), filename=name)])
