"""What panel detection returns: panels with a confidence, the page layout they make, and the
reading direction. `Panel` is the one shape of a panel everywhere: the pipeline, the job store,
the hand-off files, panels.json and the API."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

import cv2
import numpy as np


class Direction(enum.StrEnum):
    """Reading order of a page: left to right (western comics) or right to left (manga)."""

    ltr = "ltr"
    rtl = "rtl"


def rectangle(bbox: tuple[int, int, int, int] | list[int]) -> list[list[int]]:
    """The polygon of a box (x, y, w, h): its four corner pixels. Polygon points are pixels, and
    filling one includes its outline, so this covers exactly the box's w x h pixels."""
    x, y, w, h = bbox
    return [[x, y], [x + w - 1, y], [x + w - 1, y + h - 1], [x, y + h - 1]]

# A layout whose weakest panel is less sure than this is held for a person to check its panels.
NEEDS_CHECK_BELOW = 0.6


@dataclass
class Panel:
    """One panel: bounding box (x, y, w, h) and polygon [[x, y], ...] in page pixels, 0-based reading order.

    `confidence` in [0, 1] says how sure detection is of this panel: 0.9 or more for a panel closed by
    its own frame and clean gutters; 0.55-0.95 for one cut off along a shared border line, by how fully
    the line is drawn (a balloon over it lowers it), 0.9 along a gutter that something crosses; less
    when its outline is ragged; 0.5 for a frameless panel expanded to the space its neighbours leave,
    0.45 for a page taken whole (a splash, or no panel found) and 0.3 for a blank or tiny page.
    Panels drawn or edited by a person are 1.0.
    """

    bbox: tuple[int, int, int, int]
    polygon: list[list[int]]
    order: int = 0
    extra: dict = field(default_factory=dict)
    confidence: float = 1.0

    @property
    def area(self) -> int:
        return self.bbox[2] * self.bbox[3]

    def box(self) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1), exclusive right/bottom."""
        x, y, w, h = self.bbox
        return x, y, x + w, y + h

    def contains(self, x: float, y: float) -> bool:
        """True when the page point (x, y) lies in the panel's box (a colour hint on it)."""
        x0, y0, x1, y1 = self.box()
        return x0 <= x < x1 and y0 <= y < y1

    def mask(self, size: tuple[int, int], offset: tuple[int, int] = (0, 0)) -> np.ndarray:
        """uint8 mask (255 inside the polygon) of `size` (w, h) whose origin is page point `offset`."""
        out = np.zeros((size[1], size[0]), np.uint8)
        pts = np.asarray(self.polygon, np.int32).reshape(-1, 1, 2) - np.asarray(offset, np.int32)
        cv2.fillPoly(out, [pts], 255)
        return out

    def geometry(self) -> dict:
        """Where the panel is: {order, bbox, polygon}, as the job store, the API and cut files hold it."""
        return {"order": self.order, "bbox": list(self.bbox), "polygon": [list(p) for p in self.polygon]}

    def to_dict(self) -> dict:
        """The geometry with detection's confidence (and its extras), as panels.json holds it."""
        d = {**self.geometry(), "confidence": round(float(self.confidence), 3)}
        if self.extra:
            d["extra"] = dict(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Panel":
        """Build a panel from stored or user-edited data; a missing polygon is the bbox rectangle, a
        missing confidence is 1.0 (a person drew or kept the panel)."""
        try:
            x, y, w, h = (int(v) for v in d["bbox"])
        except (KeyError, TypeError, ValueError):
            raise ValueError("panel needs a bbox [x, y, w, h] of four integers") from None
        if w <= 0 or h <= 0:
            raise ValueError(f"panel bbox must have a positive size, got {w}x{h}")
        polygon = d.get("polygon") or rectangle((x, y, w, h))
        try:
            polygon = [[int(p[0]), int(p[1])] for p in polygon]
        except (TypeError, ValueError, IndexError):
            raise ValueError("panel polygon must be a list of [x, y] points") from None
        if len(polygon) < 3:
            raise ValueError("panel polygon needs at least three points")
        try:
            confidence = float(d.get("confidence", 1.0))
        except (TypeError, ValueError):
            raise ValueError("panel confidence must be a number in [0, 1]") from None
        if not 0.0 <= confidence <= 1.0:
            raise ValueError(f"panel confidence must be in [0, 1], got {confidence}")
        return cls((x, y, w, h), polygon, int(d.get("order", 0)), dict(d.get("extra") or {}), confidence)


@dataclass
class Layout:
    """A page's panels in reading order, and how sure detection is of them as a whole.

    `confidence` is the weakest panel's (a layout is as good as its least certain panel);
    `needs_check` is true when it is below `NEEDS_CHECK_BELOW`: the page should be held for a person
    to check its panels before colouring.
    """

    panels: list[Panel]
    confidence: float

    @property
    def needs_check(self) -> bool:
        return self.confidence < NEEDS_CHECK_BELOW

    def to_dict(self) -> dict:
        return {"confidence": round(float(self.confidence), 3), "needs_check": self.needs_check,
                "panels": [p.to_dict() for p in self.panels]}


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union else 0.0
