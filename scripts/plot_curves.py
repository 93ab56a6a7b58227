"""Plot training curves from runs' metrics.jsonl files as a PNG, with Pillow only (no matplotlib).

    python scripts/plot_curves.py runs/main/metrics.jsonl:"with guides" \
        runs/ablation-noguides/metrics.jsonl:"without guides" --key l1_out --max-step 800 -o docs/img/loss.png
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14)]


def read_curve(path: Path, key: str, max_step: int | None) -> list[tuple[int, float]]:
    points: dict[int, float] = {}  # a resumed run may log a step twice: the later line wins
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        if key in rec and (max_step is None or rec["step"] <= max_step):
            points[int(rec["step"])] = float(rec[key])
    return sorted(points.items())


def smooth(points: list[tuple[int, float]], weight: float) -> list[tuple[int, float]]:
    """Exponential moving average (as TensorBoard's smoothing slider), bias-corrected at the start."""
    out, avg, norm = [], 0.0, 0.0
    for step, v in points:
        avg = weight * avg + (1 - weight) * v
        norm = weight * norm + (1 - weight)
        out.append((step, avg / norm))
    return out


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    span = max(hi - lo, 1e-9)
    step = 10 ** math.floor(math.log10(span / n))
    for m in (1, 2, 5, 10):
        if span / (step * m) <= n:
            step *= m
            break
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def plot(curves: list[tuple[str, list[tuple[int, float]]]], title: str, ylabel: str, out: Path,
         size: tuple[int, int] = (720, 420)) -> None:
    w, h = size
    left, right, top, bottom = 70, 20, 40, 50
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    xs = [s for _, c in curves for s, _ in c]
    ys = [v for _, c in curves for _, v in c]
    x0, x1 = 0, max(xs)
    y0, y1 = min(ys), max(ys)
    pad = 0.05 * (y1 - y0 or 1)
    y0, y1 = y0 - pad, y1 + pad
    px = lambda x: left + (x - x0) / max(x1 - x0, 1) * (w - left - right)  # noqa: E731
    py = lambda y: top + (y1 - y) / (y1 - y0) * (h - top - bottom)  # noqa: E731
    for t in nice_ticks(y0, y1):
        d.line([(left, py(t)), (w - right, py(t))], fill=(230, 230, 230))
        d.text((left - 8, py(t)), f"{t:g}", fill="black", font=font, anchor="rm")
    for t in nice_ticks(x0, x1, 8):
        d.line([(px(t), top), (px(t), h - bottom)], fill=(240, 240, 240))
        d.text((px(t), h - bottom + 6), f"{t:g}", fill="black", font=font, anchor="mt")
    d.rectangle([left, top, w - right, h - bottom], outline="black")
    for i, (label, c) in enumerate(curves):
        colour = COLOURS[i % len(COLOURS)]
        d.line([(px(s), py(v)) for s, v in c], fill=colour, width=2)
        d.line([(w - right - 150, top + 14 + 16 * i), (w - right - 125, top + 14 + 16 * i)], fill=colour, width=3)
        d.text((w - right - 120, top + 14 + 16 * i), label, fill="black", font=font, anchor="lm")
    d.text((w // 2, 14), title, fill="black", font=font, anchor="mm")
    d.text((w // 2, h - 14), "training step", fill="black", font=font, anchor="mm")
    d.text((8, top - 20), ylabel, fill="black", font=font)
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out, optimize=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="METRICS.jsonl[:LABEL]")
    ap.add_argument("--key", default="l1_out")
    ap.add_argument("--smooth", type=float, default=0.9)
    ap.add_argument("--max-step", type=int)
    ap.add_argument("--title", default="")
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args()
    curves = []
    for spec in args.runs:
        path, _, label = spec.partition(":")
        points = read_curve(Path(path), args.key, args.max_step)
        if not points:
            raise SystemExit(f"{path} has no '{args.key}' values")
        curves.append((label or Path(path).parent.name, smooth(points, args.smooth)))
    plot(curves, args.title or f"{args.key} (EMA {args.smooth})", args.key, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
