"""The reference's colour key: k swatches from k-means in Lab, their JSON form, and snapping flats to them.

A style carries a `Palette`; flats snap to it so a character keeps identical colours in every panel.
`snap` with a random generator samples among the nearest swatches instead, so variants vary.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from panelpaint.colour import chroma, is_paper, lab_to_rgb, rgb_to_lab
from panelpaint.hints import parse_color
from panelpaint.limits import SWATCHES_MAX

# Near-black and greyish is ink: left out of a palette with the pixels touching it (anti-aliasing).
INK_L = 20.0
INK_CHROMA = 15.0
# k-means runs on at most this many pixels, spread evenly over the kept ones.
MAX_SAMPLES = 20_000
# Two cluster centres closer than this (ΔE76) are one swatch.
MERGE_DELTA_E = 4.0
# snap: the draft's chroma is scaled up to the palette's mean before matching (up to this factor):
# a network's draft is paler than its reference, and plain ΔE would send pale colours to greys.
MAX_CHROMA_GAIN = 3.0
# snap with a generator: the nearest CANDIDATES swatches, weighted by exp(-ΔE / TEMPERATURE).
CANDIDATES = 3
TEMPERATURE = 8.0


@dataclass(frozen=True)
class Swatch:
    """One colour of a palette and the share of the reference's coloured pixels it stands for."""

    rgb: tuple[int, int, int]
    share: float

    @property
    def hex(self) -> str:
        return "#{:02x}{:02x}{:02x}".format(*self.rgb)


@dataclass(frozen=True)
class Palette:
    """1..SWATCHES_MAX swatches; `extract_palette` sorts them by share, a user's edit keeps its order."""

    swatches: tuple[Swatch, ...]

    def __post_init__(self) -> None:
        if not 1 <= len(self.swatches) <= SWATCHES_MAX:
            raise ValueError(f"a palette has 1 to {SWATCHES_MAX} swatches, got {len(self.swatches)}")

    def __len__(self) -> int:
        return len(self.swatches)

    @property
    def colours(self) -> np.ndarray:
        """k x 3 uint8."""
        return np.array([s.rgb for s in self.swatches], np.uint8).reshape(-1, 3)

    def to_json(self) -> list[dict[str, Any]]:
        """[{"color": "#rrggbb", "share": float}, ...] in swatch order."""
        return [{"color": s.hex, "share": float(s.share)} for s in self.swatches]

    @classmethod
    def from_json(cls, data: Any) -> "Palette":
        """A palette from its JSON form (e.g. edited by a user); ValueError saying what is wrong.

        "share" may be left out (0). Colours are "#rrggbb" (or "rrggbb").
        """
        if not isinstance(data, (list, tuple)):
            raise ValueError(f"a palette must be a list of swatches, got {type(data).__name__}")
        if not 1 <= len(data) <= SWATCHES_MAX:
            raise ValueError(f"a palette has 1 to {SWATCHES_MAX} swatches, got {len(data)}")
        swatches = []
        for i, item in enumerate(data):
            if not isinstance(item, dict) or "color" not in item:
                raise ValueError(f"swatch {i}: must be an object with a \"color\" (#rrggbb), got {item!r}")
            try:
                rgb = parse_color(item["color"])
            except ValueError:
                raise ValueError(f"swatch {i}: color must look like #rrggbb, got {item['color']!r}") from None
            share = item.get("share", 0.0)
            if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0.0 <= share <= 1.0:
                raise ValueError(f"swatch {i}: share must be a number from 0 to 1, got {share!r}")
            swatches.append(Swatch(rgb, float(share)))
        return cls(tuple(swatches))


