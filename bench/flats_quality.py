"""How good the flats can be: segmentation and palette figures on held-out paintings, and the speed
(the rows, the figures and the measured results: docs/benchmarks.md, "Flats quality").

    python -m bench.flats_quality                       # val, all rows, speed
    python -m bench.flats_quality --split train --limit 400 --radii 2,1 --min-area 1e-4"""
from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from models.evaluate import eval_sketch
from panelpaint import flats, palette
from panelpaint.colour import chroma, is_paper, rgb_to_lab
from panelpaint.composite import multiply
from panelpaint.flats import Background, finish_panel, paint, region_colours, segment
from panelpaint.pages import crop_box, detect

ROOT = Path(__file__).resolve().parents[1]
DRAFT_CHROMA = 0.35  # the issue found the network's colours about a third as saturated as the truth
PAGE = ROOT / "samples" / "page.png"
A4_300DPI = (2480, 3508)


@dataclass
class Scores:
    psnr: list[float]
    delta_e: list[float]
    paper_kept: list[float]
    saturation: list[float]

    @classmethod
    def empty(cls) -> "Scores":
        return cls([], [], [], [])

    def add(self, out: np.ndarray, truth: np.ndarray, lines: np.ndarray) -> None:
        err = (out.astype(np.float64) - truth) ** 2
        self.psnr.append(10 * np.log10(255.0 ** 2 / max(err.mean(), 1e-10)))
        lo, lt = rgb_to_lab(out), rgb_to_lab(truth)
        self.delta_e.append(float(np.linalg.norm(lo - lt, axis=-1).mean()))
        paper = is_paper(lt) & (lines >= 250)
        if paper.any():
            self.paper_kept.append(float(is_paper(lo)[paper].mean()))
        coloured = ~is_paper(lt)
        if coloured.any() and chroma(lt)[coloured].mean() > 1:
            self.saturation.append(float(chroma(lo)[coloured].mean() / chroma(lt)[coloured].mean()))

    def row(self, name: str) -> str:
        return (f"| {name} | {statistics.mean(self.psnr):.2f} | {statistics.mean(self.delta_e):.1f} | "
                f"{100 * statistics.mean(self.paper_kept):.1f}% | {statistics.mean(self.saturation):.2f} |")


