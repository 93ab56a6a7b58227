"""Style previews: a one-page batch, hidden from the batch list, that colours a sample sketch with a style."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_login import current_user
from werkzeug.datastructures import FileStorage

from panelpaint.limits import NAME_MAX
from panelpaint.store import batches as batch_store
from panelpaint.store.schema import Batch, StyleReference

from . import db
from .batches import PREVIEW_OPTION, Submitted, add_pages, current_render, result_key

SHIPPED_SKETCH = "sample-sketch.png"


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
    """The line art a style preview colours: SAMPLE_SKETCH when set, else the sketch shipped with
    the dashboard (`web/static/sample-sketch.png`, the README's `samples/sketch.png`: a figure with
    closed regions, so a preview shows the style's colours rather than mostly paper)."""
    configured = current_app.config.get("SAMPLE_SKETCH")
    path = Path(configured) if configured else Path(current_app.static_folder) / SHIPPED_SKETCH
    return path.name, path.read_bytes()
