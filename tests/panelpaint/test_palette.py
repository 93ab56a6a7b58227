"""The reference's palette: k-means in Lab without paper or ink, JSON for the web, snapping flats to it."""
import json

import cv2
import numpy as np
import pytest

from panelpaint.colour import is_paper, lab_to_rgb, rgb_to_lab
from panelpaint.limits import SWATCHES_MAX
from panelpaint.palette import Palette, Swatch, extract_palette, snap

RED, GREEN, BLUE = (200, 30, 40), (40, 160, 60), (30, 60, 190)


def reference() -> np.ndarray:
    """Three flat colours in proportion 3:2:1 with black outlines, on white paper."""
    img = np.full((200, 300, 3), 255, np.uint8)
    img[20:180, 20:110] = RED
    img[20:180, 120:180] = GREEN
    img[20:180, 190:220] = BLUE
    for x0, x1 in ((20, 110), (120, 180), (190, 220)):
        cv2.rectangle(img, (x0, 20), (x1, 180), (0, 0, 0), 2, cv2.LINE_AA)
    return img


def delta_e(a, b) -> float:
    return float(np.linalg.norm(rgb_to_lab(np.array(a, np.uint8)) - rgb_to_lab(np.array(b, np.uint8))))


def test_extract_finds_the_colours_without_paper_or_ink_sorted_by_share():
    pal = extract_palette(reference(), k=8)
    assert len(pal) == 3  # k comes down to what the image holds
    for swatch, colour in zip(pal.swatches, (RED, GREEN, BLUE)):
        assert delta_e(swatch.rgb, colour) < 3, (swatch, colour)
    shares = [s.share for s in pal.swatches]
    assert shares == sorted(shares, reverse=True) and abs(sum(shares) - 1) < 1e-6
    assert shares[0] == pytest.approx(0.5, abs=0.06) and shares[2] == pytest.approx(1 / 6, abs=0.06)
    assert extract_palette(reference(), k=8) == pal  # deterministic


def test_extract_with_many_colours_gives_k_and_a_blank_page_gives_paper():
    rng = np.random.default_rng(3)
    noisy = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert len(extract_palette(noisy, k=5)) == 5
    assert extract_palette(np.full((10, 10, 3), 255, np.uint8)).swatches == (Swatch((255, 255, 255), 1.0),)
    with pytest.raises(ValueError, match="k must be"):
        extract_palette(noisy, k=0)
    with pytest.raises(ValueError, match="RGB uint8"):
        extract_palette(noisy[..., 0])


def test_palette_json_round_trips():
    pal = extract_palette(reference())
    data = json.loads(json.dumps(pal.to_json()))
    assert data[0]["color"].startswith("#") and len(data[0]["color"]) == 7
    assert Palette.from_json(data) == pal
    edited = Palette.from_json([{"color": "#FF0000"}, {"color": "00ff00", "share": 0.5}])
    assert edited.to_json() == [{"color": "#ff0000", "share": 0.0}, {"color": "#00ff00", "share": 0.5}]


@pytest.mark.parametrize("data, message", [
    ({"color": "#ff0000"}, "must be a list"),
    ([], "1 to 32 swatches, got 0"),
    ([{"color": "#000000"}] * (SWATCHES_MAX + 1), "1 to 32 swatches, got 33"),
    ([{"color": "#ff0000"}, {"colour": "#00ff00"}], "swatch 1: must be an object"),
    (["#ff0000"], "swatch 0: must be an object"),
    ([{"color": "red"}], "swatch 0: color must look like #rrggbb, got 'red'"),
    ([{"color": "#ff00"}], "swatch 0: color must look like"),
    ([{"color": "#ff0000", "share": 1.5}], "swatch 0: share must be a number from 0 to 1, got 1.5"),
    ([{"color": "#ff0000", "share": "big"}], "share must be a number"),
])
def test_bad_palettes_say_what_is_wrong(data, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        Palette.from_json(data)


def test_snap_uses_only_palette_colours_and_keeps_paper():
    pal = Palette.from_json([{"color": c} for c in ("#c83228", "#28a03c", "#1e3cbe", "#202020")])
    rng = np.random.default_rng(0)
    colours = rng.integers(0, 256, (300, 3), dtype=np.uint8)
    colours[:5] = (252, 250, 247)  # paper
    out = snap(colours, pal)
    allowed = {tuple(c) for c in pal.colours} | {(255, 255, 255)}
    assert {tuple(c) for c in out} <= allowed
    paper = is_paper(rgb_to_lab(colours))
    assert paper[:5].all() and (out[paper] == 255).all() and not (out[~paper] == 255).all(axis=1).any()
    keep = np.zeros(len(colours), bool)
    keep[10] = True
    assert tuple(snap(colours, pal, keep=keep)[10]) == (255, 255, 255)
    assert tuple(snap(np.array([[190, 60, 50]], np.uint8), pal)[0]) == (0xc8, 0x32, 0x28)


def test_a_pale_draft_colour_finds_its_hue_not_a_grey():
    # The network's draft is paler than its reference: a washed-out blue must still snap to blue.
    pal = Palette.from_json([{"color": "#808080", "share": 0.3}, {"color": "#2850c8", "share": 0.4},
                             {"color": "#c83228", "share": 0.3}])
    lab = rgb_to_lab(np.array([[40, 80, 200], [200, 50, 40]], np.uint8))
    lab[:, 1:] *= 0.35
    pale = lab_to_rgb(lab)
    assert delta_e(pale[0], (0x80, 0x80, 0x80)) < delta_e(pale[0], (0x28, 0x50, 0xc8))  # plain ΔE picks grey
    out = snap(pale, pal)
    assert tuple(out[0]) == (0x28, 0x50, 0xc8) and tuple(out[1]) == (0xc8, 0x32, 0x28)


def test_seeds_vary_the_snap_and_the_same_seed_repeats_it():
    pal = extract_palette(np.random.default_rng(5).integers(0, 256, (64, 64, 3), dtype=np.uint8), k=8)
    colours = np.random.default_rng(6).integers(30, 220, (60, 3), dtype=np.uint8)
    a = snap(colours, pal, rng=np.random.default_rng(1))
    b = snap(colours, pal, rng=np.random.default_rng(2))
    again = snap(colours, pal, rng=np.random.default_rng(1))
    assert not np.array_equal(a, b) and np.array_equal(a, again)
    allowed = {tuple(c) for c in pal.colours}
    assert {tuple(c) for c in a} <= allowed and {tuple(c) for c in b} <= allowed
    # Without a generator it is the nearest colour, the same every time.
    assert np.array_equal(snap(colours, pal), snap(colours, pal))
    with pytest.raises(ValueError, match="temperature"):
        snap(colours, pal, rng=np.random.default_rng(1), temperature=0)


def test_every_seed_differs_from_the_canonical_colouring_even_with_one_region():
    pal = Palette.from_json([{"color": "#c83232", "share": 0.5}, {"color": "#3264c8", "share": 0.5}])
    colours = np.array([[200, 60, 60], [255, 255, 255]], np.uint8)  # one red region and paper
    canonical = snap(colours, pal)
    for seed in range(20):
        variant = snap(colours, pal, rng=np.random.default_rng(seed))
        assert not np.array_equal(variant, canonical)
        assert tuple(variant[1]) == (255, 255, 255)  # paper stays paper
