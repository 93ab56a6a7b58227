"""A page as panel detection sees it: a working-size copy, its background and what stands out of it.

The background is the colour of the page's margin (white, grey, black or tinted paper), so dark and
tinted pages need no special case; "gutter" is background-coloured paper connected to the page edge,
and everything else is content. Sizes are measured in `unit`s (1% of the page's short side), so
gutters and lines are judged against the page's own scale.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from panelpaint.images import gray_percentiles

# Pages are analysed at about this many pixels (A4 at 300 dpi becomes ~1100x1600): plenty for panels.
WORK_PIXELS = 1_800_000
MIN_SIDE = 16  # smaller pages are one panel: nothing in them can be told apart


@dataclass(frozen=True)
class PageView:
    """Masks of a page at working size (`scale` working pixels per page pixel)."""

    gray: np.ndarray  # uint8, working size
    scale: float
    gutter: np.ndarray  # bool: background connected to the page edge (gutters and margins)
    ink: np.ndarray  # bool: dark strokes that are not gutter
    unit: float  # 1% of the short side, in working pixels

    @property
    def shape(self) -> tuple[int, int]:
        return self.gray.shape

    @property
    def content(self) -> np.ndarray:
        return ~self.gutter

    @property
    def tolerance(self) -> int:
        return line_tolerance(self.unit)


def line_tolerance(unit: float) -> int:
    """How far (px) a drawn line may wander from straight: hand inking, a slightly tilted scan."""
    return max(1, round(0.3 * unit))


def validate(gray: np.ndarray) -> np.ndarray:
    gray = np.asarray(gray)
    if gray.ndim != 2 or gray.size == 0:
        raise ValueError(f"a page must be a non-empty 2-D grey array, got shape {gray.shape}")
    if gray.dtype != np.uint8:
        raise ValueError(f"a page must be a uint8 grey array, got {gray.dtype}")
    return gray


@dataclass(frozen=True)
class Tones:
    """The grey levels that matter: the background (the margin's colour when the margin is even, else
    the paper's: a full-bleed page has no margin to go by), how far from it a pixel still counts as
    background, the paper, and below what a pixel is ink."""

    background: float
    tolerance: float
    paper: float
    ink_below: float

    @classmethod
    def of(cls, gray: np.ndarray, unit: float) -> "Tones":
        r = max(1, round(unit))
        ring = np.concatenate([gray[:r].ravel(), gray[-r:].ravel(), gray[:, :r].ravel(), gray[:, -r:].ravel()])
        p1, paper, p99 = gray_percentiles(gray, (1, 90, 99))
        edge = float(np.median(ring))
        tolerance = max(12.0, 0.2 * max(p99 - edge, edge - p1, paper - p1))
        even = np.mean(np.abs(ring.astype(np.float32) - edge) < tolerance) >= 0.5
        return cls(edge if even else float(paper), tolerance, float(paper), paper - max(12.0, 0.2 * (paper - p1)))

    @property
    def dark(self) -> bool:
        """A background well darker than the paper (black or dark grey gutters)."""
        return self.background < self.paper - 2 * self.tolerance


def _edge_connected(mask: np.ndarray) -> np.ndarray:
    """The part of `mask` connected (4-way) to the page edge."""
    padded = np.pad(mask, 1, constant_values=True).astype(np.uint8)
    _, labels = cv2.connectedComponents(padded, connectivity=4)
    return (labels == labels[0, 0])[1:-1, 1:-1]


def analyse(gray: np.ndarray) -> PageView:
    """Working-size masks of a uint8 grey page (at least MIN_SIDE pixels each way)."""
    h, w = gray.shape
    scale = min(1.0, (WORK_PIXELS / (h * w)) ** 0.5)
    if scale < 1.0:
        gray = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    unit = min(gray.shape) / 100
    tones = Tones.of(gray, unit)
    plain = np.abs(gray.astype(np.int16) - int(round(tones.background))) < tones.tolerance
    if tones.dark:
        # On a dark page, dark strokes of the art touch the gutter: thin ones must not count as gutter.
        k = max(3, int(0.5 * unit) | 1)
        plain = cv2.morphologyEx(plain.astype(np.uint8), cv2.MORPH_OPEN, np.ones((k, k), np.uint8)).astype(bool)
    elif min(gray.shape) >= 400:
        # Seal hairline gaps in frames (scanned or anti-aliased borders) before flooding the gutter.
        plain = ~cv2.morphologyEx((~plain).astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8)).astype(bool)
    gutter = _edge_connected(plain)
    ink = (gray < tones.ink_below) & ~gutter
    return PageView(gray, scale, gutter, ink, unit)
