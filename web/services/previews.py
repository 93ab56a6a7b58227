"""Style previews: a one-page batch, hidden from the batch list, that colours a sample sketch with a style."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_login import current_user
from PIL import Image, ImageDraw
from werkzeug.datastructures import FileStorage

from panelpaint.limits import NAME_MAX
from panelpaint.store import batches as batch_store
from panelpaint.store.schema import Batch, StyleReference

from . import db
from .batches import PREVIEW_OPTION, Submitted, add_pages, current_render, result_key


def latest() -> dict[int, dict[str, Any]]:
    """The latest preview batch of each of the studio's styles: {style_id: {batch, page, has_result}}."""
    found: dict[int, dict[str, Any]] = {}
    rows = db().scalars(sa.select(Batch).where(Batch.studio_id == current_user.studio_id)
                        .order_by(Batch.id.desc()).limit(500))
    for batch in rows:
        style_id = (batch.options or {}).get(PREVIEW_OPTION)
        if style_id is None or style_id in found or not batch.pages:
            continue
        page = batch.pages[0]
        found[style_id] = {"batch": batch, "page": page, "has_result": result_key(current_render(page)) is not None}
    return found


def start(style: StyleReference) -> Submitted:
    """A one-page batch colouring the sample sketch with `style`, hidden from the batch list."""
    name, data = sample_sketch()
    # A preview shows a style: it is never held for a panel check, however unsure detection is.
    options = {PREVIEW_OPTION: style.id, batch_store.CHECK_PANELS: False}
    batch = batch_store.create_batch(db(), style.studio_id, current_user.id, f"Style preview: {style.name}"[:NAME_MAX],
                                     default_style_id=style.id, options=options)
    return add_pages(batch, [FileStorage(io.BytesIO(data), filename=name)])


def sample_sketch() -> tuple[str, bytes]:
    """The line art a style preview colours: SAMPLE_SKETCH, samples/sketch.png, or a drawn page."""
    configured = current_app.config.get("SAMPLE_SKETCH")
    root = Path(current_app.root_path).parent
    for path in ([Path(configured)] if configured else []) + [root / "samples" / "sketch.png"]:
        if path.is_file():
            return path.name, path.read_bytes()
    return "sample-sketch.png", drawn_sketch()


def drawn_sketch(size: tuple[int, int] = (384, 512)) -> bytes:
    """A small two-panel page of simple line art, for when no sample sketch ships."""
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
