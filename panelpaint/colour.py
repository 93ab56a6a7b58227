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
