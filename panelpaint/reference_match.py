"""Colours read off the reference where it shows the same drawing: a page re-rendered with its own
coloured version, a panel redrawn from a coloured key frame, a character sheet traced into a panel.

`match` aligns a panel's line art with the reference's own lines (ORB features and a RANSAC affine
fit, the reference mirrored too), refines the alignment with dense optical flow, and returns the
reference warped onto the panel, but only when the lines then agree far better than chance. On the
held-out paintings it accepts 88.8% of the paintings' own augmented copies and none of 178 other
paintings (docs/quality.md, "Reference matching"). A reference that is another drawing does not
align and nothing changes: the network's draft colours the panel.
`panelpaint.flats.reference_colours` turns a match into region colours.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import cv2
import numpy as np

# Everything is matched in a frame whose long side is this many pixels (line art and reference
# alike): enough ORB features on a 256-px icon and a 3000-px page, bounded time per panel.
FRAME_SIDE = 512
# The reference's own lines: XDoG, the extraction the evaluation sketches are made with.
XDOG_SIGMA, XDOG_K, XDOG_TAU, XDOG_PHI = 0.7, 1.6, 0.985, 120.0
# Darker than this (0..255) is a line pixel, in the sketch and in the reference's lines.
LINE_LEVEL = 128
FEATURES = 4000
# Lowe's ratio test: a feature's best match must be clearly better than its second best.
RATIO = 0.85
RANSAC_PIXELS = 6.0
# A fit needs this many features that agree on it: with 8, chance fits of 9 to 12 features accepted
# other paintings (4 of 178 pairs on the held-out split, none now; docs/quality.md).
MIN_INLIERS = 15
# A fit is a view of the same drawing only when its two scales (the singular values of its linear
# part) lie within [MIN_SCALE, MAX_SCALE] and within MAX_ANISOTROPY of each other. Repeated marks (a
# sign's double frame) otherwise let RANSAC collapse the panel onto one spot of the reference (scale
# 0.02 with a hundred "inliers": 8 of the held-out paintings whose own copies went unmatched).
MIN_SCALE, MAX_SCALE = 0.1, 10.0
MAX_ANISOTROPY = 3.0
# An alignment is accepted when the F-score of line pixels that agree within AGREEMENT_PIXELS (frame
# pixels) is at least MIN_AGREEMENT and CHANCE_MARGIN times what the same aligned lines score when
# shifted CHANCE_SHIFT pixels diagonally (dense hatching agrees with anything at some rate; a true
# alignment beats its own shifted copy). Diagonally, since a drawing's long straight lines run mostly
# across and down (frames, signs, buildings): shifted along itself, such a line still agrees, and a
# sign's true alignment scored no better than its copy shifted sideways (2 of the held-out
# paintings' own copies went unmatched so, docs/quality.md).
MIN_AGREEMENT = 0.2
AGREEMENT_PIXELS = 2.0
CHANCE_MARGIN = 1.05
CHANCE_SHIFT = 16
# An alignment that fails that test is accepted after the dense flow (FLOW_BLUR) when its lines then
# agree at least MIN_FLOW_AGREEMENT and FLOW_CHANCE_MARGIN times the flowed lines shifted: a flow
# pulls any lines some way onto others, so this test is stricter.
MIN_FLOW_AGREEMENT = 0.7
FLOW_CHANCE_MARGIN = 1.5
# Lines are blurred this much (frame pixels) before the dense flow, so it follows lines, not noise.
FLOW_BLUR = 3.0


def reference_lines(rgb: np.ndarray) -> np.ndarray:
    """Grey uint8 line art (0 ink, 255 paper) of an RGB painting: XDoG of its luma."""
    grey = cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    d = (cv2.GaussianBlur(grey, (0, 0), XDOG_SIGMA)
         - XDOG_TAU * cv2.GaussianBlur(grey, (0, 0), XDOG_SIGMA * XDOG_K))
    out = np.where(d >= 0, np.float32(1.0), 1.0 + np.tanh(XDOG_PHI * d))
    return (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _to_frame(image: np.ndarray, side: int = FRAME_SIDE) -> tuple[np.ndarray, float]:
    """`image` resized so that its long side is `side`, and the scale used."""
    h, w = image.shape[:2]
    s = side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR), s


def _orb() -> cv2.ORB:
    return cv2.ORB_create(FEATURES, fastThreshold=10)


# A reference is kept for matching at most this size (long side): region colours need no more, and
# it travels with a page's colours to the finishing worker.
REFERENCE_SIDE = 1024


@dataclass(eq=False)
class Reference:
    """A reference painting prepared for matching once, however many panels it is matched with."""

    rgb: np.ndarray  # HxWx3 uint8

    @classmethod
    def of(cls, rgb: np.ndarray) -> "Reference":
        """A reference from RGB uint8 of any size (an alpha channel is dropped), shrunk to REFERENCE_SIDE."""
        rgb = np.asarray(rgb, dtype=np.uint8)
        if rgb.ndim != 3 or rgb.shape[2] < 3:
            raise ValueError(f"a reference must be RGB (h, w, 3), got shape {rgb.shape}")
        rgb = np.ascontiguousarray(rgb[..., :3])
        if max(rgb.shape[:2]) > REFERENCE_SIDE:
            rgb, _ = _to_frame(rgb, REFERENCE_SIDE)
        return cls(rgb)

    @cached_property
    def _frame(self) -> tuple[np.ndarray, float]:
        # At its own size from FRAME_SIDE up (REFERENCE_SIDE at most): a whole coloured page as the
        # reference keeps each of its panels large enough to match a panel's frame.
        return _to_frame(reference_lines(self.rgb), max(FRAME_SIDE, max(self.rgb.shape[:2])))

    @property
    def lines(self) -> np.ndarray:
        """The reference's line art in its frame (long side between FRAME_SIDE and REFERENCE_SIDE)."""
        return self._frame[0]

    @property
    def scale(self) -> float:
        return self._frame[1]

    @cached_property
    def _mirrored_lines(self) -> np.ndarray:
        return np.ascontiguousarray(self.lines[:, ::-1])

    def oriented_lines(self, mirrored: bool) -> np.ndarray:
        """The lines in the frame, mirrored left to right or as they are (made once per reference)."""
        return self._mirrored_lines if mirrored else self.lines

    @cached_property
    def features(self) -> dict[bool, tuple[list, np.ndarray | None]]:
        """ORB keypoints and descriptors of the lines, as they are (False) and mirrored (True)."""
        orb = _orb()
        return {mirrored: orb.detectAndCompute(self.oriented_lines(mirrored), None) for mirrored in (False, True)}


