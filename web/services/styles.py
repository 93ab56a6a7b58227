"""The style library: adding a painting as a style reference, and its colour key (palette,
snapping, background) edited or extracted again."""
from __future__ import annotations

from typing import Any

from flask_login import current_user
from werkzeug.datastructures import FileStorage

from panelpaint.images import ImageError
from panelpaint.limits import PALETTE_COLOURS
from panelpaint.store import styles as style_store
from panelpaint.store.errors import InvalidInput, NotFound
from panelpaint.store.schema import StyleReference

from . import db, services
from .uploads import check_image, store_style_image


def get_style(style_id: int) -> StyleReference:
    """The studio's style; `NotFound` for another studio's, like a missing one."""
    style = style_store.get_style(db(), current_user.studio_id, style_id)
    if style is None:
        raise NotFound(f"style {style_id} does not exist")
    return style


def find_style(style_id: int | None) -> StyleReference | None:
    """The studio's style, or None (no id, or not the studio's)."""
    return style_store.get_style(db(), current_user.studio_id, style_id) if style_id else None


def list_styles(tag: str | None = None) -> list[StyleReference]:
    return style_store.list_styles(db(), current_user.studio_id, tag=tag)


def add_style(name: str, tags: list[str], file: FileStorage | None) -> StyleReference:
    """Validate, store and record an uploaded style with the colour key extracted from it; raises
    `ImageError` or `InvalidInput`. The caller commits (with the batch it came with, if any)."""
    key, image = store_style_image(file)
    return style_store.add_style_reference(
        db(), current_user.studio_id, name, tags, key, image.width, image.height, user_id=current_user.id,
        palette=style_store.style_palette(image),
    )


def create_style(name: str, tags: list[str], file: FileStorage | None) -> StyleReference:
    """`add_style` on its own, committed."""
    style = add_style(name, tags, file)
    db().commit()
    return style


def edit_colour_key(style: StyleReference, **changes: Any) -> None:
    """Apply `changes` (palette, snap_palette, background) to a style and commit; `InvalidInput` says what is wrong."""
    style_store.update_colour_key(db(), current_user.studio_id, style.id, user_id=current_user.id, **changes)
    db().commit()


def extract_colour_key(style: StyleReference, k: Any = PALETTE_COLOURS) -> None:
    """Extract the style's palette from its image again (k swatches) and commit; `InvalidInput` or
    `ImageError` say what is wrong."""
    k = style_store.check_colours(k)  # before the image is read
    try:
        data = services().storage.read_bytes(style.image_key)
    except NotFound:
        raise ImageError(f"{style.name}: the style's image is missing from storage; upload it again") from None
    image = check_image(data, style.name)
    edit_colour_key(style, palette=style_store.style_palette(image, k))


def colour_key_from_form(form) -> dict[str, Any]:  # noqa: ANN001 - the colour key form's MultiDict
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