def _kmeans_pp(data: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Initial cluster labels for `data` (m x 3) from k-means++ seeding with a fixed seed."""
    rng = np.random.default_rng(seed)
    centres = [data[rng.integers(len(data))]]
    d2 = ((data - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        total = d2.sum()
        i = int(rng.choice(len(data), p=d2 / total)) if total > 0 else int(rng.integers(len(data)))
        centres.append(data[i])
        d2 = np.minimum(d2, ((data - data[i]) ** 2).sum(1))
    dist = ((data[:, None, :] - np.array(centres)[None]) ** 2).sum(2)
    return dist.argmin(1).astype(np.int32)


def _coloured_pixels(rgb: np.ndarray) -> np.ndarray:
    """Lab of the reference's pixels that are neither paper nor ink (nor touch ink), at most ~256k read."""
    step = max(1, math.ceil(math.sqrt(rgb.shape[0] * rgb.shape[1] / 262_144)))
    lab = rgb_to_lab(rgb[::step, ::step])
    ink = ((lab[..., 0] < INK_L) & (chroma(lab) < INK_CHROMA)).view(np.uint8)
    near_ink = cv2.dilate(ink, np.ones((3, 3), np.uint8)).astype(bool)
    paper = is_paper(lab)
    for keep in (~paper & ~near_ink, ~paper, np.ones_like(paper)):
        if keep.any():
            return lab[keep]
    raise AssertionError("unreachable")


def extract_palette(rgb: np.ndarray, k: int = 8) -> Palette:
    """The reference's k main colours (fewer when it has fewer distinct ones), most common first.

    k-means in CIE Lab (deterministic: fixed k-means++ seeding, then cv2.kmeans) over the pixels
    that are neither paper (see panelpaint.colour) nor ink (L < INK_L, chroma < INK_CHROMA, and
    the pixels touching it); centres closer than MERGE_DELTA_E merge. An image of paper and ink
    only gives its paper or ink colours.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or rgb.size == 0:
        raise ValueError(f"reference must be RGB uint8 (h, w, 3), got {rgb.dtype} {rgb.shape}")
    if not 1 <= k <= SWATCHES_MAX:
        raise ValueError(f"k must be 1 to {SWATCHES_MAX}, got {k}")
    lab = _coloured_pixels(rgb)
    if len(lab) > MAX_SAMPLES:
        lab = lab[np.linspace(0, len(lab) - 1, MAX_SAMPLES).astype(np.int64)]
    distinct = len(np.unique(lab_to_rgb(lab).view(np.dtype((np.void, 3)))))
    k = min(k, distinct)
    data = np.ascontiguousarray(lab, dtype=np.float32)
    if k == 1:
        labels, centres = np.zeros(len(data), np.int32), data.mean(0, keepdims=True)
    else:
        criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 0.05)
        _, labels, centres = cv2.kmeans(data, k, _kmeans_pp(data, k)[:, None].copy(), criteria, 1,
                                        cv2.KMEANS_USE_INITIAL_LABELS)
        labels = labels.ravel()
    counts = np.bincount(labels, minlength=len(centres)).astype(np.float64)
    # Merge near-identical centres into the more common one.
    order = np.argsort(-counts, kind="stable")
    kept: list[int] = []
    for i in order:
        if counts[i] == 0:
            continue
        close = [j for j in kept if np.linalg.norm(centres[i] - centres[j]) < MERGE_DELTA_E]
        if close:
            j = close[0]
            centres[j] = (centres[j] * counts[j] + centres[i] * counts[i]) / (counts[j] + counts[i])
            counts[j] += counts[i]
        else:
            kept.append(i)
    kept.sort(key=lambda i: -counts[i])
    colours = lab_to_rgb(centres[kept])
    total = counts.sum()
    return Palette(tuple(Swatch(tuple(int(v) for v in c), float(counts[i] / total)) for c, i in zip(colours, kept)))


def chroma_gain(lab: np.ndarray, weights: np.ndarray, pal_lab: np.ndarray, shares: np.ndarray) -> float:
    """How much paler the colours `lab` (weighted, e.g. by area) are than the palette: the palette's
    share-weighted mean chroma over theirs, between 1 and MAX_CHROMA_GAIN."""
    if len(lab) == 0 or weights.sum() <= 0:
        return 1.0
    mine = float(np.average(chroma(lab), weights=weights))
    theirs = float(np.average(chroma(pal_lab), weights=shares if shares.sum() > 0 else None))
    return float(np.clip(theirs / max(mine, 1e-3), 1.0, MAX_CHROMA_GAIN))


def snap(
    colours: np.ndarray,
    palette: Palette,
    *,
    keep: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
    temperature: float = TEMPERATURE,
) -> np.ndarray:
    """Each colour (n x 3 uint8) replaced by a palette colour; the ones in `keep` (default: the
    paper-like ones) become paper white. Only palette colours or white come out.

    Distance is ΔE76 after the colours' chroma is raised to the palette's (`chroma_gain`, with
    `weights` such as region areas; default equal).
    Without `rng` each takes its nearest swatch (the same colours every time: a colour key); with
    one each samples among its CANDIDATES nearest, weighted by exp(-ΔE / temperature), and a draw
    that changed nothing moves the biggest region (by `weights`) to its second nearest, so a
    variant always differs from the canonical colouring.
    """
    colours = np.asarray(colours, dtype=np.uint8).reshape(-1, 3)
    lab = rgb_to_lab(colours).astype(np.float64)
    paper = is_paper(lab) if keep is None else np.asarray(keep, bool)
    if paper.shape != (len(colours),):
        raise ValueError(f"keep must be a boolean mask of {len(colours)} colours, got shape {paper.shape}")
    pal_rgb = palette.colours
    pal = rgb_to_lab(pal_rgb).astype(np.float64)
    shares = np.array([s.share for s in palette.swatches])
    weights = np.ones(len(colours)) if weights is None else np.asarray(weights, np.float64)
    if weights.shape != (len(colours),):
        raise ValueError(f"weights must hold one number per colour ({len(colours)}), got shape {weights.shape}")
    lab[:, 1:] *= chroma_gain(lab[~paper], weights[~paper], pal, shares)
    dist = np.linalg.norm(lab[:, None, :] - pal[None, :, :], axis=2)
    if rng is None:
        pick = dist.argmin(1)
    else:
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        m = min(CANDIDATES, len(pal))
        near = np.argsort(dist, axis=1, kind="stable")[:, :m]
        d = np.take_along_axis(dist, near, 1)
        w = np.exp(-(d - d[:, :1]) / temperature)
        cum = np.cumsum(w / w.sum(1, keepdims=True), axis=1)
        u = rng.random(len(colours))[:, None]
        pick = near[np.arange(len(colours)), np.minimum((u > cum).sum(1), m - 1)]
        coloured = np.flatnonzero(~paper)
        if m > 1 and len(coloured) and np.array_equal(pick[coloured], near[coloured, 0]):
            # A variant must differ from the canonical colouring ("no control may do nothing"):
            # when the draw kept every nearest swatch, the biggest region takes its second nearest.
            big = coloured[np.argmax(weights[coloured])]
            pick[big] = near[big, 1]
    out = pal_rgb[pick]
    out[paper] = 255
    return out
