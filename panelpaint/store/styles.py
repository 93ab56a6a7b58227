"""A studio's library of style references: finished paintings reused to colour pages consistently,
each with its colour key (palette), whether flats snap to it, and what a panel's background becomes."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import sqlalchemy as sa
from PIL import Image
from sqlalchemy.orm import Session

from panelpaint.flats import Background
from panelpaint.limits import NAME_MAX, PALETTE_COLOURS, SWATCHES_MAX, TAG_MAX, TAGS_MAX
from panelpaint.palette import Palette, extract_palette
from panelpaint.store.errors import InvalidInput, NotFound
from panelpaint.store.events import log_event
from panelpaint.store.schema import StyleReference, Studio
from panelpaint.store.storage import validate_key

# The painting is shrunk to this long side before extraction: k-means needs a sample, not every pixel.
PALETTE_SIDE = 512

_UNSET: Any = object()


def check_colours(k: Any) -> int:
    """How many colours to extract: an integer 1..SWATCHES_MAX; `InvalidInput` otherwise."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= SWATCHES_MAX:
        raise InvalidInput(f"a palette has 1 to {SWATCHES_MAX} colours, got {k!r}")
    return k


def style_palette(image: Image.Image, k: int = PALETTE_COLOURS) -> Palette:
    """The colour key of a style image (`k` colours at most): `extract_palette` on a copy at most
    PALETTE_SIDE on its long side."""
    k = check_colours(k)
    small = image.convert("RGB")  # a copy: the caller's image is left as it is
    small.thumbnail((PALETTE_SIDE, PALETTE_SIDE), Image.Resampling.BOX)
    return extract_palette(np.asarray(small), k)


def clean_palette(palette: Palette | Any) -> list[dict[str, Any]]:
    """A palette (or its JSON form, e.g. a user's edit) as stored: validated by `Palette.from_json`."""
    if isinstance(palette, Palette):
        return palette.to_json()
    try:
        return Palette.from_json(palette).to_json()
    except ValueError as exc:
        raise InvalidInput(f"palette: {exc}") from None


def clean_background(value: Background | str) -> Background:
    try:
        return Background(value)
    except ValueError:
        choices = " or ".join(repr(b.value) for b in Background)
        raise InvalidInput(f"background must be {choices}, got {value!r}") from None


def _clean_tags(tags: Iterable[str] | None) -> list[str]:
    out: list[str] = []
    for tag in tags or []:
        tag = str(tag).strip().lower()
        if tag and tag not in out:
            if len(tag) > TAG_MAX:
                raise InvalidInput(f"tag too long ({TAG_MAX} characters at most): {tag[:20]}...")
            out.append(tag)
    if len(out) > TAGS_MAX:
        raise InvalidInput(f"too many tags ({len(out)}): a style has at most {TAGS_MAX}")
    return out


def add_style_reference(
    session: Session,
    studio_id: int,
    name: str,
    tags: Iterable[str] | None,
    image_key: str,
    width: int,
    height: int,
    user_id: int | None = None,
    *,
    palette: Palette | list | None = None,
) -> StyleReference:
    """Add an image (already in storage under `image_key`) to a studio's style library, with its
    colour key (`style_palette` of the image; None: extracted when a page is coloured)."""
    name = (name or "").strip()
    if not name or len(name) > NAME_MAX:
        raise InvalidInput(f"style name must have 1 to {NAME_MAX} characters")
    if width <= 0 or height <= 0:
        raise InvalidInput(f"style image size must be positive, got {width}x{height}")
    if session.get(Studio, studio_id) is None:
        raise NotFound(f"studio {studio_id} does not exist")
    style = StyleReference(
        studio_id=studio_id, name=name, tags=_clean_tags(tags), image_key=validate_key(image_key),
        width=width, height=height, created_by_id=user_id,
        palette=clean_palette(palette) if palette is not None else None,
    )
    session.add(style)
    session.flush()
    log_event(session, "style.added", studio_id=studio_id, data={"style_id": style.id, "name": name})
    return style


def update_colour_key(
    session: Session,
    studio_id: int,
    style_id: int,
    *,
    palette: Palette | list = _UNSET,
    snap_palette: bool = _UNSET,
    background: Background | str = _UNSET,
    user_id: int | None = None,
) -> StyleReference:
    """Edit a style's colour key: its palette (1..SWATCHES_MAX swatches), whether flats snap to it,
    and its background ("paper" or "coloured"). Only the arguments given change; each is validated
    (`InvalidInput` saying what is wrong) and the change is logged (`style.updated`). Pages
    coloured from now on use it; finished renders keep what they were made with."""
    style = get_style(session, studio_id, style_id)
    if style is None:
        raise NotFound(f"style {style_id} does not exist")
    changed: dict[str, Any] = {}
    if palette is not _UNSET:
        changed["palette"] = clean_palette(palette)
    if snap_palette is not _UNSET:
        if not isinstance(snap_palette, bool):
            raise InvalidInput(f"snap_palette must be true or false, got {snap_palette!r}")
        changed["snap_palette"] = snap_palette
    if background is not _UNSET:
        changed["background"] = clean_background(background)
    for field, value in changed.items():
        setattr(style, field, value)
    session.flush()
    log_event(session, "style.updated", studio_id=studio_id,
              data={"style_id": style.id, "user_id": user_id,
                    **{k: v.value if isinstance(v, Background) else v for k, v in changed.items()}})
    return style


def list_styles(session: Session, studio_id: int, *, tag: str | None = None) -> list[StyleReference]:
    """A studio's styles by name; with `tag`, only those carrying it."""
    styles = session.scalars(
        sa.select(StyleReference).where(StyleReference.studio_id == studio_id)
        .order_by(StyleReference.name, StyleReference.id)
    )
    wanted = tag.strip().lower() if tag else None
    return [s for s in styles if wanted is None or wanted in (s.tags or [])]


def get_style(session: Session, studio_id: int, style_id: int) -> StyleReference | None:
    """The style if it belongs to this studio, else None."""
    return session.scalar(
        sa.select(StyleReference).where(StyleReference.id == style_id, StyleReference.studio_id == studio_id)
    )


def require_style(session: Session, studio_id: int, style_id: int | None) -> int | None:
    """`style_id` when None or owned by the studio; raises `NotFound` for another studio's style."""
    if style_id is not None and get_style(session, studio_id, style_id) is None:
        raise NotFound(f"style {style_id} does not exist")
    return style_id
