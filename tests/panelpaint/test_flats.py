"""Flats: closed regions that hold at small gaps, one hard-edged colour per region, paper, hints, shading."""
import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from panelpaint import flats
from panelpaint.colour import rgb_to_lab
from panelpaint.flats import (Background, apply_hints, apply_shading, finish_panel, paint, region_colours,
                              segment, shading)
from panelpaint.palette import Palette


def ring_with_gap(size: int = 240, gap: int = 2, width: int = 2) -> np.ndarray:
    """A closed square outline on paper with one gap of `gap` pixels cut through its left side."""
    lines = np.full((size, size), 255, np.uint8)
    a, b = size // 5, size - size // 5
    cv2.rectangle(lines, (a, a), (b, b), 0, width)
    mid = size // 2
    lines[mid:mid + gap, a - width:a + width + 1] = 255
    return lines


def square_draft(size: int, inside, outside, scale: int = 4) -> np.ndarray:
    """A network-like draft at 1/scale: the square's colour inside, another outside, soft edges, dark lines."""
    big = np.empty((size, size, 3), np.uint8)
    big[:] = outside
    a, b = size // 5, size - size // 5
    big[a:b, a:b] = inside
    cv2.rectangle(big, (a, a), (b, b), (20, 20, 20), 3)
    small = cv2.resize(big, (size // scale, size // scale), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(small, (0, 0), 1.0)


@pytest.mark.parametrize("size", [120, 240, 600])
@pytest.mark.parametrize("gap", [1, 2])
def test_a_gap_of_one_or_two_pixels_does_not_leak(size, gap):
    lines = ring_with_gap(size, gap)
    regions = segment(lines)
    inside = regions.labels[size // 2, size // 2]
    outside = regions.labels[3, 3]
    assert inside != outside
    # The gap's own pixels belong to one side or the other, and the inside is the whole square.
    a, b = size // 5, size - size // 5
    assert (regions.labels[a + 3:b - 2, a + 3:b - 2] == inside).all()
    assert not (regions.labels[:a - 2] == inside).any()


def test_a_wide_opening_is_not_a_gap():
    size = 240
    lines = ring_with_gap(size, gap=size // 2)
    regions = segment(lines)
    assert regions.labels[size // 2, size // 2] == regions.labels[3, 3]


def test_grey_paper_and_jpeg_noise_give_the_same_regions():
    lines = ring_with_gap(240, 2, width=3)
    scan = (40 + lines.astype(np.float32) * (200 - 40) / 255).astype(np.uint8)  # grey paper, grey ink
    ok, jpeg = cv2.imencode(".jpg", scan, [cv2.IMWRITE_JPEG_QUALITY, 60])
    noisy = cv2.imdecode(jpeg, cv2.IMREAD_GRAYSCALE)
    clean = segment(lines)
    for other in (segment(scan), segment(noisy)):
        assert other.labels[120, 120] != other.labels[3, 3]
        same = other.labels[clean.labels == clean.labels[120, 120]] == other.labels[120, 120]
        assert same.mean() > 0.99


def test_every_pixel_has_a_label_and_line_pixels_take_a_neighbouring_region():
    lines = np.full((200, 200), 255, np.uint8)
    lines[:, 97:104] = 0  # a thick vertical line between a left and a right region
    regions = segment(lines)
    assert regions.labels.dtype == np.int32 and regions.labels.shape == lines.shape
    assert regions.n == 2 and sorted(np.unique(regions.labels)) == [0, 1]
    assert regions.areas.sum() == lines.size and (regions.areas == np.bincount(regions.labels.ravel())).all()
    left, right = regions.labels[100, 10], regions.labels[100, 190]
    assert regions.line[:, 97:104].all() and not regions.line[:, :97].any()
    assert (regions.labels[:, 97:100] == left).all() and (regions.labels[:, 101:104] == right).all()
    assert regions.border.all()


def test_tiny_regions_merge_into_their_neighbour_and_larger_ones_stay():
    lines = np.full((300, 300), 255, np.uint8)
    cv2.circle(lines, (80, 150), 2, 0, 1)  # encloses a handful of pixels: below the minimum area
    cv2.circle(lines, (200, 150), 30, 0, 1)  # a real region
    assert np.pi * 2 ** 2 < flats.min_area(lines.shape) < np.pi * 30 ** 2
    regions = segment(lines)
    assert regions.labels[150, 80] == regions.labels[5, 5]
    assert regions.labels[150, 200] != regions.labels[5, 5]
    assert regions.areas.min() >= flats.min_area(lines.shape)


@pytest.mark.parametrize("size", [120, 300])
def test_the_corners_a_ball_cannot_reach_stay_with_their_own_region(size):
    lines = ring_with_gap(size, gap=0, width=1)
    regions = segment(lines)
    a, b = size // 5, size - size // 5
    inside = regions.labels[size // 2, size // 2]
    assert regions.labels[size // 2, size // 2] != regions.labels[3, 3]
    for y, x in ((a + 1, a + 1), (a + 1, b - 1), (b - 1, a + 1), (b - 1, b - 1)):
        assert regions.labels[y, x] == inside
    assert (regions.labels[a + 1:b, a + 1:b] == inside).all()
    assert regions.n == 2


@st.composite
def drawings(draw):
    size = draw(st.integers(40, 120))
    lines = np.full((size, size), 255, np.uint8)
    for _ in range(draw(st.integers(0, 6))):
        p = tuple(draw(st.integers(0, size - 1)) for _ in range(4))
        cv2.line(lines, p[:2], p[2:], draw(st.integers(0, 120)), draw(st.integers(1, 3)), cv2.LINE_AA)
    return lines


@settings(max_examples=40, deadline=None)
@given(drawings(), st.integers(0, 2 ** 31 - 1))
def test_flats_have_one_hard_colour_per_region(lines, seed):
    regions = segment(lines)
    assert set(np.unique(regions.labels)) == set(range(regions.n))
    colours = np.random.default_rng(seed).integers(0, 256, (regions.n, 3), dtype=np.uint8)
    out = paint(regions, colours)
    assert (out == colours[regions.labels]).all()
    # No anti-aliasing: the layer holds exactly the regions' colours and nothing in between.
    used = np.unique(out.reshape(-1, 3), axis=0)
    assert len(used) == len(np.unique(colours, axis=0))


def test_region_colours_are_the_interior_colour_not_a_smear():
    size = 240
    lines = ring_with_gap(size, gap=0)
    regions = segment(lines)
    draft = square_draft(size, inside=(200, 40, 40), outside=(40, 90, 200))
    colours = region_colours(regions, draft)
    inside, outside = regions.labels[120, 120], regions.labels[3, 3]
    assert np.abs(colours[inside].astype(int) - (200, 40, 40)).max() <= 3
    assert np.abs(colours[outside].astype(int) - (40, 90, 200)).max() <= 3
    # Bicubic would carry the draft's dark line and the other colour into the region's edge.
    up = cv2.resize(draft, (size, size), interpolation=cv2.INTER_CUBIC)
    assert np.abs(up[50, 52].astype(int) - (200, 40, 40)).max() > 30


def test_a_region_too_small_for_draft_samples_takes_the_draft_under_it():
    lines = np.full((256, 256), 255, np.uint8)
    cv2.circle(lines, (128, 128), 6, 0, 1)
    draft = np.full((16, 16, 3), 90, np.uint8)
    draft[7:9, 7:9] = (10, 200, 10)  # the draft pixels under the small circle (no centre falls in it)
    regions = segment(lines)
    inner = regions.labels[128, 128]
    assert inner != regions.labels[0, 0]
    assert tuple(region_colours(regions, draft)[inner]) == (10, 200, 10)


def test_near_white_regions_are_exactly_paper_and_greys_are_not():
    size = 240
    lines = ring_with_gap(size, gap=0)
    for inside, expect_paper in (((250, 247, 252), True), ((185, 185, 185), False), ((255, 230, 200), False)):
        draft = square_draft(size, inside=inside, outside=(60, 120, 60))
        out = finish_panel(draft, lines, background=Background.COLOURED, shading=False)
        centre = tuple(out.flats[120, 120])
        assert (centre == (255, 255, 255)) == expect_paper, (inside, centre)
    lab = rgb_to_lab(np.array([[185, 185, 185], [255, 230, 200]], np.uint8))
    assert lab[0, 0] < 85 and np.hypot(*lab[1, 1:]) >= 12  # why the two are not paper


def test_background_paper_or_coloured():
    size = 240
    lines = ring_with_gap(size, gap=0)
    draft = square_draft(size, inside=(200, 40, 40), outside=(40, 90, 200))
    paper = finish_panel(draft, lines, background=Background.PAPER, shading=False)
    coloured = finish_panel(draft, lines, background="coloured", shading=False)
    assert tuple(paper.flats[3, 3]) == (255, 255, 255)
    assert np.abs(coloured.flats[3, 3].astype(int) - (40, 90, 200)).max() <= 3
    # The figure itself keeps its colour either way.
    assert (paper.flats[120, 120] == coloured.flats[120, 120]).all()
    assert tuple(paper.flats[120, 120]) != (255, 255, 255)


def test_a_figure_cut_by_the_border_is_not_background():
    lines = np.full((200, 300), 255, np.uint8)
    cv2.ellipse(lines, (150, 200), (40, 60), 0, 180, 360, 0, 2)  # a bust rising from the bottom edge
    regions = segment(lines)
    bg = flats.background_regions(regions)
    assert bg[regions.labels[10, 10]] and not bg[regions.labels[190, 150]]


def test_inside_a_panel_frame_the_panel_background_is_background():
    lines = np.full((300, 400), 255, np.uint8)
    cv2.rectangle(lines, (8, 8), (391, 291), 0, 4)  # the frame, with a gutter margin around it
    cv2.circle(lines, (200, 150), 50, 0, 2)  # a figure
    cv2.ellipse(lines, (380, 200), (40, 30), 0, 0, 360, 0, 2)  # a figure cut by the frame
    regions = segment(lines)
    bg = flats.background_regions(regions)
    assert bg[regions.labels[2, 2]] and bg[regions.labels[30, 30]]
    assert not bg[regions.labels[150, 200]] and not bg[regions.labels[200, 375]]


def test_a_hint_fills_exactly_its_region():
    size = 240
    lines = ring_with_gap(size, gap=2)
    draft = square_draft(size, inside=(200, 40, 40), outside=(40, 90, 200))
    before = finish_panel(draft, lines, background=Background.COLOURED, shading=False)
    # The dot sits on the line pixel at the square's right edge that belongs to the inside.
    b = size - size // 5
    x = next(x for x in range(b - 2, b + 3) if before.regions.line[120, x]
             and before.regions.labels[120, x] == before.regions.labels[120, 120])
    after = finish_panel(draft, lines, background=Background.COLOURED, shading=False,
                         hints=[(x + 0.5, 120.5, (0, 255, 0)), (500, 500, (1, 2, 3))])
    region = after.regions.labels == after.regions.labels[120, 120]
    assert (after.flats[region] == (0, 255, 0)).all()
    assert (after.flats[~region] == before.flats[~region]).all()


def test_later_hints_win():
    lines = ring_with_gap(120, gap=0)
    regions = segment(lines)
    colours = np.zeros((regions.n, 3), np.uint8)
    out = apply_hints(regions, colours, [(60, 60, (1, 1, 1)), (61, 61, (9, 9, 9))])
    assert tuple(out[regions.labels[60, 60]]) == (9, 9, 9)
    assert (colours == 0).all()  # the caller's array is not changed
    with pytest.raises(ValueError, match="three integers"):
        apply_hints(regions, colours, [(60, 60, (256, 0, 0))])


def test_apply_shading_is_the_multiply_blend():
    a, b = np.meshgrid(np.arange(256), np.arange(256))
    flats_ = np.dstack([a, b, 255 - a]).astype(np.uint8)
    layer = b.astype(np.uint8)
    out = apply_shading(flats_, layer).astype(np.int64)
    expected = np.floor(flats_.astype(np.int64) * layer[..., None] / 255 + 0.5)
    assert (out == expected).all()
    assert (apply_shading(flats_, np.full_like(layer, 255)) == flats_).all()


def test_shading_stays_inside_its_region_and_spares_paper():
    size = 240
    lines = ring_with_gap(size, gap=0)
    regions = segment(lines)
    inside, outside = regions.labels[120, 120], regions.labels[3, 3]
    draft = np.full((size, size, 3), (40, 90, 200), np.uint8)
    a, b = size // 5, size - size // 5
    ramp = np.linspace(1.0, 0.3, b - a)[None, :, None]  # the inside darkens to the right
    draft[a:b, a:b] = (np.array([200, 120, 80]) * ramp).astype(np.uint8)
    base = region_colours(regions, draft)
    layer = shading(regions, base, draft)
    assert layer[regions.labels == outside].min() == 255  # a flat region, and the dark ramp next door
    assert layer[120, b - 15] < 150 and layer[120, a + 15] == 255
    spared = shading(regions, base, cv2.resize(draft, (60, 60), interpolation=cv2.INTER_AREA),
                     skip=np.arange(regions.n) == inside)
    assert (spared[regions.labels == inside] == 255).all()


def test_a_thin_region_takes_no_shade_from_across_its_lines():
    lines = np.full((200, 200), 255, np.uint8)
    lines[:, 96] = lines[:, 104] = 0  # a strip 7 px wide: too thin to have an inside of its own
    regions = segment(lines)
    left, strip = regions.labels[100, 50], regions.labels[100, 100]
    assert len({left, strip, regions.labels[100, 150]}) == 3
    draft = np.full((50, 50, 3), 200, np.uint8)
    draft[:, :24] = 60  # the left region is dark all over, the strip and the right are flat
    base = np.full((regions.n, 3), 200, np.uint8)  # measured against a light base: the left is shaded
    layer = shading(regions, base, draft)
    assert layer[regions.labels == left].max() < 100
    assert (layer[regions.labels == strip] == 255).all()


def test_finish_panel_with_a_palette_uses_only_its_colours_and_seeds_vary():
    size = 240
    lines = np.full((size, size), 255, np.uint8)
    for x in range(20, size, 20):
        cv2.line(lines, (x, 0), (x, size), 0, 1)
    rng = np.random.default_rng(0)
    draft = np.repeat(np.repeat(rng.integers(40, 200, (1, 12, 3), dtype=np.uint8), 60, 0), 5, 1)
    pal = Palette.from_json([{"color": c} for c in ("#aa3030", "#30aa30", "#3030aa", "#a0a040", "#a040a0")])
    allowed = {tuple(c) for c in pal.colours} | {(255, 255, 255)}
    one = finish_panel(draft, lines, palette=pal, background=Background.COLOURED)
    assert {tuple(c) for c in one.flats.reshape(-1, 3)} <= allowed
    assert one.shading is not None and one.coloured.shape == (size, size, 3)
    seeded = [finish_panel(draft, lines, palette=pal, rng=np.random.default_rng(s), shading=False).flats
              for s in (1, 2, 1)]
    assert not np.array_equal(seeded[0], seeded[1]) and np.array_equal(seeded[0], seeded[2])
    assert np.array_equal(one.flats, finish_panel(draft, lines, palette=pal, background=Background.COLOURED).flats)
