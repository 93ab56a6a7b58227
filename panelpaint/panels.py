"""Panel detection in line-art comic pages (after Kumiko) and their reading order.

The page is thresholded; white paper connected to the page edge is the gutter and margin; what
remains splits into connected panels. Panels joined by a balloon across a gutter, or touching along
a shared border, are cut along straight gutter rows/columns; nested panels fall inside their parent.
A page whose ink lies mostly outside any framed panel (splash, borderless) becomes one panel.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np

from panelpaint.images import gray_percentiles

Direction = Literal["ltr", "rtl"]


@dataclass
class Panel:
    """One panel: bounding box (x, y, w, h) and polygon [[x, y], ...] in page pixels, 0-based reading order."""

    bbox: tuple[int, int, int, int]
    polygon: list[list[int]]
    order: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def area(self) -> int:
        return self.bbox[2] * self.bbox[3]

    def box(self) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1), exclusive right/bottom."""
        x, y, w, h = self.bbox
        return x, y, x + w, y + h

    def mask(self, size: tuple[int, int], offset: tuple[int, int] = (0, 0)) -> np.ndarray:
        """uint8 mask (255 inside the polygon) of `size` (w, h) whose origin is page point `offset`."""
        out = np.zeros((size[1], size[0]), np.uint8)
        pts = np.asarray(self.polygon, np.int32).reshape(-1, 1, 2) - np.asarray(offset, np.int32)
        cv2.fillPoly(out, [pts], 255)
        return out

    def to_dict(self) -> dict:
        d = {"order": self.order, "bbox": list(self.bbox), "polygon": [list(p) for p in self.polygon]}
        if self.extra:
            d["extra"] = dict(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Panel":
        """Build a panel from stored or user-edited data; a missing polygon is the bbox rectangle."""
        try:
            x, y, w, h = (int(v) for v in d["bbox"])
        except (KeyError, TypeError, ValueError):
            raise ValueError("panel needs a bbox [x, y, w, h] of four integers") from None
        if w <= 0 or h <= 0:
            raise ValueError(f"panel bbox must have a positive size, got {w}x{h}")
        polygon = d.get("polygon") or [[x, y], [x + w - 1, y], [x + w - 1, y + h - 1], [x, y + h - 1]]
        try:
            polygon = [[int(p[0]), int(p[1])] for p in polygon]
        except (TypeError, ValueError, IndexError):
            raise ValueError("panel polygon must be a list of [x, y] points") from None
        if len(polygon) < 3:
            raise ValueError("panel polygon needs at least three points")
        return cls((x, y, w, h), polygon, int(d.get("order", 0)), dict(d.get("extra") or {}))


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union else 0.0


def ink_mask(gray: np.ndarray) -> np.ndarray:
    """Boolean ink mask: darker than a threshold set between the paper white and the ink."""
    (paper,) = gray_percentiles(gray, (90,))
    threshold = min(paper * 0.8, 200.0)
    return gray < threshold


def _background(ink: np.ndarray, close: int) -> np.ndarray:
    """Paper connected to the page edge (gutters and margins), after sealing hairline gaps in borders."""
    if close > 1:
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (close, close))
        ink = cv2.morphologyEx(ink.astype(np.uint8), cv2.MORPH_CLOSE, kernel).astype(bool)
    paper = np.pad(~ink, 1, constant_values=True).astype(np.uint8)
    _, labels = cv2.connectedComponents(paper, connectivity=4)
    return (labels == labels[0, 0])[1:-1, 1:-1]


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) runs of True in a 1-D boolean array."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def _frame_width(ink: np.ndarray) -> int:
    """Median thickness of the ink frame along the four sides of a component's box (0 if frameless)."""
    runs = []
    for side in (ink, ink[::-1], ink.T, ink.T[::-1]):
        n = side.shape[1]
        for col in np.linspace(n // 4, 3 * n // 4, 9).astype(int):
            column = side[:, col]
            run = int(np.argmin(column)) if not column.all() else column.size
            runs.append(run)
    return int(np.median(runs))


def _find_cut(content: np.ndarray, ink: np.ndarray, axis: int, min_part: int, max_line: int) -> tuple[int, int] | None:
    """A band of rows (axis 0) or columns (axis 1) that separates `content` into two panels.

    A band is a gutter (mostly page background: a balloon may cross it) or a shared border: ink
    across the whole width, thin, and at least about as thick as the frame itself, so a horizon or
    floor line drawn across one panel is not taken for two panels' common border. Both sides must
    keep at least `min_part` pixels.
    """
    length = content.shape[axis]
    span = content.shape[1 - axis]
    if length < 2 * min_part or span == 0:
        return None
    filled = content.sum(axis=1 - axis) / span
    inked = (ink & content).sum(axis=1 - axis) / span
    gutter = filled < 0.5
    border = inked > 0.97
    # Two touching frames make a band at least as thick as one frame; allow a little scan wobble.
    min_border = max(1, int(0.75 * _frame_width(ink) + 0.5))
    best = None
    for flags, thin in ((gutter, False), (border, True)):
        for start, end in _runs(flags):
            if start < min_part or length - end < min_part:
                continue
            if thin and (end - start > max_line or end - start < min_border):
                continue
            # Both sides must hold real panels, not a balloon tip poking past a border.
            if filled[:start].mean() < 0.5 or filled[end:].mean() < 0.5:
                continue
            centre = (start + end) // 2
            score = abs(centre - length / 2)
            if thin:
                # A shared border belongs half to each panel.
                start = end = centre
            if best is None or score < best[2]:
                best = (start, end, score)
    return None if best is None else (best[0], best[1])


def _split(content: np.ndarray, ink: np.ndarray, x0: int, y0: int, min_part: int, max_line: int, depth: int = 0) -> list[tuple[int, int, np.ndarray]]:
    """Recursively cut a component along gutters/shared borders; returns (x, y, mask) pieces."""
    left, top, bw, bh = cv2.boundingRect(content.astype(np.uint8))
    if bw == 0 or bh == 0:
        return []
    bottom, right = top + bh, left + bw
    content = content[top:bottom, left:right]
    ink = ink[top:bottom, left:right]
    x0, y0 = x0 + left, y0 + top
    if depth < 12:
        for axis in (0, 1):
            cut = _find_cut(content, ink, axis, min_part, max_line)
            if cut is None:
                continue
            start, end = cut
            if axis == 0:
                parts = [(content[:start], ink[:start], 0, 0), (content[end:], ink[end:], 0, end)]
            else:
                parts = [(content[:, :start], ink[:, :start], 0, 0), (content[:, end:], ink[:, end:], end, 0)]
            out = []
            for c, i, dx, dy in parts:
                out += _split(c, i, x0 + dx, y0 + dy, min_part, max_line, depth + 1)
            return out
    return [(x0, y0, content)]


def _polygon(mask: np.ndarray, x0: int, y0: int) -> list[list[int]]:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    contour = max(contours, key=cv2.contourArea)
    # A small epsilon keeps the polygon within a pixel of the border so the colour never reaches the gutter.
    approx = cv2.approxPolyDP(contour, 1.0, True).reshape(-1, 2)
    if len(approx) < 3:
        x, y, w, h = cv2.boundingRect(contour)
        approx = np.array([[x, y], [x + w - 1, y], [x + w - 1, y + h - 1], [x, y + h - 1]])
    return (approx + [x0, y0]).astype(int).tolist()


def _merge_nested(boxes: list[tuple[tuple[int, int, int, int], list[list[int]]]]) -> list[tuple[tuple[int, int, int, int], list[list[int]]]]:
    """Drop boxes lying (almost) inside a larger one: an inset panel is coloured with its parent."""
    boxes = sorted(boxes, key=lambda b: -b[0][2] * b[0][3])
    kept: list = []
    for box, poly in boxes:
        x, y, w, h = box
        inside = False
        for (kx, ky, kw, kh), _ in kept:
            iw = max(0, min(x + w, kx + kw) - max(x, kx))
            ih = max(0, min(y + h, ky + kh) - max(y, ky))
            if iw * ih >= 0.8 * w * h:
                inside = True
                break
        if not inside:
            kept.append((box, poly))
    return kept


def _content_panel(ink: np.ndarray, shape: tuple[int, int]) -> tuple[tuple[int, int, int, int], list[list[int]]]:
    h, w = shape
    ys, xs = np.nonzero(ink)
    if ys.size == 0:
        x, y, bw, bh = 0, 0, w, h
    else:
        x, y = int(xs.min()), int(ys.min())
        bw, bh = int(xs.max()) + 1 - x, int(ys.max()) + 1 - y
    poly = [[x, y], [x + bw - 1, y], [x + bw - 1, y + bh - 1], [x, y + bh - 1]]
    return (x, y, bw, bh), poly


def detect_panels(
    gray: np.ndarray,
    direction: Direction = "ltr",
    *,
    min_panel_fraction: float = 0.01,
    max_stray_ink: float = 0.15,
) -> list[Panel]:
    """Panels of a grey page (uint8 array) in reading order.

    `min_panel_fraction`: smaller components (page numbers, specks) are ignored, as a fraction of the
    page area. `max_stray_ink`: when more than this fraction of the ink lies outside the framed panels
    the page is treated as a splash/borderless page and becomes one panel around all its ink.
    """
    if direction not in ("ltr", "rtl"):
        raise ValueError(f"direction must be 'ltr' or 'rtl', not {direction!r}")
    h, w = gray.shape
    ink = ink_mask(gray)
    short = min(h, w)
    close = 2 * round(short / 800) + 1
    background = _background(ink, close)
    content = ~background
    n, labels, stats, _ = cv2.connectedComponentsWithStats(content.astype(np.uint8), connectivity=8)
    min_area = min_panel_fraction * h * w
    min_part = max(8, int(0.04 * short))
    max_line = max(3, int(0.02 * short))
    found = []
    for label in range(1, n):
        x, y, bw, bh, area = stats[label]
        if area < min_area:
            continue
        comp = labels[y:y + bh, x:x + bw] == label
        for px, py, piece in _split(comp, ink[y:y + bh, x:x + bw], x, y, min_part, max_line):
            ph, pw = piece.shape
            if piece.sum() < min_area:
                continue
            found.append(((px, py, pw, ph), _polygon(piece, px, py)))
    found = _merge_nested(found)
    total_ink = int(ink.sum())
    if found and total_ink:
        covered = np.zeros_like(ink)
        for (x, y, bw, bh), _ in found:
            covered[y:y + bh, x:x + bw] = True
        stray = int((ink & ~covered).sum()) / total_ink
        if stray > max_stray_ink:
            found = []
    if not found:
        found = [_content_panel(ink, (h, w))]
    panels = [Panel((int(b[0]), int(b[1]), int(b[2]), int(b[3])), poly) for b, poly in found]
    return order_panels(panels, direction)


def _gaps(intervals: list[tuple[float, float]]) -> list[float]:
    """Positions between sorted, merged intervals where a straight cut crosses no interval."""
    merged: list[list[float]] = []
    for a, b in sorted(intervals):
        if merged and a < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(merged[i][1] + merged[i + 1][0]) / 2 for i in range(len(merged) - 1)]


