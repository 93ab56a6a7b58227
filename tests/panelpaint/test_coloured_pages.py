"""Pages that arrive already coloured: the share of clearly coloured pixels, measured from the
page's own paper tint, tells a coloured page from line art (clean, sepia-scanned or JPEG'd)."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from panelpaint.colour import COLOURED_SHARE, coloured_share
from panelpaint.pages import render_page
from tests.panelpaint.comic_pages import FakeColorizer, draw_page, grid_boxes


@pytest.fixture(scope="module")
def line_art() -> Image.Image:
    return draw_page(grid_boxes([2, 2]), seed=3).convert("RGB")


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def test_line_art_is_not_coloured(line_art):
    assert coloured_share(np.asarray(line_art)) == 0.0
    assert coloured_share(np.asarray(line_art.convert("L"))) == 0.0


def test_sepia_scans_and_jpeg_noise_are_not_colour(line_art):
    sepia = (np.asarray(line_art, np.float32) * np.array([0.98, 0.90, 0.74], np.float32)).astype(np.uint8)
    assert coloured_share(sepia) < COLOURED_SHARE / 5
    assert coloured_share(np.asarray(jpeg(Image.fromarray(sepia), 40))) < COLOURED_SHARE / 5


def test_a_coloured_page_is_coloured(line_art):
    result = render_page(line_art.resize((300, 425)), Image.new("RGB", (16, 16), (180, 90, 40)), FakeColorizer(),
                         work_size=128)
    share = coloured_share(np.asarray(result.composite))
    assert share >= 0.2
    assert coloured_share(np.asarray(jpeg(result.composite, 60))) >= 0.2


def test_a_small_coloured_mark_does_not_make_a_page_coloured(line_art):
    page = np.asarray(line_art).copy()
    h, w = page.shape[:2]
    page[: h // 10, : w // 10] = (220, 30, 30)  # a red publisher's stamp: 1 % of the page
    assert 0.005 < coloured_share(page) < COLOURED_SHARE
    page[: h // 3, : w // 3] = (220, 30, 30)  # a third of a ninth: past the threshold
    assert coloured_share(page) >= COLOURED_SHARE
