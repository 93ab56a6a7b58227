"""Panel detection in comic pages (after Kumiko), with a confidence per panel, and reading order.

`page` finds the page's background and content at a working size, `cuts` cuts the content along
gutters and dividing lines (upright or slanted) into a tree, `layout` turns the tree into panels
(expanding frameless ones, merging fragments) and `order` reads them left to right or right to left.
"""
from panelpaint.panels.layout import detect_layout, detect_panels
from panelpaint.panels.model import NEEDS_CHECK_BELOW, Direction, Layout, Panel, iou, rectangle
from panelpaint.panels.order import order_panels

__all__ = ["NEEDS_CHECK_BELOW", "Direction", "Layout", "Panel", "detect_layout", "detect_panels", "iou",
           "order_panels", "rectangle"]
