"""Write samples/page.png: a line-art comic page (framed panels in rows) for the README's render demo.

    python scripts/make_sample_page.py data/prepared/val/a.png data/prepared/val/b.png ...

Each given painting becomes the line art of one panel (XDoG line extraction, as the training
sketches are made), fitted inside a black frame; gutters stay white. Rows hold 2, 1 and 2 panels
by default, so the page shows a wide panel between two rows and exercises the reading order.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from models.lines import extract_lines

ROOT = Path(__file__).resolve().parents[1]


def line_art(path: Path, box: tuple[int, int]) -> Image.Image:
    """The painting's line art, fitted (never stretched) and centred in a white box of `box` size."""
    with Image.open(path) as im:
        im = im.convert("RGBA")
        rgb = Image.new("RGB", im.size, "white")
        rgb.paste(im, mask=im.getchannel("A"))
    # Prepared training images are small; enlarge before extracting lines so strokes stay thin.
    scale = min(box[0] / rgb.width, box[1] / rgb.height)
    rgb = rgb.resize((max(1, int(rgb.width * scale)), max(1, int(rgb.height * scale))), Image.LANCZOS)
    lines = extract_lines(np.asarray(rgb), method="xdog")
    art = Image.fromarray((lines * 255).round().astype(np.uint8), "L")
    canvas = Image.new("L", box, 255)
    canvas.paste(art, ((box[0] - art.width) // 2, (box[1] - art.height) // 2))
    return canvas


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paintings", type=Path, nargs="+", help="one painting per panel, in reading order")
    ap.add_argument("--size", type=int, nargs=2, default=(1240, 1754), help="page size (A4 at 150 dpi)")
    ap.add_argument("--rows", type=int, nargs="+", default=[2, 1, 2], help="panels per row")
    ap.add_argument("--out", type=Path, default=ROOT / "samples" / "page.png")
    args = ap.parse_args()
    if len(args.paintings) != sum(args.rows):
        ap.error(f"--rows {args.rows} needs {sum(args.rows)} paintings, got {len(args.paintings)}")

    width, height = args.size
    margin, gutter, frame = 60, 36, 5
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    row_h = (height - 2 * margin - gutter * (len(args.rows) - 1)) // len(args.rows)
    paintings = iter(args.paintings)
    for r, n in enumerate(args.rows):
        y0 = margin + r * (row_h + gutter)
        col_w = (width - 2 * margin - gutter * (n - 1)) // n
        for c in range(n):
            x0 = margin + c * (col_w + gutter)
            inner = (col_w - 2 * frame - 20, row_h - 2 * frame - 20)
            page.paste(line_art(next(paintings), inner), (x0 + frame + 10, y0 + frame + 10))
            draw.rectangle([x0, y0, x0 + col_w - 1, y0 + row_h - 1], outline=0, width=frame)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    page.save(args.out, optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
