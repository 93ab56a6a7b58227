"""Page outputs: composite/flats/line PNGs, layered PSD and OpenRaster, panel JSON, JPEG previews.

Encoding, not the network, is the cost at page size, so each output has its own settings: lossless
deliverables use zlib level 1 (about 3x faster than Pillow's default 6 for ~20 % more bytes), previews
and thumbnails are JPEG, and each image is encoded once even when two outputs carry it (the ORA and
the PNG folder share their PNG bytes).
"""
from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from panelpaint.formats import ALL as FORMATS

if TYPE_CHECKING:
    from panelpaint.pages import PageResult

PNG_LEVEL = 1
PREVIEW_SIDE = 1600
PREVIEW_QUALITY = 85
THUMB_SIDE = 256


def png_bytes(img: Image.Image, level: int = PNG_LEVEL) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=level)
    return buf.getvalue()


def jpeg_bytes(img: Image.Image, max_side: int, quality: int = PREVIEW_QUALITY) -> bytes:
    """A JPEG of `img` shrunk (never enlarged) so its long side is at most `max_side`."""
    img = img.convert("RGB")
    if max(img.size) > max_side:
        img = img.copy()
        img.thumbnail((max_side, max_side), Image.Resampling.BILINEAR, reducing_gap=2.0)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def line_layer(lines: Image.Image) -> Image.Image:
    """Black lines on transparency (LA): alpha is the darkness of the line art."""
    alpha = 255 - np.asarray(lines.convert("L"), np.uint8)
    return Image.fromarray(np.dstack([np.zeros_like(alpha), alpha]), "LA")


# Layer names, bottom to top, as a colourist expects them (the PSD and the ORA carry the same).
FLATS_LAYER, SHADING_LAYER, LINES_LAYER = "Flats", "Shading", "Lines"


def psd_bytes(composite: Image.Image, flats: Image.Image, lines: Image.Image,
              shading: Image.Image | None = None, shading_shown: bool = True) -> bytes:
    """A layered PSD: "Flats" (normal), "Shading" (multiply; hidden unless `shading_shown`) and
    "Lines" (the line art, multiply) on top; the stored merged image is the exact composite."""
    from psd_tools import PSDImage
    from psd_tools.api.layers import PixelLayer
    from psd_tools.constants import BlendMode, Compression

    psd = PSDImage.frompil(composite.convert("RGB"), compression=Compression.RLE)
    PixelLayer.frompil(flats.convert("RGB"), psd, FLATS_LAYER, compression=Compression.RLE)
    if shading is not None:
        layer = PixelLayer.frompil(shading.convert("RGB"), psd, SHADING_LAYER, compression=Compression.RLE)
        layer.blend_mode = BlendMode.MULTIPLY
        layer.visible = shading_shown
    layer = PixelLayer.frompil(lines.convert("RGB"), psd, LINES_LAYER, compression=Compression.RLE)
    layer.blend_mode = BlendMode.MULTIPLY
    # The merged image we stored is already the exact multiply; psd-tools would otherwise re-render
    # it on save in pure numpy (4-9 s at A4). It has no public way to clear its "edited" flag.
    if hasattr(psd, "_updated"):
        psd._updated = False
    buf = io.BytesIO()
    psd.save(buf)
    return buf.getvalue()


def ora_bytes(composite_png: bytes, flats_png: bytes, lines_png: bytes, size: tuple[int, int], thumb: Image.Image,
              shading_png: bytes | None = None, shading_shown: bool = True) -> bytes:
    """An OpenRaster file: flats, shading (svg:multiply; hidden unless `shading_shown`) and the line
    art (svg:multiply) on top, merged image and thumbnail."""
    w, h = size
    layers = [(LINES_LAYER, "data/lines.png", "svg:multiply", lines_png, True)]
    if shading_png is not None:
        layers.append((SHADING_LAYER, "data/shading.png", "svg:multiply", shading_png, shading_shown))
    layers.append((FLATS_LAYER, "data/flats.png", "svg:src-over", flats_png, True))
    stack = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<image version="0.0.3" w="{w}" h="{h}" xres="300" yres="300">\n'
        '  <stack>\n'  # the top layer comes first
        + "".join(f'    <layer name="{name}" src="{src}" composite-op="{op}" opacity="1.0" '
                  f'visibility="{"visible" if shown else "hidden"}" x="0" y="0"/>\n'
                  for name, src, op, _, shown in layers)
        + '  </stack>\n'
        '</image>\n'
    )
    thumb = thumb.convert("RGB")
    thumb.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        # The spec wants "mimetype" first and uncompressed, so tools can sniff the type at offset 38.
        z.writestr(zipfile.ZipInfo("mimetype"), "image/openraster", compress_type=zipfile.ZIP_STORED)
        z.writestr("stack.xml", stack, compress_type=zipfile.ZIP_DEFLATED)
        files = [(src, data) for _, src, _, data, _ in layers]
        for name, data in files + [("mergedimage.png", composite_png), ("Thumbnails/thumbnail.png", png_bytes(thumb, 6))]:
            z.writestr(name, data, compress_type=zipfile.ZIP_STORED)  # PNGs are compressed already
    return buf.getvalue()


