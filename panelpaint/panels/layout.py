"""From a page's cut tree to its panels, each with a confidence.

A leaf that is solid (its frame encloses it) and not much smaller than the page's other panels is a
panel. Anything else (a caption box, a figure with no frame, lettering) is a fragment: fragments side
by side merge into one frameless panel that is expanded, as Kumiko does, to the cell its row or column
leaves it between its framed neighbours. A page with no panel at all is one panel around its content.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from panelpaint.panels.cuts import Band, Cutter, CutKind, Node, crop
from panelpaint.panels.model import Direction, Layout, Panel, rectangle
from panelpaint.panels.order import order_panels
from panelpaint.panels.page import MIN_SIDE, PageView, analyse, validate

SOLIDITY = 0.9  # a framed panel fills at least this share of its outline
MAX_SIDES = 10  # ... and its outline, simplified to within OUTLINE_EPSILON of its length, has at most this many sides
OUTLINE_EPSILON = 0.005
EDGE_SUPPORT = 0.75  # ... and its content ends on that outline along at least this share of it
MIN_SHARE_OF_MEDIAN = 0.2  # a solid piece smaller than this share of the median panel is a caption or an inset
MIN_RUN_SHARE = 0.3  # fragments become a frameless panel when they span this share of their cell's length
MIN_RUN_AREA = 0.15  # ... and this share of its area
FRAMELESS_CONFIDENCE = 0.5
WHOLE_PAGE_CONFIDENCE = 0.45
BLANK_CONFIDENCE = 0.3

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive), working pixels


@dataclass
class Found:
    """A panel at working size."""

    box: Box
    polygon: np.ndarray  # (n, 2) points
    confidence: float


def _rect(box: Box) -> np.ndarray:
    x0, y0, x1, y1 = box
    return np.array(rectangle((x0, y0, x1 - x0, y1 - y0)))


def _union(boxes: list[Box]) -> Box:
    return min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)


def _corners(node: Node) -> Box:
    x, y, w, h = node.block.box
    return x, y, x + w, y + h


def _leaves(node: Node):
    if node.leaf:
        yield node
    for child in node.children:
        yield from _leaves(child)


def _edge_support(mask: np.ndarray, outline: np.ndarray, reach: int) -> float:
    """Share of an outline along which the mask really ends: content just inside, none just outside.

    A frame (or a panel's hard edge on a dark page) ends exactly on the outline; the envelope of a
    tangle of strokes does not.
    """
    h, w = mask.shape
    pts = outline.reshape(-1, 2).astype(float)
    hits = total = 0
    for p, q in zip(pts, np.roll(pts, -1, axis=0)):
        length = float(np.hypot(*(q - p)))
        if length < 1:
            continue
        normal = np.array([-(q - p)[1], (q - p)[0]]) / length
        mid = (p + q) / 2
        if cv2.pointPolygonTest(outline, (float(mid[0] + 3 * normal[0]), float(mid[1] + 3 * normal[1])), False) < 0:
            normal = -normal  # point it inward
        t = np.linspace(0.1, 0.9, max(2, int(length / 3)))[:, None]
        along = p + t * (q - p)
        inner = np.rint(along + 2 * normal).astype(int)
        outer = np.rint(along - reach * normal).astype(int)
        ok_in = (inner[:, 0] >= 0) & (inner[:, 0] < w) & (inner[:, 1] >= 0) & (inner[:, 1] < h)
        ok_out = (outer[:, 0] >= 0) & (outer[:, 0] < w) & (outer[:, 1] >= 0) & (outer[:, 1] < h)
        content_in = np.zeros(len(t), bool)
        content_in[ok_in] = mask[inner[ok_in, 1], inner[ok_in, 0]]
        content_out = np.zeros(len(t), bool)
        content_out[ok_out] = mask[outer[ok_out, 1], outer[ok_out, 0]]
        hits += int((content_in & ~content_out).sum())
        total += len(t)
    return hits / total if total else 0.0


def _solid(node: Node, reach: int) -> tuple[Found, float] | None:
    """The leaf as a framed panel, with its area, or None when it is not solid: a panel fills its
    outline of a few straight sides, and its content ends on them (within `reach` px), as a frame
    encloses what it holds; strokes, lettering or a tangle do not."""
    block = node.block
    h, w = block.mask.shape
    # Protrusions much thinner than the panel (a balloon's tip past the frame) are not part of it.
    k = max(3, min(31, int(0.08 * min(w, h)) | 1))
    mask = cv2.morphologyEx(block.mask.astype(np.uint8), cv2.MORPH_OPEN, np.ones((k, k), np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    contour = max(contours, key=cv2.contourArea)
    outline = cv2.approxPolyDP(contour, max(2.0, OUTLINE_EPSILON * cv2.arcLength(contour, True)), True)
    if not 3 <= len(outline) <= MAX_SIDES:
        return None
    inside = np.zeros_like(mask)
    cv2.fillPoly(inside, [outline], 1)
    fill = float((inside.astype(bool) & block.mask).sum()) / max(1, int(inside.sum()))
    support = _edge_support(block.mask, outline, reach)
    if fill < SOLIDITY or support < EDGE_SUPPORT:
        return None
    bx, by, bw, bh = cv2.boundingRect(contour)
    approx = cv2.approxPolyDP(contour, 1.0, True).reshape(-1, 2)
    if len(approx) < 3:
        approx = _rect((0, 0, bw, bh)) + (bx, by)
    shape = 0.6 + 0.4 * min(float(np.clip((fill - SOLIDITY) / (0.98 - SOLIDITY), 0, 1)),
                            float(np.clip((support - EDGE_SUPPORT) / (0.95 - EDGE_SUPPORT), 0, 1)))
    box = (block.x + bx, block.y + by, block.x + bx + bw, block.y + by + bh)
    return Found(box, approx + (block.x, block.y), shape * min(node.cuts, default=1.0)), cv2.contourArea(contour)


@dataclass
class Assembler:
    """Walks a cut tree into panels; `panels` maps framed leaves (by id) to their panel."""

    panels: dict[int, Found]
    gutter: int  # the page's usual gutter width, for expanding frameless panels
    min_size: int  # the smallest panel side
    min_area: float

    def walk(self, node: Node, cell: Box) -> tuple[list[Found], bool]:
        """(panels, whether the node holds only fragments) of a node lying in `cell`."""
        if node.leaf:
            found = self.panels.get(id(node))
            return ([found], False) if found else ([], True)
        if node.axis is None:
            results = [self.walk(child, cell) for child in node.children]
            return [f for fs, _ in results for f in fs], all(frag for _, frag in results)
        cells = self.cells(node, cell)
        results = [self.walk(child, c) for child, c in zip(node.children, cells)]
        if all(frag for _, frag in results):
            return [], True
        found: list[Found] = []
        i = 0
        while i < len(results):
            if not results[i][1]:
                found += results[i][0]
                i += 1
                continue
            j = i
            while j < len(results) and results[j][1]:
                j += 1
            frameless = self.frameless(node, i, j, cell)
            if frameless is not None:
                found.append(frameless)
            i = j
        return found, False

    def cells(self, node: Node, cell: Box) -> list[Box]:
        """The space each child of an axis node has: between the bands around it, across the node's cell."""
        a = node.axis
        lo, hi = (cell[1], cell[3]) if a == 0 else (cell[0], cell[2])
        starts = [lo] + [b.start if b.kind is CutKind.LINE else b.end for b in node.bands]
        ends = [b.end if b.kind is CutKind.LINE else b.start for b in node.bands] + [hi]
        if a == 0:
            return [(cell[0], s, cell[2], e) for s, e in zip(starts, ends)]
        return [(s, cell[1], e, cell[3]) for s, e in zip(starts, ends)]

    def frameless(self, node: Node, i: int, j: int, cell: Box) -> Found | None:
        """Fragments children[i:j] as one panel filling the space between their framed neighbours."""
        a = node.axis
        around = node.bands[max(0, i - 1):j]
        if any(b.kind is CutKind.GUTTER and b.strength < 1.0 for b in around):
            return None  # a gutter that strokes cross is no edge of a frameless panel: a splash, a tangle
        lo, hi = (cell[1], cell[3]) if a == 0 else (cell[0], cell[2])
        start = lo if i == 0 else _after(node.bands[i - 1], self.gutter)
        end = hi if j == len(node.children) else _before(node.bands[j - 1], self.gutter)
        box = (cell[0], start, cell[2], end) if a == 0 else (start, cell[1], end, cell[3])
        content = _union([_corners(c) for c in node.children[i:j]])
        length = (content[3] - content[1]) if a == 0 else (content[2] - content[0])
        area = (content[2] - content[0]) * (content[3] - content[1])
        w, h = box[2] - box[0], box[3] - box[1]
        if (min(w, h) < self.min_size or w * h < self.min_area or length < MIN_RUN_SHARE * (end - start)
                or area < MIN_RUN_AREA * w * h):
            return None  # a page number, dust, a sound effect in a gutter: not a panel
        return Found(box, _rect(box), FRAMELESS_CONFIDENCE)


def _after(band: Band, gutter: int) -> int:
    """Where a frameless panel after `band` starts: a usual gutter past its neighbour, at most at the band's end."""
    return band.start if band.kind is CutKind.LINE else min(band.start + gutter, band.end)


def _before(band: Band, gutter: int) -> int:
    return band.end if band.kind is CutKind.LINE else max(band.end - gutter, band.start)


def _gutter_width(node: Node) -> int:
    widths = []
    stack = [node]
    while stack:
        n = stack.pop()
        widths += [b.end - b.start for b in n.bands if b.kind is CutKind.GUTTER]
        stack += n.children
    return int(np.median(widths)) if widths else 0


def _drop_nested(found: list[Found]) -> list[Found]:
    """Drop panels lying (almost) inside a larger one: an inset is coloured with its parent."""
    kept: list[Found] = []
    for f in sorted(found, key=lambda f: -(f.box[2] - f.box[0]) * (f.box[3] - f.box[1])):
        x0, y0, x1, y1 = f.box
        inside = any(max(0, min(x1, k.box[2]) - max(x0, k.box[0])) * max(0, min(y1, k.box[3]) - max(y0, k.box[1]))
                     >= 0.8 * (x1 - x0) * (y1 - y0) for k in kept)
        if not inside:
            kept.append(f)
    return kept


def _stray(view: PageView, found: list[Found]) -> float:
    """Share of the page's ink outside every panel."""
    total = int(view.ink.sum())
    if not total:
        return 0.0
    covered = np.zeros(view.shape, bool)
    for f in found:
        x0, y0, x1, y1 = f.box
        covered[y0:y1, x0:x1] = True
    return int((view.ink & ~covered).sum()) / total


def _find(view: PageView, min_panel_fraction: float, max_stray_ink: float) -> list[Found]:
    h, w = view.shape
    root = crop(0, 0, view.content)
    if root is None:
        return [Found((0, 0, w, h), _rect((0, 0, w, h)), BLANK_CONFIDENCE)]
    cutter = Cutter(view)
    tree = cutter.tree(root)
    min_area = min_panel_fraction * h * w
    solid = {}
    for leaf in _leaves(tree):
        judged = _solid(leaf, view.tolerance + 2)
        if judged is None:
            continue
        found, area = judged
        x0, y0, x1, y1 = found.box
        if min(x1 - x0, y1 - y0) >= cutter.min_part and area >= min_area:
            solid[id(leaf)] = (found, area)
    if solid:
        median = float(np.median([area for _, area in solid.values()]))
        solid = {k: f for k, (f, area) in solid.items() if area >= MIN_SHARE_OF_MEDIAN * median}
    assembler = Assembler(solid, _gutter_width(tree), cutter.min_part, min_area)
    found, _ = assembler.walk(tree, _corners(tree))
    found = _drop_nested(found)
    if not found or _stray(view, found) > max_stray_ink:
        # A splash or borderless page: one panel around everything drawn.
        return [Found(_corners(tree), _rect(_corners(tree)), WHOLE_PAGE_CONFIDENCE)]
    return found


def _to_page(found: Found, scale: float, size: tuple[int, int]) -> Panel:
    """The panel in page pixels. A working pixel on a panel's edge is part frame, part gutter: the
    outline is drawn in by half a working pixel so colour stays off the gutter."""
    w, h = size
    box = np.array(found.box, float) / scale
    poly = found.polygon / scale
    if scale < 1:
        inset = 0.5 / scale
        centre = (box[:2] + box[2:]) / 2
        half = np.maximum((box[2:] - box[:2]) / 2, 1)
        poly = centre + (poly - centre) * np.maximum(half - inset, 0.5) / half
        box = np.concatenate([box[:2] + inset, box[2:] - inset])
    x0, y0, x1, y1 = (int(v) for v in np.rint(box))
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    poly = np.rint(poly).astype(int)
    poly[:, 0] = np.clip(poly[:, 0], 0, w - 1)
    poly[:, 1] = np.clip(poly[:, 1], 0, h - 1)
    return Panel((x0, y0, max(1, x1 - x0), max(1, y1 - y0)), poly.tolist(), confidence=round(found.confidence, 3))


def detect_layout(
    gray: np.ndarray,
    direction: Direction = Direction.ltr,
    *,
    min_panel_fraction: float = 0.01,
    max_stray_ink: float = 0.15,
) -> Layout:
    """The panels of a grey page (uint8 array) in reading order, with the layout's confidence.

    `min_panel_fraction`: smaller pieces (page numbers, specks) are not panels, as a fraction of the
    page area. `max_stray_ink`: when more than this fraction of the ink lies outside the panels found,
    the page is a splash or borderless page and becomes one panel around all its content.
    Raises ValueError for a direction other than "ltr"/"rtl" or an array that is not a 2-D uint8 page.
    """
    if direction not in tuple(Direction):
        raise ValueError(f"direction must be 'ltr' or 'rtl', not {direction!r}")
    gray = validate(gray)
    h, w = gray.shape
    if min(h, w) < MIN_SIDE:
        found, scale = [Found((0, 0, w, h), _rect((0, 0, w, h)), BLANK_CONFIDENCE)], 1.0
    else:
        view = analyse(gray)
        found, scale = _find(view, min_panel_fraction, max_stray_ink), view.scale
    panels = order_panels([_to_page(f, scale, (w, h)) for f in found], direction)
    return Layout(panels, min(p.confidence for p in panels))


def detect_panels(
    gray: np.ndarray,
    direction: Direction = Direction.ltr,
    *,
    min_panel_fraction: float = 0.01,
    max_stray_ink: float = 0.15,
) -> list[Panel]:
    """The panels of a grey page in reading order, each with its confidence (see `detect_layout`,
    which also says how sure detection is of the page as a whole)."""
    return detect_layout(gray, direction, min_panel_fraction=min_panel_fraction, max_stray_ink=max_stray_ink).panels
