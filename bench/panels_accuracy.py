"""Panel detection accuracy per kind of page (the drawn corpus of tests/panelpaint/panel_corpus.py in
both reading directions, and hand-labelled real pages when their files exist), and detection time
per A4 page (figures: docs/benchmarks.md, "Panel detection accuracy").

    python -m bench.panels_accuracy
    python -m bench.panels_accuracy --repeat 5"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from panelpaint.images import to_gray
from panelpaint.panels import detect_panels
from tests.panelpaint.comic_pages import draw_page, grid_boxes
from tests.panelpaint.panel_corpus import PageScore, corpus, score

ROOT = Path(__file__).resolve().parents[1]
TRUTH = Path(__file__).with_name("panels_truth.json")
A4 = (2480, 3508)
DIRECTIONS = ("ltr", "rtl")


def table(rows: dict[str, list[PageScore]]) -> str:
    lines = ["| kind | pages right | mean IoU | order accuracy |", "| --- | ---: | ---: | ---: |"]
    for kind, scores in rows.items():
        right = sum(s.right for s in scores)
        lines.append(f"| {kind} | {right} / {len(scores)} | {np.mean([s.mean_iou for s in scores]):.3f} | "
                     f"{np.mean([s.order_accuracy for s in scores]):.3f} |")
    return "\n".join(lines)


def drawn_scores(variants: range, verbose: bool) -> dict[str, list[PageScore]]:
    rows: dict[str, list[PageScore]] = defaultdict(list)
    for page in (page for variant in variants for page in corpus(variant)):
        gray = to_gray(page.image)
        for direction in DIRECTIONS:
            s = score(detect_panels(gray, direction), page.truth(direction))
            rows[page.kind.value].append(s)
            if verbose and not s.right:
                print(f"  wrong: {page.kind.value} / {page.name} ({direction}): found {s.found} of {s.expected}, "
                      f"IoUs {[round(v, 2) for v in s.ious]}, order hits {s.order_hits}")
    return rows


def real_scores(verbose: bool) -> tuple[dict[str, list[PageScore]], list[str]]:
    rows: dict[str, list[PageScore]] = defaultdict(list)
    missing = []
    for entry in json.loads(TRUTH.read_text())["pages"]:
        path = ROOT / entry["path"]
        if not path.is_file():
            missing.append(entry["path"])
            continue
        boxes = [tuple(b) for b in entry["boxes"]]
        gray = to_gray(Image.open(path))
        for direction in DIRECTIONS:
            truth = boxes if direction == "ltr" else [boxes[i] for i in entry["rtl"]]
            s = score(detect_panels(gray, direction), truth)
            rows[f"real: {entry['path']}"].append(s)
            if verbose and not s.right:
                print(f"  wrong: {entry['path']} ({direction}): found {s.found} of {s.expected}, "
                      f"IoUs {[round(v, 2) for v in s.ious]}")
    return rows, missing


def timed(gray: np.ndarray, repeat: int) -> float:
    """Median seconds of `repeat` detections (after one warm-up)."""
    detect_panels(gray)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        detect_panels(gray)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def a4_times(repeat: int) -> tuple[float, list[float]]:
    boxes = grid_boxes([2, 2, 2], width=A4[0], height=A4[1], margin=150, gutter=60)
    six = to_gray(draw_page(boxes, size=A4, border=10, seed=0))
    scaled = []
    for page in corpus():
        w, h = page.image.size
        scaled.append(timed(to_gray(page.image.resize((A4[0], round(h * A4[0] / w)), Image.BICUBIC)), repeat))
    return timed(six, repeat), scaled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed detections per page (median)")
    parser.add_argument("--variants", type=int, default=3,
                        help="also score this many held-out variants of the corpus (other art and noise)")
    parser.add_argument("--no-time", action="store_true", help="accuracy only")
    parser.add_argument("-v", "--verbose", action="store_true", help="list the pages detected wrong")
    args = parser.parse_args()
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores visible")
    for title, variants in (("the test suite's drawn pages", range(1)),
                            (f"{args.variants} held-out variants", range(1, 1 + args.variants))):
        if not variants:
            continue
        drawn = drawn_scores(variants, args.verbose)
        drawn["**all**"] = [s for scores in drawn.values() for s in scores]
        print(f"\n{title}, each page in both reading directions:")
        print(table(drawn))
    real, missing = real_scores(args.verbose)
    if real:
        print()
        print(table(real))
    for path in missing:
        print(f"(real page {path} absent: skipped)")
    if not args.no_time:
        six, scaled = a4_times(args.repeat)
        print()
        print(f"detection time per A4 page (2480x3508), median of {args.repeat}: six framed panels {six:.3f} s; "
              f"corpus pages scaled to A4 width: mean {np.mean(scaled):.3f} s, max {max(scaled):.3f} s")


if __name__ == "__main__":
    main()
