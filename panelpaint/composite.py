"""Colour back at native resolution: line-aware upsampling of panel colours, panel masks, multiplied line art.

The network colours a panel at about 512 px; a page panel is 2-4 times larger. Plain bicubic
upsampling smears each colour a few pixels across the lines and keeps the network's own blurry
lines in the colour. Here the regions enclosed by the native line art act as barriers: next to a
line every pixel takes the colour measured in the interior of its own region, further in the
network's colour is kept (gradients and shading survive), and the line pixels themselves take the
colour of the nearest paper pixel, so the flats carry no lines. A guided filter (He et al.) is
available as an alternative method.
"""
from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

Method = Literal["regions", "guided", "bicubic"]


def normalize_lines(gray: np.ndarray) -> np.ndarray:
    """Levels for the model input: the paper white goes to 255 and the ink to 0 (uint8 in, uint8 out)."""
    g = gray.astype(np.float32)
    paper = float(np.percentile(g, 90))
    ink = float(np.percentile(g, 1))
    if paper - ink < 16:  # a blank or flat crop: nothing to stretch
        return np.full_like(gray, 255) if paper > 127 else gray.copy()
    out = (g - ink) * (255.0 / (paper - ink))
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter with a grey guide (float32 in [0, 1]); `src` may have channels."""
    guide = guide.astype(np.float32)
    src = src.astype(np.float32)
    ksize = (2 * radius + 1, 2 * radius + 1)

    def box(a: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(a, -1, ksize, borderType=cv2.BORDER_REFLECT)

    if src.ndim == 3:
        return np.dstack([guided_filter(guide, src[..., c], radius, eps) for c in range(src.shape[2])])
    mean_i, mean_p = box(guide), box(src)
    cov_ip = box(guide * src) - mean_i * mean_p
    var_i = box(guide * guide) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box(a) * guide + box(b)


def line_mask(lines: np.ndarray, threshold: int = 160) -> np.ndarray:
    """Boolean mask of line pixels in a grey uint8 line-art array."""
    return lines < threshold


def upsample_colors(
    colors: np.ndarray,
    lines: np.ndarray,
    *,
    method: Method = "regions",
    bleed: float | None = None,
) -> np.ndarray:
    """Bring RGB uint8 `colors` (the network output) to the size of grey uint8 `lines`, without bleeding.

    `bleed` is the width in native pixels next to a line where the region's own colour replaces the
    upsampled one (default 2.5x the scale factor, at least 2 px: a network blurs a colour edge over
    2-3 of its own pixels).
    """
    h, w = lines.shape
    scale = max(h / colors.shape[0], w / colors.shape[1])
    up = cv2.resize(colors, (w, h), interpolation=cv2.INTER_CUBIC)
    if method == "bicubic":
        return up
    ycc = cv2.cvtColor(up, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    if method == "guided":
        guide = lines.astype(np.float32) / 255.0
        radius = max(2, int(round(2 * scale)))
        ycc[..., 1:] = guided_filter(guide, ycc[..., 1:] / 255.0, radius, 1e-3) * 255.0
        return cv2.cvtColor(np.clip(ycc + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_YCrCb2RGB)
    if method != "regions":
        raise ValueError(f"unknown upsampling method {method!r}")
    if bleed is None:
        bleed = max(2.0, 2.5 * scale)
    ink = line_mask(lines)
    paper = (~ink).astype(np.uint8)
    if not paper.any():
        return up
    # Distance of each paper pixel to the nearest line (0 on the lines).
    dist = cv2.distanceTransform(paper, cv2.DIST_L2, 3)
    n, labels = cv2.connectedComponents(paper, connectivity=4)
    interior = (dist >= bleed) & (labels > 0)
    flat_labels = labels.ravel()
    region = np.zeros((n, 3), np.float32)
    counts = np.bincount(flat_labels[interior.ravel()], minlength=n).astype(np.float32)
    all_counts = np.bincount(flat_labels, minlength=n).astype(np.float32)
    for c in range(3):
        chan = ycc[..., c].ravel()
        sums = np.bincount(flat_labels[interior.ravel()], weights=chan[interior.ravel()], minlength=n)
        all_sums = np.bincount(flat_labels, weights=chan, minlength=n)
        # A region too thin to have an interior is measured over all its pixels.
        region[:, c] = np.where(counts > 0, sums / np.maximum(counts, 1), all_sums / np.maximum(all_counts, 1))
    if not interior.any():
        interior = labels > 0
    # Next to a line, a pixel takes the colour of the nearest interior pixel; that pixel lies on the
    # same side of the line unless the region is too thin to have an interior, where the region's
    # mean is used instead. Line pixels take their nearest interior colour whichever side it is on.
    _, nearest = cv2.distanceTransformWithLabels((~interior).astype(np.uint8), cv2.DIST_L2, 3,
                                                 labelType=cv2.DIST_LABEL_PIXEL)
    interior_index = np.flatnonzero(interior.ravel())
    source = interior_index[nearest.ravel() - 1]
    flat_ycc = ycc.reshape(-1, 3)
    fill = flat_ycc[source]
    other_side = (flat_labels[source] != flat_labels) & (flat_labels > 0)
    fill[other_side] = region[flat_labels[other_side]]
    weight = np.clip((dist - bleed) / bleed, 0.0, 1.0).reshape(-1, 1)
    out = (weight * flat_ycc + (1.0 - weight) * fill).reshape(h, w, 3)
    return cv2.cvtColor(np.clip(out + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_YCrCb2RGB)


def multiply(colors: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """Line art multiplied on RGB colours: black stays exactly black, white paper shows the colour exactly."""
    prod = colors.astype(np.uint16) * lines.astype(np.uint16)[..., None]
    return ((prod + 127) // 255).astype(np.uint8)


def paste_panel(flats: np.ndarray, colors: np.ndarray, mask: np.ndarray, origin: tuple[int, int]) -> None:
    """Write `colors` (crop-sized RGB) into page-sized `flats` where the crop-sized `mask` is set."""
    x0, y0 = origin
    h, w = mask.shape
    region = flats[y0:y0 + h, x0:x0 + w]
    sel = mask > 0
    region[sel] = colors[sel]
