"""End-to-end page speed: an A4 page at 300 dpi (2480x3508) with 6 panels, split by stage (decode,
panels, model, flats, compositing, encode per output), with the trained Colorizer when weights
exist and otherwise the shipped architecture with random weights (figures: docs/benchmarks.md).

    python -m bench.page_speed                     # CPU (or CUDA when present), 3 warm runs
    python -m bench.page_speed --device cpu --threads 2
    python -m bench.page_speed --device cuda --repeat 5"""
from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from panelpaint.formats import ALL as FORMATS
from panelpaint.pages import load_page, render_page, write_outputs
from tests.panelpaint.comic_pages import A4, a4_page



def style_image() -> Image.Image:
    grad = np.linspace(0, 1, 256, dtype=np.float32)
    rgb = np.stack([np.outer(grad, np.ones(256)) * 230, np.outer(np.ones(256), grad) * 180 + 40,
                    np.full((256, 256), 120.0)], -1)
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


def make_colorizer(args):
    from models.colorizer import Colorizer
    from panelpaint.weights import DEFAULT_WEIGHTS
    from tests.testkit import tiny_nets

    weights = Path(args.weights) if args.weights else DEFAULT_WEIGHTS
    if weights.is_file():
        return Colorizer.from_file(weights, device=args.device, compile=args.compile), f"trained weights {weights}"
    colorizer = Colorizer(*tiny_nets(0, "compact"), device=args.device, compile=args.compile,
                          model_version="random-compact")
    return colorizer, f"NO trained weights at {weights}: compact architecture with RANDOM weights (timing only)"


class CpuTimed:
    """Wraps a colorizer to record the process CPU seconds (all threads) its batch call takes."""

    def __init__(self, inner):
        self.inner, self.model_version, self.cpu = inner, inner.model_version, 0.0

    def colorize_batch(self, *args, **kwargs):
        c = time.process_time()
        try:
            return self.inner.colorize_batch(*args, **kwargs)
        finally:
            self.cpu = time.process_time() - c


def run_once(page_png: bytes, style: Image.Image, colorizer, size: int, out_dir: Path) -> dict[str, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    t = time.perf_counter()
    page = load_page(page_png, name="a4.png")
    decode = time.perf_counter() - t
    timed = CpuTimed(colorizer)
    result = render_page(page, style, timed, work_size=size)
    result.timings["decode"] = decode
    result.timings["model cpu seconds"] = timed.cpu
    t = time.perf_counter()
    write_outputs(result, out_dir, FORMATS, stem="a4")
    result.timings["encode (all outputs)"] = time.perf_counter() - t
    result.timings["total"] = time.perf_counter() - t0
    result.timings["cpu seconds (all threads)"] = time.process_time() - c0
    result.timings["_panels_found"] = len(result.panels)
    return result.timings


def encoder_table(img: Image.Image) -> list[tuple[str, float, int]]:
    """Seconds and bytes for candidate encoder settings on the composite."""
    rows = []
    small = img.copy()
    small.thumbnail((1600, 1600), Image.Resampling.BILINEAR)
    candidates = [
        ("PNG compress_level=6 (Pillow default)", img, "PNG", {"compress_level": 6}),
        ("PNG compress_level=1 (deliverables)", img, "PNG", {"compress_level": 1}),
        ("PNG compress_level=0 (stored)", img, "PNG", {"compress_level": 0}),
        ("JPEG q92 full size", img, "JPEG", {"quality": 92}),
        ("WebP q80 full size", img, "WEBP", {"quality": 80}),
        ("JPEG q85 1600 px (preview)", small, "JPEG", {"quality": 85}),
        ("WebP q80 1600 px", small, "WEBP", {"quality": 80}),
    ]
    for label, im, fmt, kw in candidates:
        buf = io.BytesIO()
        t = time.perf_counter()
        im.save(buf, fmt, **kw)
        rows.append((label, time.perf_counter() - t, buf.tell()))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None)
    ap.add_argument("--size", type=int, default=None,
                    help="working size (long side) of the network (default: the weights' calibrated size)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch and OpenCV threads (0 = library default)")
    ap.add_argument("--repeat", type=int, default=3, help="warm runs after one cold run")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--reference", choices=["gradient", "own"], default="gradient",
                    help="the style reference: an unrelated gradient (matching finds nothing), or the page's own "
                         "coloured result of a first render (every panel matches: the matching stage's worst case)")
    ap.add_argument("--out", default=None, help="output folder (default: a temporary one)")
    args = ap.parse_args()

    import cv2
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    colorizer, what = make_colorizer(args)
    args.size = args.size or colorizer.work_size
    page, boxes = a4_page()
    buf = io.BytesIO()
    page.save(buf, "PNG", compress_level=6)
    page_png = buf.getvalue()
    style = style_image()
    if args.reference == "own":
        first = render_page(load_page(page_png, name="a4.png"), style, colorizer, work_size=args.size)
        style = first.composite.convert("RGB")

    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores visible, "
          f"torch threads {torch.get_num_threads()}, device {colorizer.device}")
    if colorizer.device.type == "cuda":
        print(f"gpu: {torch.cuda.get_device_name()}")
    print(f"model: {what}; model_version={colorizer.model_version}; reference: {args.reference}")
    print(f"page: {A4[0]}x{A4[1]} ({A4[0] * A4[1] / 1e6:.1f} Mpx), {len(boxes)} panels, input PNG "
          f"{len(page_png) / 1e6:.1f} MB; work size {args.size}")

    out_root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="page_speed_"))
    cold = run_once(page_png, style, colorizer, args.size, out_root / "cold")
    warm = [run_once(page_png, style, colorizer, args.size, out_root / f"warm{i}") for i in range(args.repeat)]
    assert cold["_panels_found"] == len(boxes), f"detected {cold['_panels_found']} panels, expected {len(boxes)}"

    stages = ["decode", "panels", "model", "matching", "flats", "compositing",
              "encode_png_composite", "encode_png_flats", "encode_png_shading", "encode_png_lines", "encode_psd",
              "encode_png_lines_gray", "encode_ora", "encode_preview", "encode (all outputs)", "total", "cpu seconds (all threads)",
              "model cpu seconds"]
    print(f"\n{'stage':28s} {'cold s':>8s} {'warm s (median of ' + str(len(warm)) + ')':>24s}")
    for s in stages:
        med = statistics.median(w.get(s, 0.0) for w in warm) if warm else float("nan")
        print(f"{s:28s} {cold.get(s, 0.0):8.3f} {med:24.3f}")
    files = sorted((out_root / "cold").iterdir())
    print("\noutputs: " + ", ".join(f"{p.name} {p.stat().st_size / 1e6:.1f} MB" for p in files))
    without = {k: statistics.median(w.get(k, 0.0) for w in warm) for k in ("total", "encode_psd", "encode_ora",
                                                                           "encode_png_lines_gray")}
    core = without["total"] - without["encode_psd"] - without["encode_ora"] - without["encode_png_lines_gray"]
    print(f"warm total without the layered files (PNGs + JSON + preview only): {core:.3f} s")

    composite = Image.open(next(p for p in files if p.name == "a4.png")).convert("RGB")
    print(f"\n{'encoder setting (composite)':40s} {'s':>7s} {'MB':>7s}")
    for label, secs, size in encoder_table(composite):
        print(f"{label:40s} {secs:7.3f} {size / 1e6:7.2f}")


if __name__ == "__main__":
    main()