@dataclass(eq=False)
class Match:
    """The reference warped onto a panel's line art, in the panel's frame (its long side FRAME_SIDE)."""

    image: np.ndarray  # hxwx3 uint8: the reference's colour under each frame pixel
    valid: np.ndarray  # hxw bool: frame pixels that the reference covers
    agreement: float  # line F-score of the affine alignment, 0..1
    inliers: int
    mirrored: bool


def _plausible(a: np.ndarray) -> bool:
    """Whether an affine map (2x3) is a view of the same drawing (MIN_SCALE, MAX_SCALE, MAX_ANISOTROPY)."""
    big, small = np.linalg.svd(a[:, :2], compute_uv=False)
    return bool(small >= MIN_SCALE and big <= MAX_SCALE and big <= MAX_ANISOTROPY * small)


def _affine(lines_frame: np.ndarray, ref: Reference) -> tuple[np.ndarray, bool, int] | None:
    """The affine map (2x3) from the panel's frame to the reference's frame (mirrored or not) with
    the most RANSAC inliers, or None."""
    keys, desc = _orb().detectAndCompute(lines_frame, None)
    if desc is None or len(keys) < MIN_INLIERS:
        return None
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    best = None
    for mirrored, (rkeys, rdesc) in ref.features.items():
        if rdesc is None or len(rkeys) < 2:
            continue
        # Each reference feature keeps only its best panel feature, for the same reason as the scale test.
        good: dict[int, cv2.DMatch] = {}
        for m in matcher.knnMatch(desc, rdesc, k=2):
            if len(m) == 2 and m[0].distance < RATIO * m[1].distance:
                if m[0].trainIdx not in good or m[0].distance < good[m[0].trainIdx].distance:
                    good[m[0].trainIdx] = m[0]
        if len(good) < MIN_INLIERS:
            continue
        src = np.float32([keys[g.queryIdx].pt for g in good.values()])
        dst = np.float32([rkeys[g.trainIdx].pt for g in good.values()])
        a, inliers = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PIXELS,
                                          maxIters=4000, refineIters=10)
        if a is None or not _plausible(a):
            continue
        n = int(inliers.sum())
        if n >= MIN_INLIERS and (best is None or n > best[2]):
            best = (a, mirrored, n)
    return best


