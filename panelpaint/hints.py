"""Per-panel colour hints: dots {x, y, color "#rrggbb"} in page pixels drawn into an RGBA hint image."""
from __future__ import annotations

import math
import re

from PIL import Image, ImageDraw

from panelpaint.limits import HINTS_MAX

_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")


def parse_color(value: str) -> tuple[int, int, int]:
    """"#rrggbb" (or "rrggbb") -> (r, g, b); ValueError with the offending value otherwise."""
    m = _HEX.match(str(value).strip())
    if not m:
        raise ValueError(f"hint colour must look like #rrggbb, got {value!r}")
    h = m.group(1)
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def validate_hints(dots: list[dict]) -> list[dict]:
    """Normalised copies of hint dots ({x, y, color}); ValueError on a malformed dot or more than
    HINTS_MAX of them."""
    if len(dots or []) > HINTS_MAX:
        raise ValueError(f"too many hints ({len(dots)}): a render takes at most {HINTS_MAX}")
    out = []
    for i, dot in enumerate(dots or []):
        try:
            x, y = float(dot["x"]), float(dot["y"])
        except (KeyError, TypeError, ValueError, OverflowError):
            raise ValueError(f"hint {i}: needs numeric x and y") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"hint {i}: x and y must be finite numbers")
        r, g, b = parse_color(dot.get("color", ""))
        out.append({"x": x, "y": y, "color": f"#{r:02x}{g:02x}{b:02x}"})
    return out


def hint_image(
    dots: list[dict],
    crop_box: tuple[int, int, int, int],
    size: tuple[int, int],
    radius: float | None = None,
) -> Image.Image | None:
    """RGBA image of `size` for the page region `crop_box` (x0, y0, x1, y1); alpha > 0 marks a hint.

    Dots are given in page pixels and scaled into the crop; dots outside the crop are ignored.
    Returns None when no dot falls inside, so the colorizer can skip the hint branch.
    """
    x0, y0, x1, y1 = crop_box
    sx, sy = size[0] / max(1, x1 - x0), size[1] / max(1, y1 - y0)
    if radius is None:
        radius = max(2.0, max(size) / 128)
    img = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    drawn = False
    for dot in validate_hints(dots):
        if not (x0 <= dot["x"] < x1 and y0 <= dot["y"] < y1):
            continue
        cx, cy = (dot["x"] - x0) * sx, (dot["y"] - y0) * sy
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=(*parse_color(dot["color"]), 255))
        drawn = True
    return img if drawn else None


def dots_from_image(img: Image.Image, size: tuple[int, int]) -> list[dict]:
    """Hint dots from an RGBA hint map the size of the sketch (style2paints' format: alpha > 0 marks
    a dot): one dot per connected blob, at its centre, with its mean colour."""
    import cv2
    import numpy as np

    if img.size != size:
        raise ValueError(f"hints image is {img.width}x{img.height} but the sketch is {size[0]}x{size[1]}; "
                         "draw hints on a transparent image the size of the sketch")
    rgba = np.asarray(img.convert("RGBA"))
    n, labels, stats, centres = cv2.connectedComponentsWithStats((rgba[..., 3] > 0).astype(np.uint8), 8)
    dots = []
    for i in range(1, n):
        r, g, b = (int(round(v)) for v in rgba[..., :3][labels == i].mean(axis=0))
        dots.append({"x": float(centres[i][0]), "y": float(centres[i][1]), "color": f"#{r:02x}{g:02x}{b:02x}"})
    return dots
