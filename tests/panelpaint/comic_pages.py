"""Synthetic comic pages with known panel boxes, and a deterministic fake colorizer, for the page tests."""
from __future__ import annotations

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
    for x, y, w, h in boxes:
        d.rectangle([x, y, x + w - 1, y + h - 1], outline=0, width=border)
        if not art:
            continue
        # A figure: closed shapes and strokes inside the frame, some of them touching it.
        for _ in range(3):
            cx, cy = rng.integers(x + w // 5, x + 4 * w // 5), rng.integers(y + h // 5, y + 4 * h // 5)
            r = int(rng.integers(8, max(9, min(w, h) // 5)))
            d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=0, width=2)
        for _ in range(2):
            x1, y1 = rng.integers(x + border, x + w - border), rng.integers(y + border, y + h - border)
            x2, y2 = rng.integers(x + border, x + w - border), rng.integers(y + border, y + h - border)
            d.line([int(x1), int(y1), int(x2), int(y2)], fill=0, width=2)
    if page_number:
        d.text((size[0] // 2 - 4, size[1] - 25), "7", fill=0)
    return page.convert("RGB")


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