def encode_page(result: "PageResult", formats: set[str], *, stem: str = "page") -> dict[str, tuple[str, bytes]]:
    """Encode the outputs named in `formats` in memory: {kind: (file name, bytes)}; see `pages.encode_outputs`.

    Encode times are added to `result.timings` as encode_<what>.
    """
    unknown = set(formats) - FORMATS
    if unknown:
        raise ValueError(f"unknown output format(s): {', '.join(sorted(unknown))}; choose from {', '.join(sorted(FORMATS))}")
    timings = result.timings
    out: dict[str, tuple[str, bytes]] = {}
    cache: dict[str, bytes] = {}

    def encoded(key: str) -> bytes:
        if key not in cache:
            t = time.perf_counter()
            if key == "composite":
                cache[key] = png_bytes(result.composite)
            elif key == "flats":
                cache[key] = png_bytes(result.flats)
            elif key == "shading":
                cache[key] = png_bytes(result.shading)
            elif key == "lines_gray":
                # The ORA line layer is the line art itself (multiplied); one grey channel is a
                # third of the RGB work and any PNG reader takes it.
                cache[key] = png_bytes(result.lines)
            timings[f"encode_png_{key}"] = time.perf_counter() - t
        return cache[key]

    if "png" in formats:
        out["composite"] = (f"{stem}.png", encoded("composite"))
        out["flats"] = (f"{stem}.flats.png", encoded("flats"))
        if result.shading is not None:
            out["shading"] = (f"{stem}.shading.png", encoded("shading"))
        t = time.perf_counter()
        out["lines"] = (f"{stem}.lines.png", png_bytes(line_layer(result.lines)))
        timings["encode_png_lines"] = time.perf_counter() - t
    if "psd" in formats:
        t = time.perf_counter()
        out["psd"] = (f"{stem}.psd", psd_bytes(result.composite, result.flats, result.lines, result.shading,
                                               result.shading_shown))
        timings["encode_psd"] = time.perf_counter() - t
    if "ora" in formats:
        composite_png, flats_png, lines_png = encoded("composite"), encoded("flats"), encoded("lines_gray")
        t = time.perf_counter()
        shading_png = encoded("shading") if result.shading is not None else None
        out["ora"] = (f"{stem}.ora", ora_bytes(composite_png, flats_png, lines_png, result.size, result.composite,
                                               shading_png, result.shading_shown))
        timings["encode_ora"] = time.perf_counter() - t
    if "json" in formats:
        out["json"] = (f"{stem}.panels.json", json.dumps(result.panels_json(), indent=1).encode())
    if "preview" in formats:
        t = time.perf_counter()
        out["preview"] = (f"{stem}.preview.jpg", jpeg_bytes(result.composite, PREVIEW_SIDE))
        out["thumbnail"] = (f"{stem}.thumb.jpg", jpeg_bytes(result.composite, THUMB_SIDE, quality=80))
        timings["encode_preview"] = time.perf_counter() - t
    return out


def write_page(result: "PageResult", out_dir: Path, formats: set[str], *, stem: str = "page") -> dict[str, Path]:
    """Write the outputs named in `formats` as `out_dir/<stem>.<kind>...`; see `pages.write_outputs`."""
    encoded = encode_page(result, formats, stem=stem)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for kind, (name, data) in encoded.items():
        path = out_dir / name
        path.write_bytes(data)
        paths[kind] = path
    return paths
