"""Batches: the list with live progress, a new batch (pages or ZIP/CBZ, a style, reading direction,
options), the batch page (thumbnails, errors, retry, cancel), page images and downloads."""
from __future__ import annotations

import functools
import io

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, send_file, url_for
from flask_login import current_user
from PIL import Image

from panelpaint.flats import Background
from panelpaint.images import ImageError, open_image
from panelpaint.limits import THUMB_SIZES
from panelpaint.store import batches as batch_store
from panelpaint.store import styles as style_store
from panelpaint.store.errors import InvalidInput
from panelpaint.store.schema import RunStatus

from . import downloads, jobs
from .auth import require
from .services import cache_privately, db, release_db, send_stored, services

bp = Blueprint("batches", __name__)



def owned_batch(batch_id: int):
    batch = batch_store.get_batch(db(), current_user.studio_id, batch_id)
    if batch is None:
        abort(404)
    return batch


def owned_page(page_id: int):
    page = batch_store.get_page(db(), current_user.studio_id, page_id)
    if page is None:
        abort(404)
    return page


def visible_batches():
    return [b for b in batch_store.list_batches(db(), current_user.studio_id) if not jobs.is_preview(b)]


@bp.get("/batches")
def index():
    rows = [jobs.batch_status(b, with_pages=False) for b in visible_batches()]
    return render_template("batches.html", batches=rows)


@bp.get("/batches/status.json")
def index_status():
    return jsonify(batches=[jobs.batch_status(b, with_pages=False) for b in visible_batches()])


@bp.get("/batches/new")
@require("submit")
def new():
    return new_batch_form({})


def new_batch_form(form, error: str | None = None, status: int = 200):  # noqa: ANN001, ANN201 - the submitted form
    """The new batch page: the studio's styles, the form as it was sent, and what was wrong."""
    return render_template("new_batch.html", styles=style_store.list_styles(db(), current_user.studio_id),
                           form=form, error=error, backgrounds=list(Background)), status


@bp.post("/batches")
@require("submit")
def create():
    from .styles import add_style, parse_tags

    form = request.form
    try:
        style_id = None
        if request.files.get("style_image") and request.files["style_image"].filename:
            style = add_style(form.get("style_name") or "Uploaded style", parse_tags(form.get("style_tags")),
                              request.files["style_image"])
            style_id = style.id
        elif form.get("style_id"):
            style_id = int(form["style_id"])
        result = jobs.create_batch(form.get("name", ""), style_id, jobs.parse_direction(form.get("direction")),
                                   jobs.parse_options(form), request.files.getlist("pages"))
    except (jobs.SubmitError, ImageError, InvalidInput, ValueError) as exc:
        db().rollback()
        return new_batch_form(form, str(exc), 400)
    _flash_submitted(result)
    return redirect(url_for("batches.detail", batch_id=result.batch.id))


def _flash_submitted(result: jobs.Submitted) -> None:
    if result.unpacking is not None:
        for f in result.unpacking.files:
            if f.get("archive"):
                flash(f"{f['name']}: unpacking {f['pages']} page(s); they appear here as they are read.", "success")
            elif f.get("error"):
                flash(f"Not queued: {f['error']}", "error")
    else:
        good = len(result.pages) - len(result.failed)
        flash(f"{good} page(s) queued.", "success" if good else "info")
    for page in result.failed:
        flash(f"Not queued: {page.error}", "error")
    if result.warning:
        flash(result.warning, "error")


@bp.get("/batches/<int:batch_id>")
def detail(batch_id: int):
    batch = owned_batch(batch_id)
    status = jobs.batch_status(batch)
    style = style_store.get_style(db(), current_user.studio_id, batch.default_style_id) if batch.default_style_id else None
    return render_template("batch.html", batch=batch, status=status, style=style)


@bp.get("/batches/<int:batch_id>/status.json")
def status(batch_id: int):
    return jsonify(jobs.batch_status(owned_batch(batch_id)))


@bp.post("/batches/<int:batch_id>/pages")
@require("submit")
def add_pages(batch_id: int):
    batch = owned_batch(batch_id)
    try:
        result = jobs.add_pages(batch, request.files.getlist("pages"))
    except jobs.SubmitError as exc:
        db().rollback()
        flash(str(exc), "error")
        return redirect(url_for("batches.detail", batch_id=batch.id))
    _flash_submitted(result)
    return redirect(url_for("batches.detail", batch_id=batch.id))


