"""Panel detection on the drawn corpus of every kind of page, confidence, and bad input."""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from panelpaint.images import to_gray
from panelpaint.panels import NEEDS_CHECK_BELOW, Layout, Panel, detect_layout, detect_panels, iou
from tests.panelpaint.comic_pages import draw_balloon, draw_page, grid_boxes
from tests.panelpaint.panel_corpus import STRIP, Kind, corpus, score

ROOT = Path(__file__).resolve().parents[2]
PAGES = {f"{p.kind.name.lower()}: {p.name}": p for p in corpus()}


def test_the_corpus_covers_every_kind_in_both_directions():
    assert {p.kind for p in PAGES.values()} == set(Kind)
    for page in PAGES.values():
        assert sorted(page.rtl) == list(range(len(page.boxes)))


@pytest.mark.parametrize("direction", ["ltr", "rtl"])
@pytest.mark.parametrize("name", PAGES)
def test_every_drawn_page_is_detected_right(name, direction):
    page = PAGES[name]
    panels = detect_panels(to_gray(page.image), direction)
    result = score(panels, page.truth(direction))
    assert result.right, (f"found {[(p.order, p.bbox) for p in panels]}, expected {page.truth(direction)}: "
                          f"IoUs {result.ious}, {result.order_hits} in order")


def test_score_counts_missing_extra_and_misordered_panels():
    truth = [(0, 0, 100, 100), (120, 0, 100, 100)]
    panels = [Panel.from_dict({"bbox": b, "order": i}) for i, b in enumerate(truth)]
    assert score(panels, truth).right
    assert not score(panels[:1], truth).right  # one missing
    assert not score(panels + [Panel.from_dict({"bbox": [0, 200, 50, 50], "order": 2})], truth).right  # one extra
    swapped = [Panel.from_dict({"bbox": b, "order": 1 - i}) for i, b in enumerate(truth)]
    assert not score(swapped, truth).right and score(swapped, truth).order_accuracy == 0
    shifted = [Panel.from_dict({"bbox": [30, 0, 100, 100], "order": 0}), panels[1]]
    assert not score(shifted, truth).right  # IoU 0.54 < 0.8


def test_panels_keep_their_place_when_the_page_is_scanned_at_another_resolution():
    page = PAGES["shared: scanned 2x2, tilted"]
    big = page.image.resize((page.image.width * 3, page.image.height * 3), Image.BICUBIC)  # past the working size
    small = detect_panels(to_gray(page.image))
    large = detect_panels(to_gray(big))
    assert len(large) == len(small) == 4
    for a, b in zip(small, large):
        assert iou(tuple(3 * v for v in a.bbox), b.bbox) >= 0.95
        assert all(0 <= x < big.width and 0 <= y < big.height for x, y in b.polygon)
    json.dumps([p.to_dict() for p in large])  # plain numbers, as the job store keeps them


@pytest.mark.parametrize("entry", json.loads((ROOT / "bench" / "panels_truth.json").read_text())["pages"],
                         ids=lambda e: e["path"])
def test_hand_labelled_real_pages(entry):
    path = ROOT / entry["path"]
    if not path.is_file():
        pytest.skip(f"{entry['path']} is not here (fetched pages live in the git-ignored data/)")
    boxes = [tuple(b) for b in entry["boxes"]]
    gray = to_gray(Image.open(path))
    assert score(detect_panels(gray, "ltr"), boxes).right
    assert score(detect_panels(gray, "rtl"), [boxes[i] for i in entry["rtl"]]).right


# --- confidence ------------------------------------------------------------------------------------


def test_framed_panels_with_clean_gutters_are_sure():
    layout = detect_layout(to_gray(PAGES["clean: 1-2-3"].image))
    assert all(p.confidence >= 0.9 for p in layout.panels)
    assert layout.confidence == min(p.confidence for p in layout.panels)
    assert not layout.needs_check


