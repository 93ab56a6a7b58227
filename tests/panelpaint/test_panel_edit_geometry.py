"""The geometry of a person's panel edits: merging boxes into the one that holds them, splitting one in two."""
from __future__ import annotations

import pytest

from panelpaint.panels import Panel, rectangle
from panelpaint.panels.edit import merged, split


def box(x: int, y: int, w: int, h: int) -> Panel:
    return Panel((x, y, w, h), rectangle((x, y, w, h)), confidence=0.5)


def test_merged_holds_every_box_and_is_a_persons():
    got = merged([box(10, 20, 30, 40), box(50, 0, 10, 10), box(0, 70, 5, 5)])
    assert got.bbox == (0, 0, 60, 75) and got.polygon == rectangle((0, 0, 60, 75)) and got.confidence == 1.0
    with pytest.raises(ValueError, match="at least two"):
        merged([box(0, 0, 10, 10)])


@pytest.mark.parametrize("axis, at, first, second", [
    ("x", 30, (10, 20, 20, 40), (30, 20, 20, 40)),
    ("y", 25, (10, 20, 40, 5), (10, 25, 40, 35)),
])
def test_split_cuts_at_a_column_or_a_row(axis, at, first, second):
    a, b = split(box(10, 20, 40, 40), axis, at)
    assert (a.bbox, b.bbox) == (first, second)
    assert a.area + b.area == 40 * 40


@pytest.mark.parametrize("axis, at, says", [("x", 10, "at least 16"), ("x", 45, "at least 16"),
                                            ("y", 61, "at least 16"), ("z", 30, "axis")])
def test_split_leaves_each_part_its_minimum(axis, at, says):
    with pytest.raises(ValueError, match=says):
        split(box(10, 20, 40, 40), axis, at, min_side=16)
