"""The style library: upload a finished painting as a style reference, name and tag it, see and edit
its colour key (palette swatches, snapping, background), and preview how it colours a sample
sketch (a one-page preview batch)."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from panelpaint.flats import Background
from panelpaint.images import ImageError
from panelpaint.store import styles as style_store
from panelpaint.store.errors import InvalidInput, NotFound

from . import jobs
from .auth import require
from .services import db, send_stored, services
from .uploads import check_image, store_style_image

bp = Blueprint("styles", __name__, url_prefix="/styles")


def parse_tags(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def owned_style(style_id: int):
    style = style_store.get_style(db(), current_user.studio_id, style_id)
    if style is None:
        abort(404)
    return style


def add_style(name: str, tags: list[str], file) -> object:  # noqa: ANN001 - FileStorage
    """Validate, store and record an uploaded style with the colour key extracted from it; raises
    `ImageError` or `InvalidInput`."""
    key, image = store_style_image(file)
    return style_store.add_style_reference(
        db(), current_user.studio_id, name, tags, key, image.width, image.height, user_id=current_user.id,
        palette=style_store.style_palette(image),
    )


def edit_colour_key(style, **changes) -> None:  # noqa: ANN001 - StyleReference
    """Apply `changes` (palette, snap_palette, background) to a style and commit; `InvalidInput` says what is wrong."""
    style_store.update_colour_key(db(), current_user.studio_id, style.id, user_id=current_user.id, **changes)
    db().commit()


def extract_colour_key(style, k: int = style_store.PALETTE_COLOURS) -> None:  # noqa: ANN001
    """Extract the style's palette from its image again (k swatches) and commit; `InvalidInput` or
    `ImageError` say what is wrong."""
    k = style_store.check_colours(k)  # before the image is read
    try:
        data = services().storage.read_bytes(style.image_key)
    except NotFound:
        raise ImageError(f"{style.name}: the style's image is missing from storage; upload it again") from None
    image = check_image(data, style.name)
    edit_colour_key(style, palette=style_store.style_palette(image, k))


def key_from_form(form) -> dict:  # noqa: ANN001 - the colour key form's MultiDict
    """The colour key the form describes: its swatches (colour, share) in order less those ticked
    "remove", plus the new swatch when "Add swatch" was pressed; "snap" and "background"."""
    colours, shares = form.getlist("color"), form.getlist("share")
    if len(colours) != len(shares):
        raise InvalidInput("the colour key form is incomplete: reload the page and try again")
    removed = set(form.getlist("remove"))
    swatches = []
    for i, (colour, share) in enumerate(zip(colours, shares)):
        if str(i) in removed:
            continue
        try:
            swatches.append({"color": colour, "share": float(share)})
        except ValueError:
            raise InvalidInput(f"swatch {i + 1}: share must be a number, got {share!r}") from None
    if form.get("action") == "add":
        swatches.append({"color": form.get("new_color", ""), "share": 0.0})
    return {"palette": swatches, "snap_palette": form.get("snap_palette") == "1",
            "background": form.get("background", "")}


@bp.app_template_global()
def colour_strip(palette: list | None) -> list[dict]:
    """A palette as a strip of swatches, each as wide as its share (equal widths when no share is
    known): [{"color", "share", "x", "w"}] in percent, for an SVG."""
    swatches = list(palette or [])
    total = sum(float(s.get("share") or 0) for s in swatches)
    out, x = [], 0.0
    for s in swatches:
        w = 100.0 * (float(s.get("share") or 0) / total if total > 0 else 1 / len(swatches))
        out.append({"color": s["color"], "share": float(s.get("share") or 0), "x": round(x, 3), "w": round(w, 3)})
        x += w
    return out


def _detail(style, status: int = 200, key_error: str | None = None):  # noqa: ANN001, ANN202
    preview = jobs.style_previews(db(), current_user.studio_id).get(style.id)
    return render_template("style.html", style=style, preview=preview, key_error=key_error,
                           backgrounds=list(Background)), status


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
    return _detail(owned_style(style_id))


@bp.get("/<int:style_id>/image")
def image(style_id: int):
    return send_stored(owned_style(style_id).image_key)


@bp.post("/<int:style_id>/key")
@require("submit")
def edit_key(style_id: int):
    return _change_key(style_id, "saved", lambda style: edit_colour_key(style, **key_from_form(request.form)),
                       lambda style: "Colour key saved: pages coloured from now on use it.")


@bp.post("/<int:style_id>/key/extract")
@require("submit")
def extract_key(style_id: int):
    def extract(style) -> None:  # noqa: ANN001
        k = (request.form.get("k") or "").strip() or str(style_store.PALETTE_COLOURS)
        if not k.isdigit():
            raise InvalidInput(f"the number of colours must be a whole number, got {k!r}")
        extract_colour_key(style, int(k))

    return _change_key(style_id, "extracted", extract,
                       lambda style: f"Colour key extracted from the image again ({len(style.palette)} colours).")


def _change_key(style_id: int, verb: str, change, done):  # noqa: ANN001, ANN202 - callables of the style
    """Apply `change` to a style's colour key: the style page again with a 400 saying why it failed,
    or back to it with `done(style)` as a flash."""
    style = owned_style(style_id)
    try:
        change(style)
    except (InvalidInput, ImageError) as exc:
        db().rollback()
        return _detail(owned_style(style_id), 400, f"Colour key not {verb}: {exc}")
    flash(done(style), "success")
    return redirect(url_for("styles.detail", style_id=style.id) + "#colour-key")


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
