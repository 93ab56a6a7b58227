"""Cutting a page's content into pieces: along gutters, along dividing lines, into separate shapes.

A block of content is cut, recursively, where a straight band runs right across it that is mostly
gutter (a balloon may cross it), or where a long drawn line runs right across it (panels that share a
border), upright or slanted. A block with no such cut but several separate shapes falls into them.
The result is a tree whose leaves are panels or fragments of one; `layout` decides which.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property

import cv2
import numpy as np

from panelpaint.panels.page import PageView

GUTTER_FILL = 0.7  # a band across a block is a gutter while at most this share of it is content (balloons)
CLEAN_GUTTER = 0.02  # ... and a clean one when next to none is
CROSSED_GUTTER = 0.9  # confidence in a cut along a gutter that something crosses
LINE_COVER = 0.7  # a dividing line is inked along at least this share of its length
LINE_ENDS = 0.03  # ... and inked at both ends (it meets the frames), over this share of its length each
THICKNESS = 0.75  # ... and at least this share of the frames' thickness (a horizon line is thinner)
HATCHING = 0.8  # ... and is not one of several parallel lines as thick within a panel's width (hatching)
HATCH_COVER = 0.5  # (a line of hatching runs along at least this share of the block)
SLANTED_COVER = 0.9  # a slanted divider is drawn whole: drawing has more long slanted lines than upright ones
MAX_DEPTH = 16


class CutKind(Enum):
    GUTTER = "gutter"
    LINE = "line"


@dataclass(frozen=True)
class Band:
    """Where a straight cut ran: [start, end) along `axis` (0: rows, 1: columns), in working pixels."""

    kind: CutKind
    axis: int
    start: int
    end: int
    strength: float  # 1 for a clean gutter, less for a crossed gutter or a line (by how fully it is drawn)


@dataclass
class Block:
    """Content of part of the page: `mask` is cropped to its bounding box, whose corner is (x, y)."""

    x: int
    y: int
    mask: np.ndarray

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.x, self.y, self.mask.shape[1], self.mask.shape[0]

    def window(self, a: np.ndarray) -> np.ndarray:
        """`a` (a page-sized array) over this block's box."""
        h, w = self.mask.shape
        return a[self.y:self.y + h, self.x:self.x + w]


def crop(x: int, y: int, mask: np.ndarray) -> Block | None:
    """The block of `mask` (corner at x, y) cropped to its content; None when it has none."""
    bx, by, bw, bh = cv2.boundingRect(mask.astype(np.uint8))
    if bw == 0 or bh == 0:
        return None
    return Block(x + bx, y + by, mask[by:by + bh, bx:bx + bw])


@dataclass
class Node:
    """A block and how it was cut: `children` along `axis` with `bands` between them, or `axis` None
    for pieces with no straight cut between them (separate shapes, a slanted line); a leaf has none.
    `cuts` holds the strengths of the less than certain cuts (lines, crossed gutters) that made this block."""

    block: Block
    children: list["Node"] = field(default_factory=list)
    bands: list[Band] = field(default_factory=list)
    axis: int | None = None
    cuts: tuple[float, ...] = ()

    @property
    def leaf(self) -> bool:
        return not self.children


def runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) runs of True in a 1-D boolean array."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def frame_width(ink: np.ndarray, mask: np.ndarray, slack: int) -> int:
    """Median thickness of ink along the four sides of a block, measured inward from where its content
    starts, or up to `slack` px further in (a cut along a line leaves a margin; 0 if frameless)."""
    found = []
    for side_ink, side_mask in ((ink, mask), (ink[::-1], mask[::-1]), (ink.T, mask.T), (ink.T[::-1], mask.T[::-1])):
        n = side_ink.shape[1]
        for col in np.linspace(n // 4, 3 * n // 4, 9).astype(int):
            column = side_ink[int(np.argmax(side_mask[:, col])):, col]
            start = int(np.argmax(column[:slack + 1])) if column[:slack + 1].any() else 0
            column = column[start:]
            found.append(int(np.argmin(column)) if not column.all() else column.size)
    return int(np.median(found))


@dataclass
class Cutter:
    """Finds cuts in blocks of one page; sizes come from the page's own scale."""

    view: PageView

    @property
    def min_part(self) -> int:
        """Neither side of a cut may be thinner than this: 4% of the page's short side."""
        return max(4, round(4 * self.view.unit))

    @property
    def max_line(self) -> int:
        return max(3, round(2 * self.view.unit))

    @cached_property
    def segments(self) -> np.ndarray:
        """Long straight segments of the page (x0, y0, x1, y1), at working size, from line segment detection."""
        gray = self.view.gray
        shrink = 2 if min(gray.shape) >= 600 else 1  # long lines survive halving; detection takes a quarter
        if shrink > 1:
            gray = cv2.resize(gray, None, fx=1 / shrink, fy=1 / shrink, interpolation=cv2.INTER_AREA)
        found = cv2.createLineSegmentDetector().detect(gray)[0]
        if found is None:
            return np.zeros((0, 4), np.float32)
        seg = found.reshape(-1, 4) * shrink
        length = np.hypot(seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1])
        return seg[length >= 8 * self.view.unit]

    # --- straight cuts across a block ------------------------------------------------------------

    def gutter(self, block: Block) -> Band | None:
        """The cleanest band of rows or columns across the block that is mostly gutter."""
        best, best_key = None, None
        for axis in (0, 1):
            m = block.mask
            length, span = m.shape[axis], m.shape[1 - axis]
            fill = m.sum(axis=1 - axis) / span
            for a, b in runs(fill < GUTTER_FILL):
                low = float(fill[a:b].min())
                # The cut goes through the emptiest rows of the band, so content beside a gutter
                # (a dark shadow on a dark page, a balloon's edge, a frameless panel) stays with its panel.
                for sa, sb in runs(fill[a:b] <= low + 0.05):
                    sa, sb = a + sa, a + sb
                    if sa < self.min_part or length - sb < self.min_part:
                        continue
                    clean = low <= CLEAN_GUTTER
                    if not clean:
                        # What crosses a gutter (a balloon) lies within it, clear of at least one of the
                        # block's sides; panels meeting at a slant fill the band out to both sides.
                        band = m[sa:sb] if axis == 0 else m[:, sa:sb].T
                        edge = max(1, self.view.tolerance)
                        if band[:, :edge].any() and band[:, -edge:].any():
                            continue
                    key = (not clean, round(low, 2), -(sb - sa), axis, abs((sa + sb) / 2 - length / 2))
                    if best_key is None or key < best_key:
                        origin = block.y if axis == 0 else block.x
                        strength = 1.0 if clean else CROSSED_GUTTER
                        best, best_key = Band(CutKind.GUTTER, axis, origin + sa, origin + sb, strength), key
        return best

    def line(self, block: Block) -> Band | None:
        """A drawn line of rows or columns across the whole block (a border two panels share)."""
        v = self.view
        ink = block.window(v.ink) & block.mask
        min_thick = max(1, int(THICKNESS * frame_width(ink, block.mask, 2 * v.tolerance) + 0.5))
        tol = v.tolerance
        best, best_strength = None, 0.0
        for axis in (0, 1):
            wide = _widened(ink, axis, min_thick, tol) & block.mask
            length, span = wide.shape[axis], wide.shape[1 - axis]
            cover = wide.sum(axis=1 - axis) / span
            fill = block.mask.sum(axis=1 - axis) / span
            # Lines, and fainter ones that may be hatching beside them.
            faint = runs(cover >= HATCH_COVER)
            thick = [_thickness(ink, axis, a, b) for a, b in faint]
            for (a, b), thickness in zip(faint, thick):
                if a < self.min_part or length - b < self.min_part or b - a - 2 * tol > self.max_line:
                    continue
                if cover[a:b].max() < LINE_COVER or thickness < min_thick:
                    continue
                if sum(0 < abs(a2 + b2 - a - b) / 2 < self.min_part and t2 >= HATCHING * thickness
                       for (a2, b2), t2 in zip(faint, thick)) >= 2:
                    continue  # hatching: parallel lines as thick as this one close on either side
                near = max(2, 2 * tol)
                if fill[:a].mean() < 0.5 or fill[b:].mean() < 0.5 or min(fill[a - near:a].mean(),
                                                                         fill[b:b + near].mean()) < LINE_COVER:
                    continue  # a shared line has panels right beside it, not a gutter or a page number
                # Along the band as a whole: a tilted or hand-inked line wanders across its rows.
                along = (wide[a:b] if axis == 0 else wide[:, a:b].T).any(axis=0)
                inside = (block.mask[a:b] if axis == 0 else block.mask[:, a:b].T).any(axis=0)
                if not _drawn_through(along, inside, tol):
                    continue
                strength = _strength(float(cover[a:b].max()))
                if strength > best_strength:
                    origin = block.y if axis == 0 else block.x
                    best, best_strength = Band(CutKind.LINE, axis, origin + a, origin + b, strength), strength
        return best

    def slanted(self, block: Block) -> tuple[np.ndarray, np.ndarray, float] | None:
        """(a point, unit direction, strength) of a slanted drawn line right across the block."""
        v = self.view
        x0, y0, w, h = block.box
        ink = block.window(v.ink) & block.mask
        min_thick = max(1, int(THICKNESS * frame_width(ink, block.mask, 2 * v.tolerance) + 0.5))
        best = None
        for sx0, sy0, sx1, sy1 in self.segments:
            mx, my = (sx0 + sx1) / 2 - x0, (sy0 + sy1) / 2 - y0
            if not (0 <= mx < w and 0 <= my < h):
                continue
            d = np.array([sx1 - sx0, sy1 - sy0], float)
            d /= np.hypot(*d)
            flat = abs(d[1]) < abs(d[0])  # nearer horizontal than vertical
            tilt = abs(d[1] / d[0]) if flat else abs(d[0] / d[1])
            if not 0.01 < tilt < 0.5:
                continue  # upright lines are cut by `line`; steeper ones are drawing, not dividers
            # Where the line enters and leaves the block: it must cross it from side to side.
            t = np.arange(-max(w, h) * 1.5, max(w, h) * 1.5)
            px, py = mx + t * d[0], my + t * d[1]
            inside = (px >= 0) & (px < w) & (py >= 0) & (py < h)
            px, py = px[inside].astype(int), py[inside].astype(int)
            if px.size < self.min_part:
                continue
            across = (px.min() <= 1 and px.max() >= w - 2) if flat else (py.min() <= 1 and py.max() >= h - 2)
            if not across:
                continue
            ends = (py[0], py[-1]) if flat else (px[0], px[-1])
            room = h if flat else w
            if min(ends) < self.min_part or max(ends) > room - self.min_part:
                continue
            wide = _widened(ink, 0 if flat else 1, 1, v.tolerance) & block.mask  # (hatching: see _hatched)
            along = wide[py, px]
            cover = float(along.mean())
            if cover < SLANTED_COVER or not _drawn_through(along, block.mask[py, px], v.tolerance):
                continue
            if _thickness_at(ink, px, py, flat) * np.cos(np.arctan(tilt)) < min_thick:
                continue
            if self._hatched(block, np.array([mx + x0, my + y0]), d, px.size):
                continue
            strength = 0.95 * _strength(cover)
            if best is None or strength > best[2]:
                best = (np.array([mx, my]), d, strength)
        return best

    def _hatched(self, block: Block, point: np.ndarray, direction: np.ndarray, span: int) -> bool:
        """Whether several long segments parallel to a line lie close beside it in the block (hatching)."""
        seg = self.segments
        x0, y0, w, h = block.box
        mid = (seg[:, :2] + seg[:, 2:]) / 2
        vec = seg[:, 2:] - seg[:, :2]
        length = np.hypot(vec[:, 0], vec[:, 1])
        parallel = np.abs(vec @ direction) / np.maximum(length, 1e-6) > np.cos(np.radians(3))
        offset = np.abs((mid - point) @ np.array([-direction[1], direction[0]]))
        inside = (mid[:, 0] >= x0) & (mid[:, 0] < x0 + w) & (mid[:, 1] >= y0) & (mid[:, 1] < y0 + h)
        # (A line's own two edges are closer than max_line; hatching repeats further out.)
        near = (offset > self.max_line) & (offset < self.min_part)
        return int(np.sum(parallel & near & inside & (length >= 0.25 * span))) >= 2

    # --- the tree ------------------------------------------------------------------------------------

    def tree(self, block: Block, cuts: tuple[float, ...] = (), depth: int = 0) -> Node:
        """Cut `block` recursively; same-axis cuts are gathered into one node (a row of panels is one
        node with all its panels, whatever order the cuts were found in)."""
        node = Node(block, cuts=cuts)
        h, w = block.mask.shape
        if depth >= MAX_DEPTH or max(h, w) < 2 * self.min_part:
            return node
        pieces = None
        band = self.gutter(block)
        if band is None or band.strength < 1.0:
            band = self.line(block) or band
        if band is not None and band.kind is CutKind.GUTTER and band.strength < 1.0:
            pieces = self.shapes(block)
            if pieces:
                band = None  # separate shapes are surer than a gutter something crosses
        if band is not None:
            parts = _split_band(block, band)
            if parts is not None:
                extra = (band.strength,) if band.strength < 1.0 else ()
                node.axis = band.axis
                for i, part in enumerate(parts):
                    child = self.tree(part, cuts + extra, depth + 1)
                    if i:
                        node.bands.append(band)
                    if child.axis == band.axis:  # flatten
                        node.children += child.children
                        node.bands += child.bands
                    else:
                        node.children.append(child)
                return node
        pieces = self.shapes(block) if pieces is None else pieces
        if pieces:
            node.children = [self.tree(p, cuts, depth + 1) for p in pieces]
            return node
        slanted = self.slanted(block)
        if slanted is not None:
            parts = _split_line(block, *slanted[:2], self.view.tolerance)
            if parts is not None:
                node.children = [self.tree(p, cuts + (slanted[2],), depth + 1) for p in parts]
        return node

    def shapes(self, block: Block) -> list[Block]:
        """The block's separate shapes; specks and letters together make one more piece."""
        n, labels, stats, _ = cv2.connectedComponentsWithStats(block.mask.astype(np.uint8), connectivity=8)
        if n <= 2:
            return []
        big = (2 * self.view.unit) ** 2
        pieces, small = [], np.zeros(n, bool)
        for i in range(1, n):
            if stats[i, cv2.CC_STAT_AREA] >= big:
                x, y, w, h = stats[i, :4]
                part = crop(block.x + x, block.y + y, labels[y:y + h, x:x + w] == i)
                if part is not None:
                    pieces.append(part)
            else:
                small[i] = True
        if small.any():
            dust = crop(block.x, block.y, small[labels])
            if dust is not None:
                pieces.append(dust)
        return pieces if len(pieces) > 1 else []


