"""Drawn comic pages of every kind panel detection must handle, with their true boxes and reading orders.

One page per layout idea, each drawn from `comic_pages`' primitives with a fixed seed: clean gutters,
nested insets, shared border lines, thin gutters, frameless panels, balloons across gutters, dark and
tinted backgrounds, full-bleed panels and slanted dividers. A page's truth is written by hand from how
it was drawn: its boxes in left-to-right reading order and, separately, its right-to-left order.
`score` is the one definition of "a page detected right" used by the tests and `bench/panels_accuracy.py`.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np
from PIL import Image, ImageDraw

from panelpaint.panels import Panel, iou
from tests.panelpaint.comic_pages import (PAGE_H, PAGE_W, draw_art, draw_balloon, draw_caption, draw_frame,
                                          draw_inked_frame, draw_page, grid_boxes, rotated_box, scan)

Box = tuple[int, int, int, int]
MIN_IOU = 0.8  # a true panel counts as found when a detected one overlaps it this much
STRIP = (900, 300)  # a webcomic strip
VARIANT_STEP = 1000  # seeds of one variant of the corpus lie this far from the next's


class Kind(str, Enum):
    CLEAN = "clean gutters"
    NESTED = "nested insets"
    SHARED = "shared borders"
    THIN = "thin gutters"
    FRAMELESS = "frameless panels"
    BALLOON = "balloons across gutters"
    DARK = "dark or tinted backgrounds"
    BLEED = "full-bleed panels"
    SLANTED = "slanted dividers"


@dataclass(frozen=True)
class TruePage:
    """A page and its truth: `boxes` in left-to-right reading order, `rtl` the same boxes' indices in
    right-to-left reading order."""

    kind: Kind
    name: str
    image: Image.Image
    boxes: tuple[Box, ...]
    rtl: tuple[int, ...]

    def truth(self, direction: str) -> list[Box]:
        return list(self.boxes) if direction == "ltr" else [self.boxes[i] for i in self.rtl]


@dataclass(frozen=True)
class PageScore:
    """How a detection compares with the truth: `right` = every true panel found (IoU >= MIN_IOU),
    nothing extra, and the reading order right."""

    expected: int
    found: int
    ious: tuple[float, ...]  # per true panel, its match's IoU (0 when unmatched)
    order_hits: int  # true panels whose match has the true reading position

    @property
    def matched(self) -> int:
        return sum(v >= MIN_IOU for v in self.ious)

    @property
    def right(self) -> bool:
        return self.found == self.expected == self.matched == self.order_hits

    @property
    def mean_iou(self) -> float:
        return float(np.mean(self.ious)) if self.ious else 1.0

    @property
    def order_accuracy(self) -> float:
        return self.order_hits / self.expected if self.expected else 1.0


def score(panels: list[Panel], truth: list[Box]) -> PageScore:
    """Match detected panels to true boxes one to one (best IoU first) and compare reading positions."""
    found = sorted(panels, key=lambda p: p.order)
    pairs = sorted(((iou(p.bbox, t), i, j) for j, p in enumerate(found) for i, t in enumerate(truth)), reverse=True)
    match: dict[int, tuple[int, float]] = {}
    used: set[int] = set()
    for value, i, j in pairs:
        if value > 0 and i not in match and j not in used:
            match[i] = (j, value)
            used.add(j)
    ious = tuple(match[i][1] if i in match else 0.0 for i in range(len(truth)))
    hits = sum(1 for i in range(len(truth)) if i in match and match[i][0] == i and match[i][1] >= MIN_IOU)
    return PageScore(len(truth), len(found), ious, hits)


# --- helpers: truths of simple layouts ---------------------------------------------------------


def rows_rtl(boxes) -> tuple[int, ...]:
    """RTL order of boxes laid out in rows (same top edge = same row): rows top down, each right to left."""
    rows: dict[int, list[int]] = {}
    for i, b in enumerate(boxes):
        rows.setdefault(b[1], []).append(i)
    return tuple(i for y in sorted(rows) for i in sorted(rows[y], key=lambda i: -boxes[i][0]))


def _page(kind, name, image, boxes, rtl=None) -> TruePage:
    boxes = tuple(tuple(int(v) for v in b) for b in boxes)
    return TruePage(kind, name, image, boxes, tuple(rtl) if rtl is not None else rows_rtl(boxes))


def _seed(n: int, variant: int) -> int:
    return n + VARIANT_STEP * variant


def _blank(size=(PAGE_W, PAGE_H), paper=255):
    page = Image.new("L", size, paper)
    return page, ImageDraw.Draw(page)


def _shared_row(x: int, y: int, w: int, h: int, count: int) -> list[Box]:
    """`count` panels side by side in (x, y, w, h), each neighbour pair sharing one border line."""
    edges = [x + round(i * w / count) for i in range(count + 1)]
    return [(edges[i], y, edges[i + 1] - edges[i], h) for i in range(count)]


def _draw_shared(d, boxes, rng, border: int, inked: bool = False) -> None:
    """Frames drawn so that touching panels share a single line of `border` px (not two frames)."""
    for b in boxes:
        if inked:
            draw_inked_frame(d, b, rng, border)
        else:
            draw_frame(d, b, border)
    for b in boxes:
        draw_art(d, b, rng, border)


# --- the kinds -----------------------------------------------------------------------------------


def clean_pages(variant: int = 0) -> list[TruePage]:
    out = []
    for name, rows, gutter, border in (("2x2", [2, 2], 16, 3), ("1-2-3", [1, 2, 3], 16, 3),
                                       ("3-1-2", [3, 1, 2], 12, 2)):
        boxes = grid_boxes(rows, gutter=gutter)
        page = draw_page(boxes, border=border, seed=_seed(len(rows) + gutter, variant))
        out.append(_page(Kind.CLEAN, name, page, boxes))
    m, g = 40, 16
    half_w, half_h = (PAGE_W - 2 * m - g) // 2, (PAGE_H - 2 * m - g) // 2
    tall = (m, m, half_w, PAGE_H - 2 * m)
    right = [(m + half_w + g, m, half_w, half_h), (m + half_w + g, m + half_h + g, half_w, half_h)]
    page = draw_page([tall, *right], seed=_seed(4, variant))
    out.append(_page(Kind.CLEAN, "tall beside two", page, [tall, *right], [1, 2, 0]))
    boxes = [(40, 40, 520, 250), (40, 306, 252, 504), (308, 306, 252, 244), (308, 566, 252, 244)]
    page = draw_page(boxes, seed=_seed(5, variant))
    out.append(_page(Kind.CLEAN, "wide over tall and two", page, boxes, [0, 2, 3, 1]))
    rng = np.random.default_rng(_seed(6, variant))
    boxes = grid_boxes([2, 3], gutter=14)
    out.append(_page(Kind.CLEAN, "scanned 2-3", scan(draw_page(boxes, seed=_seed(6, variant)), rng), boxes))
    return out


def nested_pages(variant: int = 0) -> list[TruePage]:
    out = []
    boxes = grid_boxes([1, 2])
    page = draw_page(boxes, seed=_seed(11, variant))
    x, y, w, h = boxes[0]
    ImageDraw.Draw(page).rectangle([x + 30, y + 30, x + 150, y + 120], fill="white", outline="black", width=3)
    out.append(_page(Kind.NESTED, "inset in a wide panel", page, boxes))
    boxes = grid_boxes([2, 2])
    page = draw_page(boxes, seed=_seed(12, variant))
    x, y, w, h = boxes[3]
    # An inset in the corner, sharing two sides of its parent's frame.
    ImageDraw.Draw(page).rectangle([x + w - 110, y + h - 90, x + w - 1, y + h - 1], fill="white", outline="black",
                                   width=3)
    out.append(_page(Kind.NESTED, "corner inset", page, boxes))
    return out


def shared_pages(variant: int = 0) -> list[TruePage]:
    out = []
    rng = np.random.default_rng(_seed(21, variant))
    page, d = _blank(STRIP)
    boxes = _shared_row(12, 12, STRIP[0] - 24, STRIP[1] - 24, 4)
    _draw_shared(d, boxes, rng, 3)
    out.append(_page(Kind.SHARED, "strip of four", page.convert("RGB"), boxes))

    page, d = _blank()
    rows, boxes = [(2, 40, 240), (3, 296, 250), (2, 562, 248)], []
    for count, y, h in rows:
        boxes += _shared_row(40, y, 520, h, count)
    _draw_shared(d, boxes, rng, 3)
    out.append(_page(Kind.SHARED, "rows with shared columns", page.convert("RGB"), boxes))

    page, d = _blank()
    boxes = _shared_row(40, 40, 520, 385, 2) + _shared_row(40, 424, 520, 386, 2)
    _draw_shared(d, boxes, rng, 4)
    angle = 0.4
    truth = [rotated_box(b, angle, page.size) for b in boxes]
    out.append(_page(Kind.SHARED, "scanned 2x2, tilted", scan(page, rng, angle=angle), truth, rows_rtl(boxes)))

    page, d = _blank(STRIP)
    boxes = _shared_row(8, 10, STRIP[0] - 16, STRIP[1] - 20, 3)
    _draw_shared(d, boxes, rng, 2)
    out.append(_page(Kind.SHARED, "thin-line strip of three", scan(page, rng, noise=3, quality=80), boxes))

    page, d = _blank(STRIP)
    boxes = _shared_row(10, 14, STRIP[0] - 20, STRIP[1] - 28, 3)
    _draw_shared(d, boxes, rng, 3, inked=True)
    angle = 1.0
    truth = [rotated_box(b, angle, page.size) for b in boxes]
    out.append(_page(Kind.SHARED, "hand-inked strip, tilted 1 degree", scan(page, rng, angle=angle), truth,
                     rows_rtl(boxes)))

    page, d = _blank()
    boxes = _shared_row(40, 40, 520, 380, 2) + _shared_row(40, 436, 520, 374, 3)
    _draw_shared(d, boxes, rng, 3, inked=True)
    x = boxes[0][0] + boxes[0][2]  # a head breaks out across the shared line of the top row
    d.ellipse([x - 45, 150, x + 45, 240], fill=255, outline=0, width=3)
    d.arc([x - 20, 190, x + 20, 225], 20, 160, fill=0, width=2)
    out.append(_page(Kind.SHARED, "figure breaking a shared line", page.convert("RGB"), boxes))

    page, d = _blank()
    boxes = [b for y in (40, 306, 572) for b in _shared_row(40, y, 520, 238, 3 if y == 306 else 2)]
    _draw_shared(d, boxes, rng, 3, inked=True)
    x, y, w, h = boxes[0]
    d.rectangle([x, y, x + w // 2, y + h // 3], fill=0)  # a night sky against the frame
    x, y, w, h = boxes[3]
    for i in range(4, h - 4, 7):  # hatching from line to line
        d.line([x, y + i, x + w - 1, y + i], fill=0, width=1)
    x, y, w, h = boxes[6]
    draw_balloon(d, (x - 50, y + 20, 100, 50), rng)  # over the line this panel shares
    angle = -0.5
    truth = [rotated_box(b, angle, page.size) for b in boxes]
    out.append(_page(Kind.SHARED, "blacks, hatching and a balloon, scanned", scan(page, rng, angle=angle), truth,
                     rows_rtl(boxes)))
    return out


def thin_pages(variant: int = 0) -> list[TruePage]:
    out = []
    gutter = PAGE_W // 100  # 1% of the page width
    boxes = grid_boxes([2, 2, 2], gutter=gutter)
    out.append(_page(Kind.THIN, "3 rows of 2", draw_page(boxes, border=3, seed=_seed(31, variant)), boxes))
    boxes = grid_boxes([3, 2], gutter=gutter)
    page = scan(draw_page(boxes, border=2, seed=_seed(32, variant)), np.random.default_rng(_seed(32, variant)))
    out.append(_page(Kind.THIN, "scanned 3-2", page, boxes))
    big = (1200, 1700)  # the same 1% at twice the scale
    boxes = grid_boxes([1, 2, 2], width=big[0], height=big[1], margin=80, gutter=big[0] // 100)
    page = draw_page(boxes, size=big, border=5, seed=_seed(33, variant))
    out.append(_page(Kind.THIN, "1-2-2 at 1200 px", page, boxes))

    rng = np.random.default_rng(_seed(34, variant))
    boxes = grid_boxes([2, 2], gutter=gutter)
    page = draw_page(boxes, border=3, seed=_seed(34, variant))
    d = ImageDraw.Draw(page)
    x = boxes[0][0] + boxes[0][2] + gutter // 2  # a figure pops out across the thin gutter
    d.ellipse([x - 40, 200, x + 40, 280], fill="white", outline="black", width=3)
    for _ in range(30):  # dust
        px, py = int(rng.integers(0, PAGE_W - 3)), int(rng.integers(0, PAGE_H - 3))
        d.rectangle([px, py, px + 1, py + 1], fill="black")
    out.append(_page(Kind.THIN, "pop-out across a thin gutter, dust", scan(page, rng), boxes))
    return out


def frameless_pages(variant: int = 0) -> list[TruePage]:
    out = []
    rng = np.random.default_rng(_seed(41, variant))
    g = 16
    boxes = grid_boxes([2, 3, 2], gutter=g)
    page, d = _blank()
    for i, b in enumerate(boxes):
        if i != 3:
            draw_frame(d, b)
            draw_art(d, b, rng)
    x, y, w, h = boxes[3]  # the middle of the middle row: a caption over a figure, no frame
    draw_caption(d, (x + 6, y + 4, w - 30, 44), rng)
    draw_art(d, (x + 20, y + 70, w - 40, h - 80), rng)
    out.append(_page(Kind.FRAMELESS, "caption and figure between frames", page.convert("RGB"), boxes))

    boxes = grid_boxes([3, 2], gutter=g)
    page, d = _blank()
    for i, b in enumerate(boxes):
        if i:
            draw_frame(d, b)
            draw_art(d, b, rng)
    x, y, w, h = boxes[0]  # the first panel holds only a caption box
    draw_caption(d, (x + 10, y + 12, w - 30, 70), rng)
    out.append(_page(Kind.FRAMELESS, "first panel only a caption", page.convert("RGB"), boxes))

    page, d = _blank(STRIP)
    boxes = [(12, 12, 280, 276), (308, 12, 284, 276), (608, 12, 280, 276)]
    for b in (boxes[0], boxes[2]):
        draw_frame(d, b)
        draw_art(d, b, rng)
    x, y, w, h = boxes[1]  # a figure standing in the gutter's white
    d.ellipse([x + 90, y + 30, x + 170, y + 110], outline=0, width=2)
    d.line([x + 130, y + 110, x + 130, y + 230], fill=0, width=3)
    d.line([x + 130, y + 230, x + 80, y + h - 2], fill=0, width=3)
    d.line([x + 130, y + 230, x + 190, y + h - 2], fill=0, width=3)
    d.line([x + 60, y + 150, x + 210, y + 140], fill=0, width=3)
    draw_balloon(d, (x + 5, y + 2, 110, 60), rng)
    out.append(_page(Kind.FRAMELESS, "frameless figure in a strip", page.convert("RGB"), boxes))
    return out


def balloon_pages(variant: int = 0) -> list[TruePage]:
    out = []
    rng = np.random.default_rng(_seed(51, variant))
    boxes = grid_boxes([2, 2], gutter=20)
    page = draw_page(boxes, seed=_seed(51, variant)).convert("L")
    d = ImageDraw.Draw(page)
    gx = boxes[0][0] + boxes[0][2] + 10
    draw_balloon(d, (gx - 55, 120, 110, 55), rng)
    gy = boxes[0][1] + boxes[0][3] + 10
    draw_balloon(d, (300, gy - 30, 140, 60), rng)
    out.append(_page(Kind.BALLOON, "balloons across both gutters", page.convert("RGB"), boxes))

    boxes = grid_boxes([1, 2, 2], gutter=16)
    page = draw_page(boxes, seed=_seed(52, variant)).convert("L")
    d = ImageDraw.Draw(page)
    draw_balloon(d, (80, 18, 160, 60), rng)  # pokes out of the top frame into the margin
    draw_balloon(d, (250, boxes[2][1] - 35, 120, 60), rng)
    out.append(_page(Kind.BALLOON, "balloon over the margin and a gutter", page.convert("RGB"), boxes))

    page, d = _blank(STRIP)
    boxes = _shared_row(12, 12, STRIP[0] - 24, STRIP[1] - 24, 3)
    _draw_shared(d, boxes, rng, 3)
    draw_balloon(d, (boxes[1][0] - 60, 30, 120, 60), rng)  # across a shared border line
    out.append(_page(Kind.BALLOON, "balloon across a shared line", page.convert("RGB"), boxes))
    return out


def dark_pages(variant: int = 0) -> list[TruePage]:
    out = []
    rng = np.random.default_rng(_seed(61, variant))
    for name, rows, bg, frame in (("black page", [2, 2], 15, None), ("dark grey page", [1, 2], 70, 0),
                                  ("mid grey page", [2, 1, 2], 140, 0)):
        boxes = grid_boxes(rows, gutter=18)
        page, d = _blank(paper=bg)
        for b in boxes:
            x, y, w, h = b
            d.rectangle([x, y, x + w - 1, y + h - 1], fill=255)
            if frame is not None:
                draw_frame(d, b, 2, frame)
            draw_art(d, b, rng, 2)
            d.rectangle([x + 3 * w // 5, y + h - h // 4, x + w - 1, y + h - 1], fill=20)  # a shadow on the frame
        out.append(_page(Kind.DARK, name, page.convert("RGB"), boxes))
    # A tinted page: coloured paper around framed panels.
    boxes = grid_boxes([2, 2, 1], gutter=16)
    page = Image.new("RGB", (PAGE_W, PAGE_H), (196, 222, 245))
    d = ImageDraw.Draw(page)
    for b in boxes:
        x, y, w, h = b
        d.rectangle([x, y, x + w - 1, y + h - 1], fill="white", outline="black", width=3)
        draw_art(d, b, rng, 3)
    out.append(_page(Kind.DARK, "tinted page", page, boxes))
    return out


def bleed_pages(variant: int = 0) -> list[TruePage]:
    out = []
    rng = np.random.default_rng(_seed(71, variant))
    page, d = _blank()
    top = (0, 0, PAGE_W, 300)  # off the top, left and right edges, screentoned
    d.rectangle([0, 0, PAGE_W - 1, 299], fill=175)
    draw_art(d, top, rng)
    rest = grid_boxes([2, 2], height=PAGE_H - 300 + 40, margin=40)
    rest = [(x, y + 300 - 40 + 16, w, h) for x, y, w, h in rest]
    for b in rest:
        draw_frame(d, b)
        draw_art(d, b, rng)
    out.append(_page(Kind.BLEED, "toned panel off three edges", page.convert("RGB"), [top, *rest]))

    page, d = _blank()
    left = (0, 40, 290, PAGE_H - 80)  # off the left edge: white sky, a frame only on its three inner sides
    d.line([0, 40, 289, 40], fill=0, width=3)
    d.line([287, 40, 287, PAGE_H - 41], fill=0, width=3)
    d.line([0, PAGE_H - 42, 289, PAGE_H - 42], fill=0, width=3)
    for _ in range(3):
        draw_art(d, left, rng)
    for i in range(6):  # a horizon and ground hatching that run off the page
        d.line([0, 520 + 14 * i, 250, 500 + 14 * i], fill=0, width=2)
    right = [(306, 40, 254, 377), (306, 433, 254, 377)]
    for b in right:
        draw_frame(d, b)
        draw_art(d, b, rng)
    out.append(_page(Kind.BLEED, "white panel off the left edge", page.convert("RGB"), [left, *right], [1, 2, 0]))
    return out


def slanted_pages(variant: int = 0) -> list[TruePage]:
    out = []
    rng = np.random.default_rng(_seed(81, variant))
    page, d = _blank()
    upper = [(40, 40), (559, 40), (559, 380), (40, 460)]
    lower = [(40, 485), (559, 405), (559, 809), (40, 809)]
    for poly in (upper, lower):
        d.polygon(poly, outline=0, width=3)
    draw_art(d, (60, 60, 480, 300), rng)
    draw_art(d, (60, 520, 480, 270), rng)
    out.append(_page(Kind.SLANTED, "slanted gutter", page.convert("RGB"), [(40, 40, 520, 421), (40, 405, 520, 405)]))

    page, d = _blank()
    polys = [[(40, 40), (300, 40), (270, 330), (40, 330)], [(316, 40), (559, 40), (559, 330), (286, 330)],
             [(40, 346), (559, 346), (559, 560), (40, 620)], [(40, 636), (559, 576), (559, 809), (40, 809)]]
    for poly in polys:
        d.polygon(poly, outline=0, width=3)
    for b in ((60, 60, 190, 250), (340, 60, 200, 250), (60, 366, 480, 170), (60, 660, 480, 130)):
        draw_art(d, b, rng)
    boxes = [(40, 40, 261, 291), (286, 40, 274, 291), (40, 346, 520, 275), (40, 576, 520, 234)]
    out.append(_page(Kind.SLANTED, "slanted gutters, three rows", page.convert("RGB"), boxes, [1, 0, 2, 3]))

    page, d = _blank(STRIP)
    d.rectangle([12, 12, STRIP[0] - 13, STRIP[1] - 13], outline=0, width=3)
    d.line([430, 12, 500, STRIP[1] - 13], fill=0, width=3)  # one slanted shared line
    draw_art(d, (40, 40, 340, 220), rng)
    draw_art(d, (540, 40, 320, 220), rng)
    boxes = [(12, 12, 490, 276), (430, 12, 458, 276)]
    out.append(_page(Kind.SLANTED, "slanted shared line in a strip", page.convert("RGB"), boxes))
    return out


def corpus(variant: int = 0) -> list[TruePage]:
    """Every drawn page, kind by kind. Another `variant` draws the same layouts with other art, noise
    and lettering (the benchmark's held-out pages)."""
    return [*clean_pages(variant), *nested_pages(variant), *shared_pages(variant), *thin_pages(variant),
            *frameless_pages(variant), *balloon_pages(variant), *dark_pages(variant), *bleed_pages(variant),
            *slanted_pages(variant)]

