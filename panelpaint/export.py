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
    from panelpaint.panels.model import Panel

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
# The PSD's bottom layer: the flats outside every panel (gutters, the page around frameless art).
GUTTERS_LAYER = "Gutters"


def panel_group_name(panel: "Panel") -> str:
    return f"Panel {panel.order + 1}"


def psd_bytes(composite: Image.Image, flats: Image.Image, lines: Image.Image,
              shading: Image.Image | None = None, shading_shown: bool = True,
              panels: "list[Panel] | None" = None) -> bytes:
    """A layered PSD whose stored merged image is the exact composite.

    With `panels`, bottom to top: "Gutters" (the flats outside every panel), one group per panel in
    reading order ("Panel 1", ...) holding that panel's "Flats" (normal) and "Shading" (multiply;
    hidden unless `shading_shown`), both cut to the panel's box and masked by its outline, so a
    colourist can select, hide or recolour one panel at a time; and "Lines" (multiply) on top.
    Without panels: "Flats", "Shading", "Lines" over the whole page.
    """
    from psd_tools import PSDImage
    from psd_tools.api.layers import Group, PixelLayer
    from psd_tools.constants import BlendMode, Compression

    psd = PSDImage.frompil(composite.convert("RGB"), compression=Compression.RLE)
    flats_rgb = np.asarray(flats.convert("RGB"))
    shading_l = np.asarray(shading.convert("L")) if shading is not None else None

    def add(parent, name: str, pixels: np.ndarray, top: int = 0, left: int = 0,  # noqa: ANN001 - a psd group
            multiply: bool = False, shown: bool = True) -> PixelLayer:
        layer = PixelLayer.frompil(Image.fromarray(pixels).convert("RGB"), parent, name, top=top, left=left,
                                   compression=Compression.RLE)
        if multiply:
            layer.blend_mode = BlendMode.MULTIPLY
        layer.visible = shown
        return layer

    if panels:
        outside = np.full(flats_rgb.shape[:2], 255, np.uint8)
        for panel in panels:
            outside[panel.mask(flats.size) > 0] = 0
        # RGBA into an RGB document: psd-tools stores the alpha as the layer's mask.
        PixelLayer.frompil(Image.fromarray(np.dstack([flats_rgb, outside]), "RGBA"), psd, GUTTERS_LAYER,
                           compression=Compression.RLE)
        for panel in panels:
            x0, y0, x1, y1 = panel.box()
            mask = Image.fromarray(panel.mask((x1 - x0, y1 - y0), (x0, y0)))
            group = Group.new(psd, panel_group_name(panel))
            # A mask on each layer rather than on the group: psd-tools 1.26 writes a group's mask
            # channel in a way it cannot read back.
            add(group, FLATS_LAYER, flats_rgb[y0:y1, x0:x1], y0, x0).create_mask(mask)
            if shading_l is not None:
                add(group, SHADING_LAYER, shading_l[y0:y1, x0:x1], y0, x0, multiply=True,
                    shown=shading_shown).create_mask(mask)
    else:
        add(psd, FLATS_LAYER, flats_rgb)
        if shading_l is not None:
            add(psd, SHADING_LAYER, shading_l, multiply=True, shown=shading_shown)
    add(psd, LINES_LAYER, np.asarray(lines.convert("L")), multiply=True)
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
                                               result.shading_shown, result.panels))
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