@bp.post("/batches/<int:batch_id>/cancel")
@require("submit")
def cancel(batch_id: int):
    batch = owned_batch(batch_id)
    dropped = jobs.cancel(batch)
    flash(f"Batch cancelled: {dropped} queued page(s) dropped; running pages stop at their next panel.", "info")
    return redirect(url_for("batches.detail", batch_id=batch.id))


@bp.post("/pages/<int:page_id>/retry")
@require("submit")
def retry(page_id: int):
    page = owned_page(page_id)
    try:
        jobs.retry(page)
        flash(f"{page.source_name}: queued again.", "success")
    except jobs.SubmitError as exc:
        db().rollback()
        flash(str(exc), "error")
    return redirect(url_for("batches.detail", batch_id=page.batch_id))


@bp.post("/batches/<int:batch_id>/retry-failed")
@require("submit")
def retry_failed(batch_id: int):
    batch = owned_batch(batch_id)
    retried, skipped = 0, []
    for page in batch.pages:
        if page.status == RunStatus.failed:
            if page.source_key is None:
                skipped.append(page.source_name)
                continue
            jobs.retry(page)
            retried += 1
    flash(f"{retried} failed page(s) queued again.", "success" if retried else "info")
    if skipped:
        flash(f"Unreadable uploads cannot be retried; upload them again: {', '.join(skipped)}", "error")
    return redirect(url_for("batches.detail", batch_id=batch.id))


# --- images and downloads ----------------------------------------------------------------------

@functools.lru_cache(maxsize=128)  # content-addressed keys: entries never go stale
def _thumbnail(key: str, size: int, max_pixels: int) -> bytes:
    data = services().storage.read_bytes(key)
    img = open_image(data, name="page", max_pixels=max_pixels)
    img.thumbnail((size, size * 2), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, "PNG", optimize=True)
    return buf.getvalue()


def serve_image(key: str | None, size: int | None, *, revalidate: bool = False):
    """A stored image, whole or as a small PNG thumbnail (browsers cannot show TIFF sources);
    `revalidate` for a URL whose image changes (see `send_stored`)."""
    if key is None:
        abort(404)
    release_db()
    if size is None:
        return send_stored(key, revalidate=revalidate)
    if size not in THUMB_SIZES:
        abort(404)
    try:
        data = _thumbnail(key, size, services().settings.max_image_pixels)
    except ImageError:
        abort(404)
    response = send_file(io.BytesIO(data), mimetype="image/png", max_age=3600, etag=f"{key}-{size}")
    return cache_privately(response, revalidate).make_conditional(request)


def page_image_key(page, kind: str) -> str | None:
    """The storage key of a page's image: its source (never changes), or a file of its current
    render (changes with a re-render or a pick: serve it with `revalidate`)."""
    if kind == "source":
        return page.source_key
    render = jobs.current_render(page)
    if kind == "result":
        return jobs.result_key(render)
    if render is not None and render.status == RunStatus.succeeded:
        return (render.outputs or {}).get(kind)
    return None


@bp.get("/pages/<int:page_id>/image/<kind>")
def page_image(page_id: int, kind: str):
    page = owned_page(page_id)
    size = request.args.get("size", type=int)
    return serve_image(page_image_key(page, kind), size, revalidate=kind != "source")


@bp.get("/renders/<int:render_id>/files/<kind>")
def render_file(render_id: int, kind: str):
    render = batch_store.get_render(db(), current_user.studio_id, render_id)
    if render is None or render.status != RunStatus.succeeded:
        abort(404)
    return serve_image((render.outputs or {}).get(kind), request.args.get("size", type=int))


@bp.get("/batches/<int:batch_id>/download.<fmt>")
def download(batch_id: int, fmt: str):
    batch = owned_batch(batch_id)
    if fmt not in downloads.ARCHIVE_FORMATS:
        abort(404)
    scope = request.args.get("scope", "approved")
    archive = downloads.batch_archive(batch, fmt, approved_only=scope != "all")
    if archive is None:
        flash("Nothing to download yet: approve some finished pages first.", "info")
        return redirect(url_for("batches.detail", batch_id=batch.id))
    return send_file(archive, mimetype=downloads.ARCHIVE_FORMATS[fmt], as_attachment=True,
                     download_name=downloads.archive_name(batch, fmt))


@bp.get("/pages/<int:page_id>/download.<fmt>")
def page_download(page_id: int, fmt: str):
    page = owned_page(page_id)
    key = downloads.page_file(page, fmt)
    if key is None:
        abort(404)
    return send_stored(key, download_name=downloads.page_file_name(page, fmt), revalidate=True)