def _widened(ink: np.ndarray, axis: int, thick: int, tol: int) -> np.ndarray:
    """Ink of lines running along rows (axis 0) or columns at least `thick` px thick (thinner strokes,
    hatching, go), widened by `tol` px either way so a tilted or hand-inked line stays in its band."""
    along = (thick, 1) if axis == 0 else (1, thick)
    across = (2 * tol + 1, 1) if axis == 0 else (1, 2 * tol + 1)
    kept = cv2.morphologyEx(ink.astype(np.uint8), cv2.MORPH_OPEN, np.ones(along, np.uint8))
    return cv2.dilate(kept, np.ones(across, np.uint8)).astype(bool)


def _drawn_through(along: np.ndarray, inside: np.ndarray, tol: int) -> bool:
    """Whether ink along a line, over the block's content (`inside`), reaches both ends of it: a
    divider meets the frames, a stroke of the drawing seldom does."""
    where = np.flatnonzero(inside)
    if where.size == 0:
        return False
    along = along[where[0]:where[-1] + 1]
    end = max(2 * tol + 1, int(LINE_ENDS * along.size))
    return bool(along[:end].mean() >= 0.5 and along[-end:].mean() >= 0.5)


def _strength(cover: float) -> float:
    """Confidence in a cut along a drawn line from how much of it is inked (0.55 at LINE_COVER, 0.95 full)."""
    return 0.55 + 0.4 * float(np.clip((cover - LINE_COVER) / (0.98 - LINE_COVER), 0, 1))


