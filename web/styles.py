"""The style library: upload a finished painting as a style reference, name and tag it, and preview
how it colours a sample sketch (a one-page preview batch)."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from panelpaint.images import ImageError
from panelpaint.store import styles as style_store
from panelpaint.store.errors import InvalidInput

from . import jobs
from .auth import require
from .services import db, send_stored
from .uploads import store_style_image

bp = Blueprint("styles", __name__, url_prefix="/styles")


def parse_tags(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def owned_style(style_id: int):
    style = style_store.get_style(db(), current_user.studio_id, style_id)
    if style is None:
        abort(404)
    return style


def add_style(name: str, tags: list[str], file) -> object:  # noqa: ANN001 - FileStorage
    """Validate, store and record an uploaded style; raises `ImageError` or `InvalidInput`."""
    key, width, height = store_style_image(file)
    return style_store.add_style_reference(
        db(), current_user.studio_id, name, tags, key, width, height, user_id=current_user.id
    )


@bp.get("")
def index():
    tag = request.args.get("tag") or None
    styles = style_store.list_styles(db(), current_user.studio_id, tag=tag)
    previews = jobs.style_previews(db(), current_user.studio_id)
    return render_template("styles.html", styles=styles, tag=tag, previews=previews, error=None)


@bp.post("")
@require("submit")
def create():
    name = request.form.get("name", "").strip()
    try:
        style = add_style(name, parse_tags(request.form.get("tags")), request.files.get("image"))
    except (ImageError, InvalidInput) as exc:
        db().rollback()
        styles = style_store.list_styles(db(), current_user.studio_id)
        return render_template("styles.html", styles=styles, tag=None, error=str(exc),
                               previews=jobs.style_previews(db(), current_user.studio_id)), 400
    db().commit()
    flash(f"Style “{style.name}” added to the library.", "success")
    return redirect(url_for("styles.detail", style_id=style.id))


@bp.get("/<int:style_id>")
def detail(style_id: int):
    style = owned_style(style_id)
    preview = jobs.style_previews(db(), current_user.studio_id).get(style.id)
    return render_template("style.html", style=style, preview=preview)


@bp.get("/<int:style_id>/image")
def image(style_id: int):
    return send_stored(owned_style(style_id).image_key)


@bp.post("/<int:style_id>/preview")
@require("submit")
def preview(style_id: int):
    style = owned_style(style_id)
    try:
        jobs.start_style_preview(style)
    except jobs.SubmitError as exc:
        db().rollback()
        flash(str(exc), "error")
        return redirect(url_for("styles.detail", style_id=style.id))
    flash("Preview queued: a sample sketch is being coloured with this style.", "info")
    return redirect(url_for("styles.detail", style_id=style.id))
