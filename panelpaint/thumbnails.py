"""Page thumbnails: small PNGs of a page's line art or of a coloured result, one per size the
dashboard and the API show (`limits.THUMB_SIZES`), made by the workers that already hold the
decoded page, so the web only ever serves stored files and never decodes a full page."""
from __future__ import annotations

import io
from typing import TYPE_CHECKING

from PIL import Image

from panelpaint.limits import THUMB_SIZES

if TYPE_CHECKING:
    from panelpaint.store.storage import Storage


def thumbnail_kind(size: int) -> str:
    """The name a thumbnail of `size` is recorded under (a page's `thumbnails`, a render's outputs)."""
    return f"thumb{size}"


def thumbnails(img: Image.Image) -> dict[str, bytes]:
    """PNG thumbnails of `img`: at most `size` wide and twice that tall, for each of THUMB_SIZES
    (never enlarged). Each is shrunk from the one before it, so the page is resampled once. zlib's
    level 6 without Pillow's `optimize` search: a third of the time for about a fifth more bytes
    (the workers make these for every page; docs/benchmarks.md, "Load")."""
    small = img if img.mode in ("L", "RGB", "RGBA") else img.convert("RGB")
    out = {}
    for size in sorted(THUMB_SIZES, reverse=True):
        small = small.copy()
        small.thumbnail((size, size * 2), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        small.save(buf, "PNG", compress_level=6)
        out[thumbnail_kind(size)] = buf.getvalue()
    return out


def store_thumbnails(storage: "Storage", img: Image.Image) -> dict[str, str]:
    """Store `thumbnails(img)`; {kind: storage key}."""
    return {kind: storage.put_bytes(data, ".png") for kind, data in thumbnails(img).items()}
