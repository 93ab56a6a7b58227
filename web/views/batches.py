"""Batches: the list with live progress, a new batch (pages or ZIP/CBZ, a style, reading direction,
options), the batch page (thumbnails, errors, retry, cancel), page images and downloads."""
from __future__ import annotations

from flask import Blueprint, Response, abort, flash, jsonify, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict

from panelpaint import formats
from panelpaint.flats import Background

from ..errors import USER_ERRORS, back_with_error
from .. import files
from ..files import send_archive
from ..polling import shared_status, status_response
from ..services import batches, downloads, review, rollback, styles
from ..services.errors import NothingToDownload
from .auth import require

bp = Blueprint("batches", __name__)


@bp.get("/batches")
def index():
    return render_template("batches.html", batches=batches.batch_list(batches.list_batches(previews=False)))


@bp.get("/batches/status.json")
def index_status():
    return shared_status(lambda: status_response(
        lambda: {"batches": batches.batch_list(batches.list_batches(previews=False))}))


@bp.get("/batches/new")
@require("submit")
def new():
    return new_batch_form(MultiDict())


def new_batch_form(form, error: str | None = None, status: int = 200):  # noqa: ANN001, ANN201 - the submitted form
    """The new batch page: the studio's styles, the form as it was sent, and what was wrong."""
    return render_template("new_batch.html", styles=styles.list_styles(), form=form, error=error,
                           backgrounds=list(Background)), status


@bp.post("/batches")
@require("submit")
def create():
    try:
        result = batches.create_from_form(request.form, request.files.getlist("pages"), request.files.get("style_image"))
    except USER_ERRORS as exc:
        rollback()
        return new_batch_form(request.form, str(exc), 400)
    _flash_submitted(result)
    return redirect(url_for("batches.detail", batch_id=result.batch.id))


def _flash_submitted(result: batches.Submitted) -> None:
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


@bp.get("/batches/<id:batch_id>")
def detail(batch_id: int):
    batch = batches.get_batch(batch_id)
    return render_template("batch.html", batch=batch, status=batches.batch_status(batch),
                           style=styles.find_style(batch.default_style_id), rejected=review.rejected_count(batch),
                           styles=styles.list_styles(),
                           layered=formats.layered_files((batch.options or {}).get("formats")))


@bp.get("/batches/<id:batch_id>/status.json")
def status(batch_id: int):
    def answer() -> Response:
        batch = batches.get_batch(batch_id)
        uploads = batches.unfinished_uploads(batch)
        return status_response(lambda: batches.batch_status(batch, uploads=uploads), batches.status_tag(batch, uploads))

    return shared_status(answer)


@bp.post("/batches/<id:batch_id>/pages")
@require("submit")
def add_pages(batch_id: int):
    batch = batches.get_batch(batch_id)
    try:
        result = batches.add_pages(batch, request.files.getlist("pages"))
    except USER_ERRORS as exc:
        return back_with_error(exc, url_for("batches.detail", batch_id=batch.id))
    _flash_submitted(result)
    return redirect(url_for("batches.detail", batch_id=batch.id))


@bp.post("/batches/<id:batch_id>/cancel")
@require("submit")
def cancel(batch_id: int):
    batch = batches.get_batch(batch_id)
    dropped = batches.cancel(batch)
    flash(f"Batch cancelled: {dropped} queued page(s) dropped; running pages stop at their next panel.", "info")
    return redirect(url_for("batches.detail", batch_id=batch.id))


def _queue_page(page_id: int, action, done: str):  # noqa: ANN001, ANN202 - a service function of a Page
    """Run a page action from the batch page: back to the batch, saying what happened or why not."""
    page = batches.get_page(page_id)
    try:
        action(page)
    except USER_ERRORS as exc:
        return back_with_error(exc, url_for("batches.detail", batch_id=page.batch_id))
    flash(f"{page.source_name}: {done}", "success")
    return redirect(url_for("batches.detail", batch_id=page.batch_id))


@bp.post("/pages/<id:page_id>/retry")
@require("submit")
def retry(page_id: int):
    return _queue_page(page_id, batches.retry, "queued again.")


@bp.post("/pages/<id:page_id>/colour-anyway")
@require("submit")
def colour_anyway(page_id: int):
    return _queue_page(page_id, batches.colour_anyway, "queued to be coloured although it arrived in colour.")


@bp.post("/batches/<id:batch_id>/retry-failed")
@require("submit")
def retry_failed(batch_id: int):
    batch = batches.get_batch(batch_id)
    retried, skipped = batches.retry_failed(batch)
    flash(f"{retried} failed page(s) queued again.", "success" if retried else "info")
    if skipped:
        flash(f"Unreadable uploads cannot be retried; upload them again: {', '.join(skipped)}", "error")
    return redirect(url_for("batches.detail", batch_id=batch.id))


# --- images and downloads ----------------------------------------------------------------------

@bp.get("/pages/<id:page_id>/image/<kind>")
def page_image(page_id: int, kind: str):
    return files.page_image(page_id, kind)


@bp.get("/renders/<id:render_id>/files/<kind>")
def render_file(render_id: int, kind: str):
    return files.render_file(render_id, kind)


@bp.get("/batches/<id:batch_id>/download.<fmt>")
def download(batch_id: int, fmt: str):
    batch = batches.get_batch(batch_id)
    if fmt not in formats.ARCHIVES:
        abort(404)  # part of the URL: no such page
    try:
        archive = downloads.batch_archive(batch, fmt, approved_only=request.args.get("scope", "approved") != "all")
    except NothingToDownload:
        flash("Nothing to download yet: approve some finished pages first.", "info")
        return redirect(url_for("batches.detail", batch_id=batch.id))
    return send_archive(archive)


@bp.get("/batches/<id:batch_id>/layers/<kind>.zip")
def download_layers(batch_id: int, kind: str):
    batch = batches.get_batch(batch_id)
    try:
        archive = downloads.layered_archive(batch, kind, approved_only=request.args.get("scope", "approved") != "all")
    except NothingToDownload as exc:
        flash(str(exc), "info")
        return redirect(url_for("batches.detail", batch_id=batch.id))
    return send_archive(archive)


@bp.get("/pages/<id:page_id>/download.<fmt>")
def page_download(page_id: int, fmt: str):
    return files.page_download(page_id, fmt)
