"""Generated colour 'paintings' for the training, data and evaluation tests: flat shapes with outlines."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

PALETTES = [
    [(220, 40, 40), (250, 200, 60), (40, 40, 40)],     # red / yellow
    [(40, 80, 220), (60, 200, 220), (20, 20, 60)],     # blue / cyan
    [(40, 170, 60), (150, 220, 90), (20, 60, 20)],     # greens
    [(160, 60, 200), (250, 140, 200), (60, 20, 60)],   # purple / pink
]


def painting(seed: int, w: int = 48, h: int = 40, palette: int | None = None) -> Image.Image:
    """White paper, a few outlined shapes filled from one palette (the palette identifies the 'style')."""
    rng = np.random.default_rng(seed)
    colours = PALETTES[seed % len(PALETTES) if palette is None else palette]
    img = Image.new("RGB", (w, h), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    for k in range(3):
        x0, y0 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
        x1, y1 = x0 + int(rng.integers(w // 4, w // 2)), y0 + int(rng.integers(h // 4, h // 2))
        shape = draw.ellipse if k % 2 else draw.rectangle
        shape([x0, y0, x1, y1], fill=colours[k % 2], outline=(0, 0, 0), width=2)
    return img


def paint_folder(folder: Path, n: int, seed: int = 0, **kw) -> Path:
    """n PNG paintings in `folder` (created), cycling through the palettes."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        painting(seed + i, **kw).save(folder / f"p{i:03d}.png")
    return folder
