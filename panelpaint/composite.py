"""Colour back at native resolution: line-aware upsampling of panel colours, panel pasting,
multiplied line art (how the upsampling keeps colours on their side: `upsample_colors`)."""
from __future__ import annotations

import cv2
import numpy as np

from panelpaint.images import gray_percentiles

# Darker than this is line (a barrier for colour); lighter anti-aliasing counts as paper.
LINE_THRESHOLD = 160


def normalize_lines(gray: np.ndarray) -> np.ndarray:
    """Levels for the model input: the paper white goes to 255 and the ink to 0 (uint8 in, uint8 out)."""
    paper, ink = gray_percentiles(gray, (90, 1))
    g = gray.astype(np.float32)
    if paper - ink < 16:  # a blank or flat crop: nothing to stretch
        return np.full_like(gray, 255) if paper > 127 else gray.copy()
    out = (g - ink) * (255.0 / (paper - ink))
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def upsample_colors(colors: np.ndarray, lines: np.ndarray, *, bleed: float | None = None) -> np.ndarray:
    """Bring RGB uint8 `colors` (the network output) to the size of grey uint8 `lines`, without bleeding.

    The network colours a panel at its working size; the page's panel is often 2-4 times larger.
    Plain bicubic upsampling smears each colour across the lines and keeps the network's own blurry
    lines in the colour. Here the regions the native line art encloses are barriers: next to a line
    a pixel takes the colour of its own region's interior, further in the network's colour is kept
    (gradients survive), and line pixels take the nearest interior's colour, so flats carry no lines.
    `bleed` is the width in native pixels next to a line where the region's own colour replaces the
    upsampled one (default 2.5x the scale factor, at least 2 px: a network blurs a colour edge over
    2-3 of its own pixels).
    """
    h, w = lines.shape
    scale = max(h / colors.shape[0], w / colors.shape[1])
    up = cv2.resize(colors, (w, h), interpolation=cv2.INTER_CUBIC)
    if bleed is None:
        bleed = max(2.0, 2.5 * scale)
    paper = (lines >= LINE_THRESHOLD).astype(np.uint8)
    if not paper.any():
        return up
    # Distance of each paper pixel to the nearest line (0 on the lines); only pixels closer than
    # 2 * bleed change, so all the work below is done on those alone.
    dist = cv2.distanceTransform(paper, cv2.DIST_L2, 3)
    near = np.flatnonzero(dist < 2 * bleed)
    if near.size == 0:
        return up
    interior = dist >= bleed
    if not interior.any():
        interior = paper.astype(bool)
    # Next to a line a pixel takes the colour of the nearest interior pixel. That pixel lies on the
    # same side of the line unless the region is too thin to have an interior, where the region's
    # mean is used instead. Line pixels take their nearest interior colour whichever side it is on.
    _, nearest = cv2.distanceTransformWithLabels((~interior).astype(np.uint8), cv2.DIST_L2, 3,
                                                 labelType=cv2.DIST_LABEL_PIXEL)
    interior_index = np.flatnonzero(interior)
    source = interior_index[nearest.ravel()[near] - 1]
    flat = up.reshape(-1, 3)
    fill = flat[source].astype(np.float32)
    _, labels = cv2.connectedComponents(paper, connectivity=4)
    labels = labels.ravel()
    own, theirs = labels[near], labels[source]
    other_side = (own != theirs) & (own > 0)
    if other_side.any():
        n = int(labels.max()) + 1
        # Region means from every 4th interior pixel (a mean needs no more); a region too thin to
        # have an interior lies wholly within the near band, so its mean comes from there.
        sample = interior_index[::4]
        inside, near_labels = labels[sample], labels[near]
        counts = np.bincount(inside, minlength=n)
        near_counts = np.maximum(np.bincount(near_labels, minlength=n), 1)
        wanted = own[other_side]
        near_colours = flat[near]
        for c in range(3):
            sums = np.bincount(inside, weights=flat[sample, c], minlength=n)
            thin = np.bincount(near_labels, weights=near_colours[:, c], minlength=n) / near_counts
            mean = np.where(counts > 0, sums / np.maximum(counts, 1), thin)
            fill[other_side, c] = mean[wanted]
    weight = np.clip((dist.ravel()[near] - bleed) / bleed, 0.0, 1.0)[:, None]
    out = up.copy()
    out.reshape(-1, 3)[near] = np.clip(weight * flat[near] + (1.0 - weight) * fill + 0.5, 0, 255).astype(np.uint8)
    return out


def multiply(colors: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """Line art multiplied on RGB colours: black stays exactly black, white paper shows the colour exactly."""
    return cv2.multiply(colors, cv2.merge([lines, lines, lines]), scale=1 / 255)


def paste_panel(flats: np.ndarray, colors: np.ndarray, mask: np.ndarray, origin: tuple[int, int]) -> None:
    """Write `colors` (crop-sized RGB) into page-sized `flats` where the crop-sized `mask` is set."""
    x0, y0 = origin
    h, w = mask.shape
    cv2.copyTo(colors, mask, flats[y0:y0 + h, x0:x0 + w])
