"""Panel detection on synthetic pages with known boxes: IoU >= 0.9 for every panel, exact reading order."""
import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.panelpaint.comic_pages import PAGE_H, PAGE_W, draw_page, grid_boxes
from panelpaint.images import to_gray
from panelpaint.panels import Panel, detect_panels, iou, order_panels


def assert_detected(page, expected, direction="ltr"):
    panels = detect_panels(to_gray(page), direction)
    got = [p.bbox for p in panels]
    assert len(got) == len(expected), f"found {got}, expected {expected}"
    for p, want in zip(panels, expected):
        assert iou(p.bbox, want) >= 0.9, f"panel {p.order}: {p.bbox} vs {want}"
    assert [p.order for p in panels] == list(range(len(expected)))
    return panels


def rtl_order(rows_boxes):
    """Expected RTL order for grid_boxes output: rows top to bottom, each row right to left."""
    rows: dict[int, list] = {}
    for b in rows_boxes:
        rows.setdefault(b[1], []).append(b)
    return [b for y in sorted(rows) for b in sorted(rows[y], key=lambda b: -b[0])]


LAYOUTS = {
    "2x2": [2, 2],
    "3 rows of 2": [2, 2, 2],
    "2 rows of 3": [3, 3],
    "irregular 1-2-3": [1, 2, 3],
    "irregular 3-1-2": [3, 1, 2],
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("gutter, border", [(16, 3), (5, 1), (30, 8), (10, 2)])
def test_grid_layouts_ltr(layout, gutter, border):
    boxes = grid_boxes(LAYOUTS[layout], gutter=gutter)
    assert_detected(draw_page(boxes, border=border, seed=gutter), boxes)


@pytest.mark.parametrize("layout", ["2x2", "irregular 1-2-3", "2 rows of 3"])
def test_grid_layouts_rtl(layout):
    boxes = grid_boxes(LAYOUTS[layout])
    assert_detected(draw_page(boxes), rtl_order(boxes), direction="rtl")


def test_touching_panels_are_split_along_the_shared_border():
    boxes = grid_boxes([2, 2], gutter=0)
    assert_detected(draw_page(boxes, border=3), boxes)


def test_balloon_across_a_gutter_does_not_merge_panels():
    boxes = grid_boxes([2, 2], gutter=20)
    page = draw_page(boxes)
    d = ImageDraw.Draw(page)
    gx = boxes[0][0] + boxes[0][2] + 10  # middle of the vertical gutter in the top row
    d.ellipse([gx - 45, 120, gx + 45, 170], fill="white", outline="black", width=2)
    assert_detected(page, boxes)


def test_panel_spanning_two_rows_is_read_before_its_neighbours():
    m, g = 40, 16
    half_w = (PAGE_W - 2 * m - g) // 2
    half_h = (PAGE_H - 2 * m - g) // 2
    tall = (m, m, half_w, PAGE_H - 2 * m)
    top_right = (m + half_w + g, m, half_w, half_h)
    bottom_right = (m + half_w + g, m + half_h + g, half_w, half_h)
    page = draw_page([tall, top_right, bottom_right])
    assert_detected(page, [tall, top_right, bottom_right], "ltr")
    # Manga: the right column comes first, top to bottom, then the tall panel on the left.
    assert_detected(page, [top_right, bottom_right, tall], "rtl")


def test_wide_panel_spanning_columns_then_row():
    boxes = [(40, 40, 520, 250), (40, 306, 252, 504), (308, 306, 252, 244), (308, 566, 252, 244)]
    page = draw_page(boxes)
    assert_detected(page, boxes, "ltr")
    assert_detected(page, [boxes[0], boxes[2], boxes[3], boxes[1]], "rtl")


def test_nested_inset_panel_is_not_a_separate_panel():
    boxes = grid_boxes([1, 2])
    page = draw_page(boxes)
    x, y, w, h = boxes[0]
    ImageDraw.Draw(page).rectangle([x + 30, y + 30, x + 150, y + 120], fill="white", outline="black", width=3)
    assert_detected(page, boxes)


def test_slanted_gutter_gives_polygons():
    page = Image.new("L", (PAGE_W, PAGE_H), 255)
    d = ImageDraw.Draw(page)
    upper = [(40, 40), (559, 40), (559, 380), (40, 460)]
    lower = [(40, 485), (559, 405), (559, 809), (40, 809)]
    for poly in (upper, lower):
        d.polygon(poly, outline=0, width=3)
    panels = detect_panels(to_gray(page.convert("RGB")))
    assert len(panels) == 2
    for p, poly in zip(panels, (upper, lower)):
        want_img = Image.new("L", (PAGE_W, PAGE_H), 0)
        ImageDraw.Draw(want_img).polygon(poly, fill=255)
        want = np.asarray(want_img) > 0
        got = p.mask((PAGE_W, PAGE_H)) > 0
        assert (want & got).sum() / (want | got).sum() >= 0.95
        assert 4 <= len(p.polygon) <= 8


def test_splash_page_is_one_panel_around_the_content():
    rng = np.random.default_rng(3)
    page = Image.new("L", (PAGE_W, PAGE_H), 255)
    d = ImageDraw.Draw(page)
    for _ in range(60):
        pts = rng.integers([30, 50], [PAGE_W - 30, PAGE_H - 50], size=(2, 2))
        d.line(pts.ravel().tolist(), fill=0, width=2)
    for _ in range(15):
        cx, cy = rng.integers(60, PAGE_W - 60), rng.integers(80, PAGE_H - 80)
        d.ellipse([cx - 25, cy - 25, cx + 25, cy + 25], outline=0, width=2)
    arr = np.asarray(page)
    ys, xs = np.nonzero(arr < 128)
    content = (xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min())
    panels = detect_panels(arr)
    assert len(panels) == 1 and iou(panels[0].bbox, content) >= 0.95


def test_blank_page_is_one_panel_covering_the_page():
    panels = detect_panels(np.full((200, 100), 255, np.uint8))
    assert [p.bbox for p in panels] == [(0, 0, 100, 200)]


def test_page_numbers_and_specks_in_the_margin_are_not_panels():
    boxes = grid_boxes([2, 2])
    page = draw_page(boxes, page_number=True)
    ImageDraw.Draw(page).rectangle([5, 5, 9, 9], fill="black")
    assert_detected(page, boxes)


def test_panel_roundtrips_through_dict_and_validates():
    boxes = grid_boxes([2, 2])
    panels = detect_panels(to_gray(draw_page(boxes)))
    again = [Panel.from_dict(p.to_dict()) for p in panels]
    assert [(p.bbox, p.polygon, p.order) for p in again] == [(p.bbox, p.polygon, p.order) for p in panels]
    rect = Panel.from_dict({"bbox": [10, 20, 30, 40]})
    assert rect.polygon == [[10, 20], [39, 20], [39, 59], [10, 59]]
    assert rect.mask((100, 100)).sum() // 255 == 30 * 40
    for bad, msg in [({}, "bbox"), ({"bbox": [0, 0, 0, 5]}, "positive"), ({"bbox": [0, 0, 5, 5], "polygon": [[1, 2]]}, "three")]:
        with pytest.raises(ValueError, match=msg):
            Panel.from_dict(bad)


def test_order_panels_reorders_user_edited_panels():
    a, b, c = (Panel.from_dict({"bbox": box}) for box in ([300, 40, 200, 200], [40, 40, 200, 200], [40, 300, 460, 200]))
    assert [p.bbox[0] for p in order_panels([a, b, c], "ltr")] == [40, 300, 40]
    assert [p.bbox[0] for p in order_panels([a, b, c], "rtl")] == [300, 40, 40]
    with pytest.raises(ValueError, match="direction"):
        detect_panels(np.full((10, 10), 255, np.uint8), "ttb")


def test_noisy_grey_scan_with_specks():
    import io

    boxes = grid_boxes([2, 3])
    clean = np.asarray(draw_page(boxes, seed=9).convert("L"), np.float32)
    rng = np.random.default_rng(9)
    scan = 40 + clean * (185 / 255) + rng.normal(0, 6, clean.shape)  # grey paper ~225, ink ~40
    for _ in range(40):  # dust in the gutters and margins
        y, x = rng.integers(0, PAGE_H - 3), rng.integers(0, PAGE_W - 3)
        scan[y:y + 2, x:x + 2] = 30
    buf = io.BytesIO()
    Image.fromarray(np.clip(scan, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=70)
    page = Image.open(buf).convert("RGB")
    assert_detected(page, boxes)


def test_a_line_across_one_panel_is_not_a_shared_border():
    boxes = grid_boxes([1, 1], gutter=30)
    page = draw_page(boxes, border=5, art=False)
    x, y, w, h = boxes[0]
    ImageDraw.Draw(page).line([x, y + h // 2, x + w - 1, y + h // 2], fill="black", width=2)  # a horizon
    assert_detected(page, boxes)


def test_touching_panels_with_thin_frames_still_split():
    boxes = grid_boxes([3, 3], gutter=0)
    assert_detected(draw_page(boxes, border=1), boxes)
