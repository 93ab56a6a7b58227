"""A studio's library of style references: finished paintings reused to colour pages consistently."""
from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from panelpaint.store.errors import InvalidInput, NotFound
from panelpaint.store.events import log_event
from panelpaint.store.schema import StyleReference, Studio
from panelpaint.store.storage import validate_key


def _clean_tags(tags: Iterable[str] | None) -> list[str]:
    out: list[str] = []
    for tag in tags or []:
        tag = str(tag).strip().lower()
        if tag and tag not in out:
            if len(tag) > 64:
                raise InvalidInput(f"tag too long (64 characters at most): {tag[:20]}...")
            out.append(tag)
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
) -> StyleReference:
    """Add an image (already in storage under `image_key`) to a studio's style library."""
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise InvalidInput("style name must have 1 to 200 characters")
    if width <= 0 or height <= 0:
        raise InvalidInput(f"style image size must be positive, got {width}x{height}")
    if session.get(Studio, studio_id) is None:
        raise NotFound(f"studio {studio_id} does not exist")
    style = StyleReference(
        studio_id=studio_id, name=name, tags=_clean_tags(tags), image_key=validate_key(image_key),
        width=width, height=height, created_by_id=user_id,
    )
    session.add(style)
    session.flush()
    log_event(session, "style.added", studio_id=studio_id, data={"style_id": style.id, "name": name})
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