def simulated_draft(truth: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """A stand-in for the network's draft: a quarter of the size, blurred, paler, with soft lines."""
    h, w = truth.shape[:2]
    lab = rgb_to_lab(truth)
    lab[..., 1:] *= DRAFT_CHROMA
    pale = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
    soft = cv2.GaussianBlur(lines, (0, 0), 1.5).astype(np.float32) / 255.0
    drawn = np.clip((pale * soft[..., None]) * 255 + 0.5, 0, 255).astype(np.uint8)
    small = cv2.resize(drawn, (max(8, w // 4), max(8, h // 4)), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(small, (0, 0), 0.7)


def load(split: str, limit: int | None) -> list[Path]:
    files = sorted((ROOT / "data" / "prepared" / split).glob("*.png"))
    if not files:
        raise SystemExit(f"no images in data/prepared/{split}")
    if limit and limit < len(files):
        files = [files[i] for i in np.linspace(0, len(files) - 1, limit).astype(int)]
    return files


def quality(files: list[Path], snap_only: bool = False) -> None:
    rows: dict[str, Scores] = {}

    def score(name: str, out: np.ndarray, truth: np.ndarray, lines: np.ndarray) -> None:
        rows.setdefault(name, Scores.empty()).add(out, truth, lines)

    counts, seconds = [], 0.0
    for f in files:
        truth = np.asarray(Image.open(f).convert("RGB"))
        lines = np.clip(eval_sketch(truth) * 255 + 0.5, 0, 255).astype(np.uint8)
        t = time.perf_counter()
        regions = segment(lines)
        seconds += time.perf_counter() - t
        counts.append(regions.n)
        own = region_colours(regions, truth)
        pal = palette.extract_palette(truth, 8)
        background = flats.background_regions(regions)
        paper = flats.paper_regions(own)
        for bg, name in ((Background.COLOURED, "coloured"), (Background.PAPER, "paper")):
            keep = paper | background if bg is Background.PAPER else paper
            colours = own.copy()
            colours[keep] = 255
            if not snap_only:
                score(f"oracle flats, background {name}", multiply(paint(regions, colours), lines), truth, lines)
            snapped = palette.snap(own, pal, keep=keep, weights=regions.areas)
            score(f"oracle + palette, background {name}", multiply(paint(regions, snapped), lines), truth, lines)
            draft = simulated_draft(truth, lines)
            for pal_arg, suffix in ((None, ""), (pal, " + palette")):
                if snap_only and pal_arg is None:
                    continue
                done = finish_panel(draft, lines, palette=pal_arg, background=bg, shading=False)
                score(f"draft flats{suffix}, background {name}", multiply(done.flats, lines), truth, lines)
        if not snap_only:
            up = cv2.resize(simulated_draft(truth, lines), truth.shape[1::-1], interpolation=cv2.INTER_CUBIC)
            score("draft bicubic", multiply(up, lines), truth, lines)
            score("line art alone", multiply(np.full_like(truth, 255), lines), truth, lines)
    print(f"{len(files)} images; regions per image: mean {statistics.mean(counts):.1f}, "
          f"median {statistics.median(counts):.0f}; segment {1000 * seconds / len(files):.1f} ms/image")
    print("| | PSNR (dB) | mean ΔE | white paper kept | saturation ratio |")
    print("|---|---:|---:|---:|---:|")
    for name, s in rows.items():
        print(s.row(name))


def speed(repeat: int) -> None:
    cv2.setNumThreads(1)
    page = Image.open(PAGE).convert("L").resize(A4_300DPI, Image.LANCZOS)
    lines = np.asarray(page)
    panels = detect(page.convert("RGB"))
    crops = [lines[y0:y1, x0:x1] for x0, y0, x1, y1 in (crop_box(p, A4_300DPI, 35) for p in panels)]
    pal = palette.Palette.from_json([{"color": c, "share": 0.25} for c in ("#c04040", "#4060c0", "#e0c080", "#406030")])
    drafts = []
    for crop in crops:
        # A smooth colour field with the panel's lines: the size and look of a 512 px draft.
        h, w = crop.shape
        s = 512 / max(h, w)
        small = cv2.resize(crop, (max(8, round(w * s)), max(8, round(h * s))), interpolation=cv2.INTER_AREA)
        yy, xx = np.mgrid[0:small.shape[0], 0:small.shape[1]].astype(np.float32)
        field = np.dstack([128 + 100 * np.sin(xx / 40), 128 + 100 * np.cos(yy / 50), 160 + 60 * np.sin((xx + yy) / 70)])
        drafts.append(np.clip(field * small[..., None] / 255, 0, 255).astype(np.uint8))
    mpx = sum(c.size for c in crops) / 1e6
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        for crop, draft in zip(crops, drafts):
            finish_panel(draft, crop, palette=pal, hints=[(10, 10, (255, 0, 0))], shading=True)
        times.append(time.perf_counter() - t)
    best = min(times)
    # One panel's stages, for where the time goes.
    crop, draft = max(zip(crops, drafts), key=lambda cd: cd[0].size)
    t0 = time.perf_counter()
    regions = segment(crop)
    t1 = time.perf_counter()
    base = region_colours(regions, draft)
    t2 = time.perf_counter()
    paint(regions, base)
    t3 = time.perf_counter()
    up = cv2.resize(draft, crop.shape[::-1], interpolation=cv2.INTER_LINEAR)
    flats.shading(regions, base, up)
    t4 = time.perf_counter()
    print(f"speed: {len(crops)} panels, {mpx:.2f} Mpx of a {A4_300DPI[0]}x{A4_300DPI[1]} page, one core: "
          f"{best:.2f} s best of {repeat} ({best / mpx:.3f} s/Mpx)")
    print(f"  largest panel {crop.shape[1]}x{crop.shape[0]} ({crop.size / 1e6:.2f} Mpx, {regions.n} regions): "
          f"segment {t1 - t0:.3f} s, colours {t2 - t1:.3f} s, paint {t3 - t2:.3f} s, shading {t4 - t3:.3f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--split", default="val", help="val (report) or train (tuning)")
    ap.add_argument("--limit", type=int, default=None, help="at most this many images, evenly spread")
    ap.add_argument("--radii", help="override flats.GAP_RADII, e.g. 2,1")
    ap.add_argument("--min-area", type=float, help="override flats.MIN_AREA_SHARE")
    ap.add_argument("--contact", type=float, help="override flats.BACKGROUND_CONTACT")
    ap.add_argument("--max-gain", type=float, help="override palette.MAX_CHROMA_GAIN (1 = no chroma gain)")
    ap.add_argument("--snap-only", action="store_true", help="only the palette rows")
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--no-quality", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if args.radii:
        flats.GAP_RADII = tuple(float(r) for r in args.radii.split(","))
    if args.min_area is not None:
        flats.MIN_AREA_SHARE = args.min_area
    if args.contact is not None:
        flats.BACKGROUND_CONTACT = args.contact
    if args.max_gain is not None:
        palette.MAX_CHROMA_GAIN = args.max_gain
    print(f"snap: max chroma gain {palette.MAX_CHROMA_GAIN}")
    print(f"radii {flats.GAP_RADII} at {flats.REFERENCE_SIZE} px, min area share {flats.MIN_AREA_SHARE}, "
          f"background contact {flats.BACKGROUND_CONTACT}")
    if not args.no_quality:
        quality(load(args.split, args.limit), args.snap_only)
    if not args.no_speed:
        speed(args.repeat)


if __name__ == "__main__":
    main()
