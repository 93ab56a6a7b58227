"""Write the README demo inputs, samples/sketch.png and samples/style.png, from two held-out images.

    python scripts/make_samples.py --sketch data/prepared/val/A.png --style data/prepared/val/B.png

The sketch is the fixed evaluation line extraction (`models.evaluate.eval_sketch`) of a held-out
painting, the style another held-out painting; both are kept small (long side 256 px).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from models.data import load_rgb
from models.evaluate import eval_sketch

ROOT = Path(__file__).resolve().parents[1]


def fit_long_side(rgb: np.ndarray, side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    s = side / max(h, w)
    return np.asarray(Image.fromarray(rgb).resize((max(1, round(w * s)), max(1, round(h * s))), Image.LANCZOS))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sketch", type=Path, required=True, help="held-out painting to draw the sketch from")
    ap.add_argument("--style", type=Path, required=True, help="held-out painting used as the style reference")
    ap.add_argument("--side", type=int, default=256)
    ap.add_argument("--out", type=Path, default=ROOT / "samples")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    lines = eval_sketch(fit_long_side(load_rgb(args.sketch), args.side))
    Image.fromarray((lines * 255).round().astype(np.uint8), "L").save(args.out / "sketch.png", optimize=True)
    Image.fromarray(fit_long_side(load_rgb(args.style), args.side)).save(args.out / "style.png", optimize=True)
    for name in ("sketch.png", "style.png"):
        print(f"{args.out / name}: {(args.out / name).stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
