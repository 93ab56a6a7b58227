"""The style library: upload a finished painting as a style reference, name and tag it, see and edit
its colour key (palette swatches, snapping, background), and preview how it colours a sample
sketch (a one-page preview batch)."""
from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, flash, redirect, render_template, request, url_for

from panelpaint.flats import Background
from panelpaint.limits import PALETTE_COLOURS
from panelpaint.store.errors import InvalidInput

from ..errors import USER_ERRORS, back_with_error
from ..files import send_stored
from ..services import previews, rollback, styles
from ..services.fields import parse_tags
from .auth import require

bp = Blueprint("styles", __name__, url_prefix="/styles")


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
    return render_template("style.html", style=style, preview=previews.latest().get(style.id), key_error=key_error,
                           backgrounds=list(Background)), status


@bp.get("")
def index():
    tag = request.args.get("tag") or None
    return render_template("styles.html", styles=styles.list_styles(tag), tag=tag, previews=previews.latest(),
                           error=None)


@bp.post("")
@require("submit")
def create():
    try:
        style = styles.create_style(request.form.get("name", "").strip(), parse_tags(request.form.get("tags")),
                                    request.files.get("image"))
    except USER_ERRORS as exc:
        rollback()
        return render_template("styles.html", styles=styles.list_styles(), tag=None, error=str(exc),
                               previews=previews.latest()), 400
    flash(f"Style “{style.name}” added to the library.", "success")
    # Its preview starts at once: the first thing one wants of a new style is to see how it colours.
    try:
        previews.start(style)
        flash("Preview queued: the sample sketch is being coloured with this style.", "info")
    except USER_ERRORS as exc:  # the style is saved; only its preview waits
        rollback()
        flash(f"Preview not started: {exc}", "error")
    return redirect(url_for("styles.detail", style_id=style.id))


@bp.get("/<id:style_id>")
def detail(style_id: int):
    return _detail(styles.get_style(style_id))


@bp.get("/<id:style_id>/image")
def image(style_id: int):
    return send_stored(styles.get_style(style_id).image_key)


@bp.post("/<id:style_id>/key")
@require("submit")
def edit_key(style_id: int):
    return _change_key(style_id, "saved",
                       lambda style: styles.edit_colour_key(style, **styles.colour_key_from_form(request.form)),
                       lambda style: "Colour key saved: pages coloured from now on use it.")


@bp.post("/<id:style_id>/key/extract")
@require("submit")
def extract_key(style_id: int):
    def extract(style) -> None:  # noqa: ANN001
        k = (request.form.get("k") or "").strip() or str(PALETTE_COLOURS)
        if not k.isdigit():
            raise InvalidInput(f"the number of colours must be a whole number, got {k!r}")
        styles.extract_colour_key(style, int(k))

    return _change_key(style_id, "extracted", extract,
                       lambda style: f"Colour key extracted from the image again ({len(style.palette)} colours).")


def _change_key(style_id: int, verb: str, change: Callable, done: Callable):  # noqa: ANN202
    """Apply `change` to a style's colour key: the style page again with a 400 saying why it failed,
    or back to it with `done(style)` as a flash."""
    style = styles.get_style(style_id)
    try:
        change(style)
    except USER_ERRORS as exc:
        rollback()
        return _detail(styles.get_style(style_id), 400, f"Colour key not {verb}: {exc}")
    flash(done(style), "success")
    return redirect(url_for("styles.detail", style_id=style.id) + "#colour-key")


@bp.post("/<id:style_id>/preview")
@require("submit")
def preview(style_id: int):
    style = styles.get_style(style_id)
    try:
        previews.start(style)
    except USER_ERRORS as exc:
        return back_with_error(exc, url_for("styles.detail", style_id=style.id))
    flash("Preview queued: a sample sketch is being coloured with this style.", "info")
    return redirect(url_for("styles.detail", style_id=style.id))
