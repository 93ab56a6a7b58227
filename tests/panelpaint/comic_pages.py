"""Synthetic comic pages with known panel boxes, the pages other tests and the benchmarks upload,
and a deterministic fake colorizer. Import as `tests.panelpaint.comic_pages`; panel_corpus.py
builds the detection corpus from these drawers."""
from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw

PAGE_W, PAGE_H = 600, 850


def grid_boxes(rows: list[int], *, width: int = PAGE_W, height: int = PAGE_H, margin: int = 40,
               gutter: int = 16) -> list[tuple[int, int, int, int]]:
    """(x, y, w, h) boxes in reading order (LTR) for rows holding rows[i] equal panels each."""
    boxes = []
    row_h = (height - 2 * margin - gutter * (len(rows) - 1)) // len(rows)
    for r, count in enumerate(rows):
        col_w = (width - 2 * margin - gutter * (count - 1)) // count
        y = margin + r * (row_h + gutter)
        for c in range(count):
            boxes.append((margin + c * (col_w + gutter), y, col_w, row_h))
    return boxes


def draw_page(boxes, *, size=(PAGE_W, PAGE_H), border: int = 3, seed: int = 0, art: bool = True,
              page_number: bool = True) -> Image.Image:
    """White page, black panel borders `border` px thick drawn inside each box, scribbled art inside."""
    rng = np.random.default_rng(seed)
    page = Image.new("L", size, 255)
    d = ImageDraw.Draw(page)
    for box in boxes:
        draw_frame(d, box, border)
        if art:
            draw_art(d, box, rng, border)
    if page_number:
        d.text((size[0] // 2 - 4, size[1] - 25), "7", fill=0)
    return page.convert("RGB")


def draw_frame(d: ImageDraw.ImageDraw, box, border: int = 3, ink: int = 0) -> None:
    """A rectangular panel frame `border` px thick drawn inside the (x, y, w, h) box."""
    x, y, w, h = box
    d.rectangle([x, y, x + w - 1, y + h - 1], outline=ink, width=border)


def draw_art(d: ImageDraw.ImageDraw, box, rng: np.random.Generator, border: int = 3, ink: int = 0) -> None:
    """A figure: closed shapes and strokes inside the (x, y, w, h) box, some of them touching its edge."""
    x, y, w, h = box
    for _ in range(3):
        cx, cy = rng.integers(x + w // 5, x + 4 * w // 5), rng.integers(y + h // 5, y + 4 * h // 5)
        r = int(rng.integers(8, max(9, min(w, h) // 5)))
        d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=ink, width=2)
    for _ in range(2):
        x1, y1 = rng.integers(x + border, x + w - border), rng.integers(y + border, y + h - border)
        x2, y2 = rng.integers(x + border, x + w - border), rng.integers(y + border, y + h - border)
        d.line([int(x1), int(y1), int(x2), int(y2)], fill=ink, width=2)


def draw_inked_line(d: ImageDraw.ImageDraw, start, end, rng: np.random.Generator, width: int = 3,
                    ink: int = 0) -> None:
    """A hand-inked straight line: short pieces that wobble a pixel either way and vary in width."""
    (x0, y0), (x1, y1) = start, end
    n = max(2, int(np.hypot(x1 - x0, y1 - y0) // 25))
    t = np.linspace(0, 1, n + 1)
    wobble = rng.normal(0, 0.7, (n + 1, 2))
    wobble[[0, -1]] = 0
    pts = np.stack([x0 + t * (x1 - x0), y0 + t * (y1 - y0)], 1) + wobble
    for a, b in zip(pts[:-1], pts[1:]):
        d.line([tuple(a), tuple(b)], fill=ink, width=max(1, width + int(rng.integers(-1, 2))))


def draw_inked_frame(d: ImageDraw.ImageDraw, box, rng: np.random.Generator, width: int = 3) -> None:
    """A hand-inked frame along the inside of the (x, y, w, h) box."""
    x, y, w, h = box
    half = width // 2
    x0, y0, x1, y1 = x + half, y + half, x + w - 1 - half, y + h - 1 - half
    for a, b in (((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)), ((x1, y1), (x0, y1)), ((x0, y1), (x0, y0))):
        draw_inked_line(d, a, b, rng, width)


def draw_text(d: ImageDraw.ImageDraw, box, rng: np.random.Generator, ink=0) -> None:
    """Lettering: rows of short word-like strokes filling the (x, y, w, h) box."""
    x, y, w, h = box
    for row_y in range(y + 4, y + h - 6, 11):
        cx = x + 4
        while cx < x + w - 12:
            word = int(rng.integers(8, 28))
            end = min(cx + word, x + w - 4)
            d.line([cx, row_y + 3, end, row_y + 3], fill=ink, width=3)
            cx = end + 6


def draw_balloon(d: ImageDraw.ImageDraw, box, rng: np.random.Generator, ink=0, paper=255) -> None:
    """A speech balloon: a white ellipse outlined in ink over whatever is below, with lettering.

    Colours are grey levels (or, on an RGB page, colour tuples or names)."""
    x, y, w, h = box
    d.ellipse([x, y, x + w - 1, y + h - 1], fill=paper, outline=ink, width=2)
    draw_text(d, (x + w // 5, y + h // 4, 3 * w // 5, h // 2), rng, ink)


def draw_caption(d: ImageDraw.ImageDraw, box, rng: np.random.Generator, ink=0, paper=255) -> None:
    """A narration caption: a small framed box of lettering."""
    x, y, w, h = box
    d.rectangle([x, y, x + w - 1, y + h - 1], fill=paper, outline=ink, width=2)
    draw_text(d, (x + 4, y + 3, w - 8, h - 6), rng, ink)


def scan(page: Image.Image, rng: np.random.Generator, *, paper: float = 228, ink: float = 35, noise: float = 5,
         angle: float = 0.0, quality: int = 70) -> Image.Image:
    """What a scanner makes of a clean page: greyish paper, grey ink, noise, a slight tilt, JPEG artefacts."""
    page = page.convert("L")
    if angle:
        page = page.rotate(angle, resample=Image.BICUBIC, fillcolor=255)
    arr = ink + np.asarray(page, np.float32) * ((paper - ink) / 255) + rng.normal(0, noise, (page.height, page.width))
    buf = io.BytesIO()
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=quality)
    return Image.open(buf).convert("RGB")


def rotated_box(box, angle: float, size) -> tuple[int, int, int, int]:
    """The (x, y, w, h) box around `box` after `scan(..., angle=angle)` turned a page of `size` about its centre."""
    x, y, w, h = box
    cx, cy = size[0] / 2, size[1] / 2
    a = np.radians(angle)
    corners = np.array([[x, y], [x + w, y], [x, y + h], [x + w, y + h]], float) - (cx, cy)
    # PIL turns counter-clockwise on screen (y down): x' = x cos + y sin, y' = -x sin + y cos.
    turned = corners @ np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) + (cx, cy)
    x0, y0 = np.floor(turned.min(0)).astype(int)
    x1, y1 = np.ceil(turned.max(0)).astype(int)
    return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


def png(image: Image.Image, level: int = 6) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", compress_level=level)
    return buf.getvalue()


def grid_page(size: tuple[int, int], rows: int, cols: int, *, seed: int = 0, margin: int | None = None,
              gutter: int | None = None, border: int | None = None) -> bytes:
    """A grey PNG page of rows x cols framed panels with scribbled art (`draw_page`); margins,
    gutters and borders scale with the page unless given."""
    w, h = size
    boxes = grid_boxes([cols] * rows, width=w, height=h, margin=w // 20 if margin is None else margin,
                       gutter=max(8, w // 50) if gutter is None else gutter)
    border = max(2, w // 300) if border is None else border
    return png(draw_page(boxes, size=size, border=border, seed=seed, page_number=False).convert("L"))


def small_page(size: tuple[int, int] = (64, 96), color=(255, 255, 255), lines: bool = True,  # noqa: ANN001
               seed: int = 0) -> bytes:
    """A tiny RGB PNG: two framed panels (none without `lines`) on `color`; `seed` moves the first
    frame, so pages of different seeds are different files."""
    img = Image.new("RGB", size, color)
    if lines:
        d = ImageDraw.Draw(img)
        d.rectangle([4 + seed % 20, 4, size[0] - 5, size[1] // 2 - 2], outline=(0, 0, 0), width=2)
        d.rectangle([4, size[1] // 2 + 2, size[0] - 5, size[1] - 5], outline=(0, 0, 0), width=2)
    return png(img)


def two_panel_page() -> bytes:
    """A small page of two framed panels, a circle and a hill: regions big enough to place a hint in."""
    img = Image.new("L", (320, 440), 255)
    d = ImageDraw.Draw(img)
    d.rectangle([16, 16, 303, 206], outline=0, width=3)
    d.rectangle([16, 226, 303, 423], outline=0, width=3)
    d.ellipse([100, 50, 220, 170], outline=0, width=3)
    d.line([40, 400, 160, 260, 280, 400], fill=0, width=3)
    return png(img)


def style_png(side: int = 128) -> bytes:
    """A style reference to colour pages with: a warm painting with a blue disc and a green patch."""
    s = side / 128
    img = Image.new("RGB", (side, side), (235, 170, 110))
    d = ImageDraw.Draw(img)
    d.ellipse([20 * s, 20 * s, 90 * s, 90 * s], fill=(60, 110, 200))
    d.rectangle([70 * s, 80 * s, 120 * s, 120 * s], fill=(90, 170, 80))
    return png(img)


A4 = (2480, 3508)  # 300 dpi


def a4_page(seed: int = 0) -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    """An A4 page at 300 dpi: six framed panels (3 rows of 2, borders 10 px, gutters 60 px) of dense
    line-art-like drawing (many regions, as a finished page has), and their boxes."""
    rng = np.random.default_rng(seed)
    w, h = A4
    margin, gutter = 150, 60
    cw, rh = (w - 2 * margin - gutter) // 2, (h - 2 * margin - 2 * gutter) // 3
    boxes = [(margin + c * (cw + gutter), margin + r * (rh + gutter), cw, rh) for r in range(3) for c in range(2)]
    page = Image.new("L", A4, 255)
    d = ImageDraw.Draw(page)
    for x, y, bw, bh in boxes:
        d.rectangle([x, y, x + bw - 1, y + bh - 1], outline=0, width=10)
        for _ in range(12):
            cx, cy = int(rng.integers(x + 80, x + bw - 80)), int(rng.integers(y + 80, y + bh - 80))
            r = int(rng.integers(20, 160))
            d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=0, width=int(rng.integers(2, 7)))
        for _ in range(25):
            pts = [(int(rng.integers(x + 12, x + bw - 12)), int(rng.integers(y + 12, y + bh - 12))) for _ in range(2)]
            d.line(pts, fill=int(rng.integers(0, 60)), width=int(rng.integers(2, 6)))
    return page.convert("RGB"), boxes


def sparse_a4_page(pixels: int, seed: int = 0, mode: str = "L") -> bytes:
    """A PNG of at most `pixels` pixels in A4 proportions, in `mode` (a grey or a colour scan):
    six framed panels with one shape each, cheap to draw at any size (60 Mpx included)."""
    w = int(math.sqrt(pixels / math.sqrt(2)))
    h = pixels // w
    img = Image.new(mode, (w, h), "white")
    d = ImageDraw.Draw(img)
    m, line = w // 20, max(2, w // 400)
    for r in range(3):
        for c in range(2):
            x0, y0 = m + c * (w - 2 * m) // 2, m + r * (h - 2 * m) // 3
            x1, y1 = x0 + (w - 2 * m) // 2 - m // 2, y0 + (h - 2 * m) // 3 - m // 2
            d.rectangle([x0, y0, x1, y1], outline=0, width=line)
            d.ellipse([x0 + m + seed, y0 + m, x1 - m, y1 - m], outline=0, width=line)
            d.line([x0 + m, y1 - m, x1 - m, y0 + m], fill=0, width=line)
    return png(img, level=1)


class FakeColorizer:
    """Colours each sketch with a flat colour derived from its style's mean, a palette and its batch index.

    Deterministic and model-free: the page pipeline is model-agnostic, so its tests use this. Lines in
    the sketch are drawn darker in the output, as a real network does, so the compositing step has to
    remove them from the flats.
    """

    model_version = "fake-1"

    def __init__(self):
        self.calls: list[dict] = []

    def colorize_batch(self, sketches, styles, hints=None, size=512, seed=None):
        self.calls.append({"n": len(sketches), "sizes": [s.size for s in sketches], "size": size,
                           "hints": hints, "seed": seed,
                           "style_ids": [id(s) for s in styles], "sketches": list(sketches)})
        out = []
        for i, (sketch, style) in enumerate(zip(sketches, styles)):
            base = np.asarray(style.convert("RGB"), np.float32).reshape(-1, 3).mean(0)
            tint = np.array([(37 * i) % 90, (71 * i) % 90, (53 * i) % 90], np.float32)
            colour = np.clip(base * 0.6 + tint, 0, 255)
            w, h = sketch.size
            arr = np.empty((h, w, 3), np.float32)
            arr[:] = colour
            # Left half a little warmer, so there are colour edges to upsample.
            arr[:, : w // 2, 0] = np.clip(arr[:, : w // 2, 0] + 40, 0, 255)
            if hints and hints[i] is not None:
                hint = np.asarray(hints[i].convert("RGBA"), np.float32)
                sel = hint[..., 3] > 0
                arr[sel] = hint[..., :3][sel]
            g = np.asarray(sketch.convert("L"), np.float32)[..., None] / 255.0
            out.append(Image.fromarray(np.clip(arr * g, 0, 255).astype(np.uint8), "RGB"))
        return out
