"""Reading order of panels: rows top to bottom, across each row left to right (or right to left)."""
from __future__ import annotations

import numpy as np

from panelpaint.panels.model import Direction, Panel


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
        if not horizontal and direction == Direction.rtl:
            groups.reverse()
        ordered: list[Panel] = []
        for g in groups:
            ordered += _xy_order(g, direction, horizontal_first=not horizontal)
        return ordered
    # No clean cut: rows by top edge, then across the row in reading direction.
    sign = -1 if direction == Direction.rtl else 1
    return sorted(panels, key=lambda p: (p.bbox[1], sign * p.bbox[0]))


def order_panels(panels: list[Panel], direction: Direction = Direction.ltr) -> list[Panel]:
    """Set `order` on each panel: rows top to bottom, within a row left-to-right (or right-to-left).

    A panel spanning several rows is read before the column of panels beside it (recursive XY cut).
    """
    ordered = _xy_order(list(panels), direction)
    for i, p in enumerate(ordered):
        p.order = i
    return ordered