def test_an_expanded_frameless_panel_is_unsure_and_the_page_needs_a_check():
    page = PAGES["frameless: caption and figure between frames"]
    layout = detect_layout(to_gray(page.image))
    frameless = next(p for p in layout.panels if iou(p.bbox, page.boxes[3]) >= 0.8)
    assert frameless.confidence < NEEDS_CHECK_BELOW
    assert all(p.confidence >= 0.9 for p in layout.panels if p is not frameless)
    assert layout.needs_check


def test_a_shared_line_broken_by_a_balloon_is_less_sure_than_a_whole_one():
    boxes = [(12, 12, 292, 276), (304, 12, 292, 276), (596, 12, 292, 276)]
    whole = Image.new("L", STRIP, 255)
    d = ImageDraw.Draw(whole)
    for x, y, w, h in boxes:
        d.rectangle([x, y, x + w - 1, y + h - 1], outline=0, width=3)
    broken = whole.copy()
    draw_balloon(ImageDraw.Draw(broken), (boxes[1][0] - 60, 30, 120, 60), np.random.default_rng(0))
    sure = detect_panels(np.asarray(whole))
    unsure = detect_panels(np.asarray(broken))
    assert len(sure) == len(unsure) == 3
    gutters = detect_panels(to_gray(draw_page(grid_boxes([3], width=900, height=300, margin=12), size=STRIP)))
    # The first panel is cut off by the broken line, the last by a whole one.
    assert unsure[0].confidence < sure[0].confidence <= min(p.confidence for p in gutters)
    assert unsure[2].confidence == pytest.approx(sure[2].confidence, abs=0.1)


def test_a_splash_page_is_one_unsure_panel():
    rng = np.random.default_rng(3)
    page = Image.new("L", (600, 850), 255)
    d = ImageDraw.Draw(page)
    for _ in range(60):
        d.line(rng.integers([30, 50], [570, 800], size=(2, 2)).ravel().tolist(), fill=0, width=2)
    layout = detect_layout(np.asarray(page))
    assert len(layout.panels) == 1 and layout.needs_check


def test_confidence_travels_in_the_panel_json():
    layout = detect_layout(to_gray(PAGES["frameless: first panel only a caption"].image))
    stored = json.loads(json.dumps(layout.to_dict()))
    assert stored["needs_check"] is True and stored["confidence"] == pytest.approx(layout.confidence, abs=1e-3)
    again = [Panel.from_dict(d) for d in stored["panels"]]
    assert [p.confidence for p in again] == pytest.approx([p.confidence for p in layout.panels], abs=1e-3)
    assert Panel.from_dict({"bbox": [0, 0, 5, 5]}).confidence == 1.0  # drawn or kept by a person
    for bad in (1.5, -0.1, "high"):
        with pytest.raises(ValueError, match="confidence"):
            Panel.from_dict({"bbox": [0, 0, 5, 5], "confidence": bad})
    assert Layout([Panel.from_dict({"bbox": [0, 0, 5, 5], "confidence": 0.2})], 0.2).needs_check


# --- bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1), (1, 300), (300, 1), (10, 12)])
def test_a_tiny_page_is_one_unsure_panel(shape):
    layout = detect_layout(np.zeros(shape, np.uint8))
    assert [p.bbox for p in layout.panels] == [(0, 0, shape[1], shape[0])]
    assert layout.needs_check


@pytest.mark.parametrize("value", [0, 255, 128])
def test_a_page_of_one_colour_is_one_panel_covering_it(value):
    layout = detect_layout(np.full((850, 600), value, np.uint8))
    assert [p.bbox for p in layout.panels] == [(0, 0, 600, 850)]
    assert layout.needs_check


@pytest.mark.parametrize("bad", [np.zeros((0, 0), np.uint8), np.zeros((5, 5, 3), np.uint8),
                                 np.zeros((50, 50), np.float32)], ids=["empty", "colour", "float"])
def test_arrays_that_are_not_grey_pages_are_refused(bad):
    with pytest.raises(ValueError, match="page"):
        detect_panels(bad)


def test_noise_gives_panels_inside_the_page():
    gray = np.random.default_rng(1).integers(0, 256, (400, 300), dtype=np.uint8)
    for p in detect_panels(gray):
        x, y, w, h = p.bbox
        assert w > 0 and h > 0 and x + w <= 300 and y + h <= 400
