"""Panel detection accuracy per kind of page (the drawn corpus of tests/panelpaint/panel_corpus.py in
both reading directions, and hand-labelled real pages when their files exist), and detection time
per A4 page (figures: docs/benchmarks.md, "Panel detection accuracy").

    python -m bench.panels_accuracy
    python -m bench.panels_accuracy --repeat 5
    python -m bench.panels_accuracy --kumiko data/kumiko   # also Kumiko on the same pages, side by side

`--kumiko DIR` runs Kumiko (fetched into DIR, see bench/kumiko_adapter.py) on every page scored here,
scores its panels with the same `score`, and times it on the same A4 pages."""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
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

# A detector: (the page: an image, or its file for a real page; the page in grey; direction) -> panels.
Detect = Callable[[Image.Image | str, np.ndarray, str], list]


def ours(source: Image.Image | str, gray: np.ndarray, direction: str) -> list:
    return detect_panels(gray, direction)


def table(rows: dict[str, list[PageScore]]) -> str:
    lines = ["| kind | pages right | mean IoU | order accuracy |", "| --- | ---: | ---: | ---: |"]
    for kind, scores in rows.items():
        right = sum(s.right for s in scores)
        lines.append(f"| {kind} | {right} / {len(scores)} | {np.mean([s.mean_iou for s in scores]):.3f} | "
                     f"{np.mean([s.order_accuracy for s in scores]):.3f} |")
    return "\n".join(lines)


def drawn_scores(variants: range, verbose: bool, detect: Detect = ours) -> dict[str, list[PageScore]]:
    rows: dict[str, list[PageScore]] = defaultdict(list)
    for page in (page for variant in variants for page in corpus(variant)):
        gray = to_gray(page.image)
        for direction in DIRECTIONS:
            s = score(detect(page.image, gray, direction), page.truth(direction))
            rows[page.kind.value].append(s)
            if verbose and not s.right:
                print(f"  wrong: {page.kind.value} / {page.name} ({direction}): found {s.found} of {s.expected}, "
                      f"IoUs {[round(v, 2) for v in s.ious]}, order hits {s.order_hits}")
    return rows


def real_scores(verbose: bool, detect: Detect = ours) -> tuple[dict[str, list[PageScore]], list[str]]:
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
            s = score(detect(str(path), gray, direction), truth)
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


def a4_times(repeat: int, timer: Callable[[Image.Image, int], float] | None = None) -> tuple[float, list[float]]:
    """Median seconds per A4 page: a page of six framed panels, and each corpus page scaled to A4 width.
    `timer(page, repeat)` times another detector (default: ours, on the page in grey)."""
    timer = timer or (lambda image, n: timed(to_gray(image), n))
    boxes = grid_boxes([2, 2, 2], width=A4[0], height=A4[1], margin=150, gutter=60)
    six = draw_page(boxes, size=A4, border=10, seed=0)
    scaled = []
    for page in corpus():
        w, h = page.image.size
        scaled.append(timer(page.image.resize((A4[0], round(h * A4[0] / w)), Image.BICUBIC), repeat))
    return timer(six, repeat), scaled


def side_by_side(names: tuple[str, str], left: dict[str, list[PageScore]], right: dict[str, list[PageScore]]) -> str:
    """Per kind: pages right, mean IoU and order accuracy of two detectors on the same pages."""
    a, b = names
    lines = [f"| kind | pages right {a} / {b} | mean IoU {a} / {b} | order accuracy {a} / {b} |",
             "| --- | ---: | ---: | ---: |"]
    for kind in left:
        cells = []
        for measure in (lambda v: f"{sum(s.right for s in v)}", lambda v: f"{np.mean([s.mean_iou for s in v]):.3f}",
                        lambda v: f"{np.mean([s.order_accuracy for s in v]):.3f}"):
            cells.append(f"{measure(left[kind])} / {measure(right[kind])}")
        cells[0] += f" of {len(left[kind])}"
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed detections per page (median)")
    parser.add_argument("--variants", type=int, default=3,
                        help="also score this many held-out variants of the corpus (other art and noise)")
    parser.add_argument("--no-time", action="store_true", help="accuracy only")
    parser.add_argument("-v", "--verbose", action="store_true", help="list the pages detected wrong")
    parser.add_argument("--kumiko", metavar="DIR",
                        help="also run Kumiko fetched into DIR on the same pages (see bench/kumiko_adapter.py)")
    args = parser.parse_args()
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores visible")
    kumiko = None
    if args.kumiko:
        from bench.kumiko_adapter import Kumiko

        kumiko = Kumiko(args.kumiko)
    detectors: list[tuple[str, Detect]] = [("ours", ours)]
    if kumiko:
        detectors.append(("Kumiko", lambda source, gray, direction: kumiko.panels(source, direction)))
    summary: dict[str, dict[str, list[PageScore]]] = {name: {} for name, _ in detectors}
    for name, detect in detectors:
        if kumiko:
            print(f"\n## {name}")
        for title, variants in (("the test suite's drawn pages", range(1)),
                                (f"{args.variants} held-out variants", range(1, 1 + args.variants))):
            if not variants:
                continue
            if args.verbose and kumiko:
                print(f"{name}, {title}:")
            drawn = drawn_scores(variants, args.verbose, detect)
            drawn["**all**"] = [s for scores in drawn.values() for s in scores]
            print(f"\n{title}, each page in both reading directions:")
            print(table(drawn))
            for kind, scores in drawn.items():
                summary[name].setdefault(kind, []).extend(scores)
        real, missing = real_scores(args.verbose, detect)
        if real:
            print()
            print(table(real))
            summary[name].update(real)
        for path in missing:
            print(f"(real page {path} absent: skipped)")
    if kumiko:
        print(f"\n## ours vs Kumiko: the drawn pages (suite's and {args.variants} held-out variants) "
              "and the real pages, each in both reading directions")
        print(side_by_side(("ours", "Kumiko"), summary["ours"], summary["Kumiko"]))
    if not args.no_time:
        six, scaled = a4_times(args.repeat)
        print()
        print(f"detection time per A4 page (2480x3508), median of {args.repeat}: six framed panels {six:.3f} s; "
              f"corpus pages scaled to A4 width: mean {np.mean(scaled):.3f} s, max {max(scaled):.3f} s")
        if kumiko:
            k_six, k_scaled = a4_times(args.repeat, kumiko.timed)
            print(f"Kumiko's time per A4 page (from a BMP file, decoding included), median of {args.repeat}: "
                  f"six framed panels {k_six:.3f} s; corpus pages scaled to A4 width: "
                  f"mean {np.mean(k_scaled):.3f} s, median {np.median(k_scaled):.3f} s, max {max(k_scaled):.3f} s")
            print(f"ours on the same pages: median {np.median(scaled):.3f} s")


if __name__ == "__main__":
    main()