def _xy_order(panels: list[Panel], direction: Direction, horizontal_first: bool = True) -> list[Panel]:
    if len(panels) <= 1:
        return list(panels)
    # Panels may overlap their neighbours by a few pixels (slanted gutters, thick borders).
    def shrunk(lo: int, size: int) -> tuple[float, float]:
        pad = 0.1 * size
        return lo + pad, lo + size - pad

    for horizontal in ((True, False) if horizontal_first else (False, True)):
        if horizontal:
            cuts = _gaps([shrunk(p.bbox[1], p.bbox[3]) for p in panels])
            key = lambda p: p.bbox[1] + p.bbox[3] / 2  # noqa: E731
        else:
            cuts = _gaps([shrunk(p.bbox[0], p.bbox[2]) for p in panels])
            key = lambda p: p.bbox[0] + p.bbox[2] / 2  # noqa: E731
        if not cuts:
            continue
        edges = [-np.inf, *cuts, np.inf]
        groups = [[p for p in panels if edges[i] <= key(p) < edges[i + 1]] for i in range(len(edges) - 1)]
        groups = [g for g in groups if g]
        if not horizontal and direction == "rtl":
            groups.reverse()
        ordered: list[Panel] = []
        for g in groups:
            ordered += _xy_order(g, direction, horizontal_first=not horizontal)
        return ordered
    # No clean cut: rows by top edge, then across the row in reading direction.
    sign = -1 if direction == "rtl" else 1
    return sorted(panels, key=lambda p: (p.bbox[1], sign * p.bbox[0]))


def order_panels(panels: list[Panel], direction: Direction = "ltr") -> list[Panel]:
    """Set `order` on each panel: rows top to bottom, within a row left-to-right (or right-to-left).

    A panel spanning several rows is read before the column of panels beside it (recursive XY cut).
    """
    ordered = _xy_order(list(panels), direction)
    for i, p in enumerate(ordered):
        p.order = i
    return ordered