def _thickness(ink: np.ndarray, axis: int, a: int, b: int) -> float:
    """Median ink run across the band [a, b) of rows (axis 0) or columns, sampled along it."""
    band = ink[a:b] if axis == 0 else ink[:, a:b].T
    cols = np.linspace(0, band.shape[1] - 1, 17).astype(int)
    return float(np.median([max((e - s for s, e in runs(band[:, c])), default=0) for c in cols]))


def _thickness_at(ink: np.ndarray, px: np.ndarray, py: np.ndarray, flat: bool) -> float:
    """Median ink run across a slanted line (measured upright for a flat line, across for a steep one)."""
    found = []
    for i in np.linspace(0, px.size - 1, 17).astype(int):
        x, y = px[i], py[i]
        line = ink[max(0, y - 12):y + 13, x] if flat else ink[y, max(0, x - 12):x + 13]
        found.append(max((e - s for s, e in runs(line)), default=0))
    return float(np.median(found))


def _split_band(block: Block, band: Band) -> list[Block] | None:
    """The block's two sides of a band: a gutter band belongs to neither, a line to both."""
    origin = block.y if band.axis == 0 else block.x
    a, b = band.start - origin, band.end - origin
    first_end, second_start = (b, a) if band.kind is CutKind.LINE else (a, b)
    m = block.mask
    if band.axis == 0:
        parts = [crop(block.x, block.y, m[:first_end]), crop(block.x, block.y + second_start, m[second_start:])]
    else:
        parts = [crop(block.x, block.y, m[:, :first_end]), crop(block.x + second_start, block.y, m[:, second_start:])]
    return None if any(p is None for p in parts) else parts


def _split_line(block: Block, point: np.ndarray, direction: np.ndarray, tol: int) -> list[Block] | None:
    """The block's two sides of a slanted line through `point`; the line's pixels go to both."""
    h, w = block.mask.shape
    ys, xs = np.mgrid[0:h, 0:w]
    side = (xs - point[0]) * direction[1] - (ys - point[1]) * direction[0]
    parts = [crop(block.x, block.y, block.mask & (side <= tol + 1)),
             crop(block.x, block.y, block.mask & (side >= -tol - 1))]
    return None if any(p is None for p in parts) else parts
