"""Panel boxes a person edits: two or more merged into the box that holds them, one split in two."""
from __future__ import annotations

import enum

from panelpaint.panels.model import Panel, rectangle


class Axis(enum.StrEnum):
    """How a split cuts a box: `x` cuts at a column (left | right), `y` at a row (top / bottom)."""

    x = "x"
    y = "y"


def merged(panels: list[Panel]) -> Panel:
    """The one box that holds all of `panels` (two panels wrongly cut apart become one again)."""
    if len(panels) < 2:
        raise ValueError("merging needs at least two panels")
    x0 = min(p.bbox[0] for p in panels)
    y0 = min(p.bbox[1] for p in panels)
    x1 = max(p.bbox[0] + p.bbox[2] for p in panels)
    y1 = max(p.bbox[1] + p.bbox[3] for p in panels)
    box = (x0, y0, x1 - x0, y1 - y0)
    return Panel(box, rectangle(box))


def split(panel: Panel, axis: Axis | str, at: int, min_side: int = 1) -> tuple[Panel, Panel]:
    """`panel` cut in two at page coordinate `at` (a column for `x`, a row for `y`): the left or top
    part first. Each part keeps at least `min_side` pixels across the cut."""
    try:
        axis = Axis(axis)
    except ValueError:
        raise ValueError(f"a split's axis is 'x' (a column) or 'y' (a row), not {axis!r}") from None
    x, y, w, h = panel.bbox
    lo, size = (x, w) if axis is Axis.x else (y, h)
    if not lo + min_side <= at <= lo + size - min_side:
        raise ValueError(f"a split at {at} must leave at least {min_side} pixels on each side of the "
                         f"panel's {lo}..{lo + size} ({axis.value})")
    first = (x, y, at - x, h) if axis is Axis.x else (x, y, w, at - y)
    second = (at, y, x + w - at, h) if axis is Axis.x else (x, at, w, y + h - at)
    return Panel(first, rectangle(first)), Panel(second, rectangle(second))