def _coordinates(a: np.ndarray, shape: tuple[int, int], flow: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Reference-frame coordinates (x, y), float32 maps of `shape`, of each panel-frame pixel under `a`
    (after moving it by `flow` first)."""
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    if flow is not None:
        xs, ys = xs + flow[..., 0], ys + flow[..., 1]
    a = a.astype(np.float32)
    return a[0, 0] * xs + a[0, 1] * ys + a[0, 2], a[1, 0] * xs + a[1, 1] * ys + a[1, 2]


def _scorer(panel: np.ndarray, valid: np.ndarray) -> Callable[[np.ndarray], float]:
    """A function giving the F-score of line pixels within AGREEMENT_PIXELS of a line pixel of the
    other image, between the panel's lines and warped reference lines, inside `valid`. The panel's
    side (its line mask and distance map) is made once for every warped image scored."""
    a = (panel < LINE_LEVEL) & valid
    da = cv2.distanceTransform((~a).view(np.uint8), cv2.DIST_L2, 3)
    lines_a = int(a.sum())

    def score(warped: np.ndarray) -> float:
        b = (warped < LINE_LEVEL) & valid
        if lines_a < 20 or b.sum() < 20:
            return 0.0
        db = cv2.distanceTransform((~b).view(np.uint8), cv2.DIST_L2, 3)
        precision = float((da[b] <= AGREEMENT_PIXELS).mean())
        recall = float((db[a] <= AGREEMENT_PIXELS).mean())
        return 2 * precision * recall / max(precision + recall, 1e-9)

    return score


# Where the warped reference is trusted: in a TRUST_WINDOW-pixel window (frame pixels) that holds
# lines (more than TRUST_DENSITY of its pixels), at most TRUST_UNMATCHED of them may lack a line of
# the other image within TRUST_PIXELS. Elsewhere the reference shows something the panel does not
# draw (a mirrored border, a part redrawn differently) and its colour is not used there. Nor is it
# further than TRUST_REACH frame pixels from a panel line that a reference line agrees with: there
# nothing checks the alignment, the flow only extrapolates, and a reference cropped through a
# coloured shape spilled that colour over the panel's paper (docs/quality.md, "Reference matching").
TRUST_PIXELS = 3.0
TRUST_WINDOW = 61
TRUST_UNMATCHED = 0.5
TRUST_DENSITY = 0.02
TRUST_REACH = 45.0


def _trusted(panel: np.ndarray, warped: np.ndarray) -> np.ndarray:
    """Boolean frame mask: where the panel's lines and the warped reference lines agree locally, within
    TRUST_REACH of a panel line that agrees."""
    a = panel < LINE_LEVEL
    b = warped < LINE_LEVEL
    da = cv2.distanceTransform((~a).view(np.uint8), cv2.DIST_L2, 3)
    db = cv2.distanceTransform((~b).view(np.uint8), cv2.DIST_L2, 3)
    agreeing = a & (db <= TRUST_PIXELS)
    loose = ((b & (da > TRUST_PIXELS)) | (a & ~agreeing)).astype(np.float32)
    lines = (a | b).astype(np.float32)
    k = (TRUST_WINDOW, TRUST_WINDOW)
    dl = cv2.boxFilter(lines, -1, k)
    du = cv2.boxFilter(loose, -1, k)
    reach = cv2.distanceTransform((~agreeing).view(np.uint8), cv2.DIST_L2, 3) <= TRUST_REACH
    return reach & ~((dl > TRUST_DENSITY) & (du > TRUST_UNMATCHED * dl))


def _chance(score: Callable[[np.ndarray], float], warped: np.ndarray) -> float:
    """The best `score` (`_scorer`) of the aligned reference lines shifted CHANCE_SHIFT pixels along
    each diagonal, both ways."""
    best = 0.0
    for dx, dy in itertools.product((CHANCE_SHIFT, -CHANCE_SHIFT), repeat=2):
        shifted = cv2.warpAffine(warped, np.float32([[1, 0, dx], [0, 1, dy]]), warped.shape[::-1],
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=255)
        best = max(best, score(shifted))
    return best


def match(lines: np.ndarray, reference: Reference | np.ndarray) -> Match | None:
    """The reference warped onto grey uint8 line art `lines` (a panel's crop), or None when the
    reference does not show the same drawing (no alignment whose lines agree better than chance)."""
    ref = reference if isinstance(reference, Reference) else Reference.of(reference)
    lines = np.asarray(lines, dtype=np.uint8)
    if lines.ndim != 2 or min(lines.shape) < 8 or min(ref.rgb.shape[:2]) < 8:
        return None
    panel, _ = _to_frame(lines)
    found = _affine(panel, ref)
    if found is None:
        return None
    a, mirrored, inliers = found
    rlines = ref.oriented_lines(mirrored)
    rh, rw = rlines.shape
    rx, ry = _coordinates(a, panel.shape)
    valid = (rx >= 0) & (ry >= 0) & (rx <= rw - 1) & (ry <= rh - 1)
    warped = cv2.remap(rlines, rx, ry, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=255)
    score = _scorer(panel, valid)
    agreement = score(warped)
    aligned = agreement >= MIN_AGREEMENT and agreement > CHANCE_MARGIN * _chance(score, warped)
    # What the affine fit leaves (a redrawn pose, a warped scan): dense flow from the panel's lines
    # to the aligned reference lines.
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flow = dis.calc(cv2.GaussianBlur(panel, (0, 0), FLOW_BLUR), cv2.GaussianBlur(warped, (0, 0), FLOW_BLUR), None)
    rx, ry = _coordinates(a, panel.shape, flow)
    flowed = cv2.remap(rlines, rx, ry, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=255)
    if not aligned:
        # A drawing warped further than an affine map follows (a scan, a redrawn pose) is still the
        # same drawing when the flow brings its lines close and far above chance.
        score = _scorer(panel, (rx >= 0) & (ry >= 0) & (rx <= rw - 1) & (ry <= rh - 1))
        agreement = score(flowed)
        if agreement < MIN_FLOW_AGREEMENT or agreement <= FLOW_CHANCE_MARGIN * _chance(score, flowed):
            return None
    trusted = _trusted(panel, flowed)
    if mirrored:
        rx = (rw - 1) - rx
    # Reference-frame pixels -> the reference's own pixels.
    s = ref.scale
    rx, ry = (rx + 0.5) / s - 0.5, (ry + 0.5) / s - 0.5
    h, w = ref.rgb.shape[:2]
    valid = (rx >= 0) & (ry >= 0) & (rx <= w - 1) & (ry <= h - 1) & trusted
    image = cv2.remap(np.ascontiguousarray(ref.rgb), rx, ry, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return Match(image=image, valid=valid, agreement=agreement, inliers=inliers, mirrored=mirrored)
