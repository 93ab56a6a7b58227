"""CIE Lab on uint8 RGB, and what counts as paper: the one definition that flats and palettes share.

Lab here is OpenCV's float conversion of sRGB (D65): L in [0, 100], a and b roughly in [-128, 127],
so a distance between two colours is CIE76's ΔE.
"""
from __future__ import annotations

import cv2
import numpy as np

# A colour at least this light and at most this chromatic is paper: it is painted exactly white.
PAPER_L = 85.0
PAPER_CHROMA = 12.0
PAPER_WHITE = (255, 255, 255)


# A page arrives "already coloured" when at least COLOURED_SHARE of it has a chromaticity (r, g, b
# over their sum) further than COLOURED_DISTANCE from the page's own paper tint (the median).
# Chromaticity ignores brightness, so grey ink multiplied onto a yellowed or sepia scan keeps the
# paper's tint and does not count, nor does JPEG's chroma noise (about 0.01); skin is about 0.08
# from white, sky 0.12, saturated reds 0.3. Near-black pixels have no reliable hue: they never count.
COLOURED_DISTANCE = 0.05
COLOURED_SHARE = 0.05
COLOURED_MIN_LEVEL = 48  # brightest channel of a pixel whose hue is judged
# The page is judged on a copy whose long side is at most this: the share needs no detail.
COLOURED_SAMPLE_SIDE = 512
# In a batch's options: colour the pages that arrive in colour too (absent or false: skip them).
COLOUR_ANYWAY_OPTION = "colour_anyway"


def coloured_share(rgb: np.ndarray) -> float:
    """The share (0..1) of a page's pixels that are clearly coloured; see `COLOURED_DISTANCE`."""
    rgb = np.asarray(rgb, dtype=np.uint8)
    if rgb.ndim == 2 or rgb.shape[-1] == 1:
        return 0.0  # a grey image has no chroma at all
    h, w = rgb.shape[:2]
    scale = COLOURED_SAMPLE_SIDE / max(h, w)
    if scale < 1:
        rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    # Channel by channel: reductions along a length-3 axis cost ten times as much (ingest's hot spot).
    r, g, b = (np.ascontiguousarray(rgb[..., c], dtype=np.float32).ravel() for c in range(3))
    lit = np.maximum(np.maximum(r, g), b) >= COLOURED_MIN_LEVEL
    if not lit.any():
        return 0.0
    r, g, b = r[lit], g[lit], b[lit]
    total = r + g + b
    r, g, b = r / total, g / total, b / total
    distance_sq = (r - np.median(r)) ** 2 + (g - np.median(g)) ** 2 + (b - np.median(b)) ** 2
    return float(np.count_nonzero(distance_sq > COLOURED_DISTANCE ** 2)) / (rgb.shape[0] * rgb.shape[1])


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB of any shape (..., 3) -> float32 Lab of the same shape."""
    rgb = np.asarray(rgb, dtype=np.uint8)
    flat = np.ascontiguousarray(rgb.reshape(-1, 1, 3), dtype=np.float32) / np.float32(255.0)
    return cv2.cvtColor(flat, cv2.COLOR_RGB2Lab).reshape(rgb.shape)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """float Lab of any shape (..., 3) -> uint8 RGB (out-of-gamut colours clipped, rounded)."""
    lab = np.asarray(lab, dtype=np.float32)
    flat = np.ascontiguousarray(lab.reshape(-1, 1, 3))
    rgb = cv2.cvtColor(flat, cv2.COLOR_Lab2RGB).reshape(lab.shape)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def chroma(lab: np.ndarray) -> np.ndarray:
    """C*ab = sqrt(a² + b²) of Lab colours (..., 3)."""
    return np.hypot(lab[..., 1], lab[..., 2])


def is_paper(lab: np.ndarray) -> np.ndarray:
    """Boolean mask (...) of the Lab colours (..., 3) that count as paper (L > PAPER_L, C < PAPER_CHROMA)."""
    return (lab[..., 0] > PAPER_L) & (chroma(lab) < PAPER_CHROMA)


def luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma (as Pillow's "L" and OpenCV's grey) of uint8 RGB (..., 3), as float32 in [0, 255]."""
    return np.asarray(rgb, dtype=np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
