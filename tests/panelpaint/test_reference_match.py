"""Reference matching: a reference that shows the same drawing gives its colours region by region,
another drawing gives nothing, and the page path, a seed and the worker hand-off treat it as they should."""
import cv2
import numpy as np
import pytest
from PIL import Image

from panelpaint import flats, reference_match
from panelpaint.colour import rgb_to_lab
from panelpaint.flats import Background, finish_panel, paint, segment
from panelpaint.pages import FinishOptions, Style, colour_image, render_page
from panelpaint.reference_match import Match, Reference, match, reference_lines
from tests.panelpaint.comic_pages import FakeColorizer
from tests.testkit import ROOT

# A held-out painting the weights never saw (samples/README.md): the reference.
PAINTING = np.asarray(Image.open(ROOT / "samples" / "style.png").convert("RGB"))


def augmented(rgb: np.ndarray, *, mirror: bool, angle: float = 12.0, zoom: float = 1.25) -> np.ndarray:
    """A copy as a studio's coloured version could differ: rotated, enlarged, mirrored, a little
    brighter and noisy (the kinds the evaluation's self-references get)."""
    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, zoom)
    m[:, 2] += (w * (zoom - 1) / 2, h * (zoom - 1) / 2)
    out = cv2.warpAffine(rgb, m, (round(w * zoom), round(h * zoom)), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=(255, 255, 255))
    if mirror:
        out = out[:, ::-1]
    noise = np.random.default_rng(0).normal(0, 3, out.shape)
    return np.clip(out.astype(np.float64) * 1.05 + noise, 0, 255).astype(np.uint8)


def wavy(rgb: np.ndarray, amplitude: float, period: float) -> np.ndarray:
    """A copy bent by a sine wave (a scan, a redrawn line): more than an affine map follows."""
    h, w = rgb.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(rgb, xs + amplitude * np.sin(2 * np.pi * ys / period),
                     ys + amplitude * np.sin(2 * np.pi * xs / period), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT)


def another_drawing() -> np.ndarray:
    """A coloured painting of a different drawing: the sample sketch (a bison) in flat colours."""
    sketch = np.asarray(Image.open(ROOT / "samples" / "sketch.png").convert("L"))
    regions = segment(sketch)
    colours = np.random.default_rng(3).integers(0, 256, (regions.n, 3)).astype(np.uint8)
    return paint(regions, colours)


@pytest.mark.parametrize("mirror", [False, True])
def test_an_augmented_copy_of_the_painting_matches_and_gives_its_colours(mirror):
    lines = reference_lines(PAINTING)
    got = match(lines, augmented(PAINTING, mirror=mirror))
    assert got is not None and got.mirrored is mirror
    # In the panel's frame (long side 512): the warped copy lies on the painting itself.
    truth = cv2.resize(PAINTING, got.image.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    assert got.valid.mean() > 0.6
    delta = np.linalg.norm(rgb_to_lab(got.image) - rgb_to_lab(truth), axis=-1)[got.valid]
    assert np.median(delta) < 6, np.median(delta)


def test_a_copy_bent_beyond_an_affine_map_matches_after_the_flow(monkeypatch):
    lines = reference_lines(PAINTING)
    bent = wavy(PAINTING, 10, 60)
    got = match(lines, bent)
    assert got is not None
    truth = cv2.resize(PAINTING, got.image.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    delta = np.linalg.norm(rgb_to_lab(got.image) - rgb_to_lab(truth), axis=-1)[got.valid]
    assert np.median(delta) < 6, np.median(delta)
    # The affine fit alone does not pass: it is the flow's test that accepts it.
    monkeypatch.setattr(reference_match, "MIN_FLOW_AGREEMENT", 2.0)
    assert match(lines, bent) is None


def test_another_drawing_or_blank_line_art_does_not_match():
    lines = reference_lines(PAINTING)
    assert match(lines, another_drawing()) is None
    assert match(np.full((200, 300), 255, np.uint8), PAINTING) is None
    assert match(lines[:5, :5], PAINTING) is None
    with pytest.raises(ValueError, match="RGB"):
        Reference.of(np.zeros((20, 20), np.uint8))


def test_a_reference_is_kept_at_most_its_side_and_prepared_once():
    big = cv2.resize(PAINTING, (2048, 1944))
    ref = Reference.of(big)
    assert max(ref.rgb.shape[:2]) == 1024
    assert ref.features is ref.features and max(ref.lines.shape) == 1024
    assert max(Reference.of(PAINTING).lines.shape) == 512  # a small one is brought up to the frame


def test_a_page_re_rendered_with_its_own_coloured_version_gets_it_back_in_every_panel():
    page = Image.open(ROOT / "samples" / "page.png")
    first = render_page(page, Style(Image.fromarray(PAINTING)), FakeColorizer(), work_size=96)
    # Another colour draft entirely (the fake colours by the style's mean): every panel's colours
    # must come from the matched page.
    again = render_page(page, Style(first.composite.convert("RGB")), FakeColorizer(), work_size=96)
    assert len(again.panels) == len(first.panels) >= 4
    a, b = (rgb_to_lab(np.asarray(r.flats.convert("RGB"))) for r in (first, again))
    delta = np.linalg.norm(a - b, axis=-1)
    for panel in again.panels:
        x, y, w, h = panel.bbox
        assert delta[y:y + h, x:x + w].mean() < 2, (panel.order, delta[y:y + h, x:x + w].mean())


def two_squares() -> np.ndarray:
    lines = np.full((240, 240), 255, np.uint8)
    cv2.rectangle(lines, (30, 60), (110, 180), 0, 2)
    cv2.rectangle(lines, (130, 60), (210, 180), 0, 2)
    return lines


def matched_image(shape, left, right, background, valid=None) -> Match:
    image = np.empty((*shape, 3), np.uint8)
    image[:] = background
    image[60:180, 30:110] = left
    image[60:180, 130:210] = right
    return Match(image, np.ones(shape, bool) if valid is None else valid, 1.0, 100, False)


def test_a_match_sets_the_regions_it_covers_and_the_draft_keeps_the_rest():
    lines = two_squares()
    draft = np.full((60, 60, 3), (40, 160, 40), np.uint8)
    valid = np.zeros((240, 240), bool)
    valid[:, :120] = True  # the reference shows only the left square
    m = matched_image((240, 240), (200, 30, 30), (30, 30, 200), (255, 255, 255), valid)
    out = finish_panel(draft, lines, matched=m, background=Background.COLOURED, shading=False)
    assert tuple(out.flats[120, 70]) == (200, 30, 30)  # the reference's colour, exactly
    assert tuple(out.flats[120, 170]) == (40, 160, 40)  # not covered: the draft's
    # The background the reference shows as paper stays exactly paper.
    assert tuple(out.flats[5, 5]) == (255, 255, 255)
    # Hints still win over the reference.
    hinted = finish_panel(draft, lines, matched=m, hints=[(70, 120, (0, 0, 0))], shading=False)
    assert tuple(hinted.flats[120, 70]) == (0, 0, 0)


def test_a_background_the_reference_shows_mixed_stays_paper():
    lines = two_squares()
    draft = np.full((60, 60, 3), (40, 160, 40), np.uint8)
    m = matched_image((240, 240), (200, 30, 30), (30, 30, 200), (255, 255, 255))
    m.image[:30] = (90, 10, 90)  # a border strip the reference shows as something else
    colours, covered, consistent = flats.reference_colours(segment(lines), m)
    regions = segment(lines)
    bg = regions.labels[5, 5]
    assert covered[bg] and not consistent[bg]
    out = finish_panel(draft, lines, matched=m, shading=False)
    assert tuple(out.flats[5, 5]) == (255, 255, 255)


def test_the_page_path_recovers_a_pages_own_coloured_version_and_a_seed_explores_instead():
    sketch = Image.fromarray(reference_lines(PAINTING), "L")
    style = Style(Image.fromarray(augmented(PAINTING, mirror=True)))
    fake = FakeColorizer()  # one flat colour per panel: all the detail must come from the match
    matched = colour_image(sketch, style, fake, work_size=128)
    plain = colour_image(sketch, style, fake, work_size=128, options=FinishOptions(match_reference=False))
    truth = rgb_to_lab(PAINTING)

    def delta(result) -> float:
        return float(np.linalg.norm(rgb_to_lab(np.asarray(result.composite)) - truth, axis=-1).mean())

    assert "matching" in matched.timings and "matching" not in plain.timings
    assert delta(matched) < 0.6 * delta(plain), (delta(matched), delta(plain))
    # A variant (a seed) samples the palette instead, and two seeds still differ.
    a = colour_image(sketch, style, fake, work_size=128, seed=1)
    b = colour_image(sketch, style, fake, work_size=128, seed=2)
    assert "matching" not in a.timings
    assert not np.array_equal(np.asarray(a.flats), np.asarray(b.flats))


def sign(symbol: str) -> np.ndarray:
    """A red road sign with a double black frame (repeated marks that ORB finds everywhere) and a
    white symbol: the kind of drawing whose own copies went unmatched before the fit was checked."""
    img = np.full((256, 256, 3), 255, np.uint8)
    cv2.rectangle(img, (8, 8), (247, 247), (0, 0, 0), 3)
    cv2.rectangle(img, (18, 18), (237, 237), (0, 0, 0), 3)
    cv2.rectangle(img, (21, 21), (234, 234), (220, 20, 20), -1)
    if symbol == "arrow":
        pts = np.array([[40, 128], [110, 58], [110, 98], [210, 98], [210, 158], [110, 158], [110, 198]], np.int32)
        cv2.fillPoly(img, [pts], (255, 255, 255))
        cv2.polylines(img, [pts], True, (0, 0, 0), 2)
    else:  # a ladder
        for x in (90, 166):
            cv2.rectangle(img, (x - 6, 45), (x + 6, 215), (255, 255, 255), -1)
        for y in range(70, 215, 35):
            cv2.rectangle(img, (90, y - 5), (166, y + 5), (255, 255, 255), -1)
    return img


def test_a_collapsed_or_squashed_fit_is_not_a_view_of_the_drawing():
    assert reference_match._plausible(cv2.getRotationMatrix2D((0, 0), 30, 0.5))
    assert reference_match._plausible(np.float64([[1.2, 0.1, 5], [0.0, 0.9, -3]]))
    assert not reference_match._plausible(np.float64([[0.02, 0.002, 330], [0.005, 0.0, 130]]))  # one spot
    assert not reference_match._plausible(np.float64([[2.0, 0, 0], [0, 0.5, 0]]))  # squashed 4x
    assert not reference_match._plausible(np.float64([[20.0, 0, 0], [0, 20.0, 0]]))


def test_a_signs_repeated_frame_does_not_collapse_the_fit():
    # Before each reference feature kept one panel feature, RANSAC mapped the whole sign onto one
    # spot of its bent copy (scales 0.46 and 0.001 with 32 "inliers").
    art = sign("arrow")
    panel, _ = reference_match._to_frame(reference_lines(art))
    found = reference_match._affine(panel, Reference.of(wavy(art, 6, 120)))
    assert found is not None
    scales = np.linalg.svd(found[0][:, :2], compute_uv=False)
    assert 0.8 < scales.min() <= scales.max() < 1.25, scales


@pytest.mark.parametrize("symbol", ["arrow", "ladder"])
def test_a_signs_own_bent_copy_gives_back_its_white_symbol(symbol):
    art = sign(symbol)
    lines = reference_lines(art)
    ref = augmented(wavy(art, 5, 160), mirror=False, angle=10.0, zoom=1.15)
    got = match(lines, ref)
    assert got is not None
    draft = np.full((64, 64, 3), (220, 20, 20), np.uint8)  # a network that paints the symbol red too
    out = finish_panel(draft, lines, matched=got, shading=False)
    inside = (128, 150) if symbol == "arrow" else (90, 130)  # (x, y) on the symbol
    assert tuple(out.flats[inside[1], inside[0]]) == (255, 255, 255)
    assert np.linalg.norm(rgb_to_lab(out.flats[60:61, 230:231]) - rgb_to_lab(art[60:61, 230:231])) < 15


def test_the_reference_is_trusted_only_near_lines_that_agree():
    panel = np.full((300, 400), 255, np.uint8)
    cv2.rectangle(panel, (20, 20), (100, 280), 0, 2)  # the one drawing, on the left
    warped = panel.copy()
    trusted = reference_match._trusted(panel, warped)
    assert trusted[150, 60] and trusted[150, 140]  # inside it and beside it (40 px from its lines)
    # Far from any line that agrees, nothing checks the alignment: not trusted (was, when the
    # window there simply held no lines).
    assert not trusted[150, 350]
    assert not reference_match._trusted(panel, np.full_like(panel, 255))[150, 60]


def test_a_sliver_of_the_reference_along_a_line_does_not_colour_a_region():
    lines = np.full((240, 240), 255, np.uint8)
    cv2.rectangle(lines, (100, 40), (130, 200), 0, 2)  # a narrow region, 27 px inside
    image = np.full((240, 240, 3), (200, 30, 30), np.uint8)
    sliver = np.zeros((240, 240), bool)
    sliver[:, 103:107] = True  # 4 px along its left line: 15% of its samples, all at the edge
    band = np.zeros((240, 240), bool)
    band[:, 103:116] = True  # half of it
    regions = segment(lines)
    inside = regions.labels[120, 115]
    _, covered, _ = flats.reference_colours(regions, Match(image, sliver, 1.0, 100, False))
    assert not covered[inside]
    colours, covered, _ = flats.reference_colours(regions, Match(image, band, 1.0, 100, False))
    assert covered[inside] and tuple(colours[inside]) == (200, 30, 30)


def test_chance_shifts_the_lines_diagonally_so_straight_frames_do_not_agree_with_themselves():
    # A sign's nested square frames: shifted sideways, the horizontal sides still lie on themselves
    # (the old sideways shift scored such a sign's true alignment as chance).
    panel = np.full((300, 300), 255, np.uint8)
    for inset in (20, 40):
        cv2.rectangle(panel, (inset, inset), (299 - inset, 299 - inset), 0, 2)
    score = reference_match._scorer(panel, np.ones(panel.shape, bool))
    sideways = cv2.warpAffine(panel, np.float32([[1, 0, 16], [0, 1, 0]]), (300, 300), borderValue=255)
    assert score(panel) > 0.99 and score(sideways) > 0.4  # what the old test compared with
    assert reference_match._chance(score, panel) < 0.25


def cut_corner(*, figure_at_the_bottom: bool = False) -> np.ndarray:
    """A square in the middle and a line that cuts the top right corner off the background (as a
    house's roof cuts off the sky beside it); optionally a figure standing on the bottom edge."""
    lines = np.full((240, 240), 255, np.uint8)
    cv2.rectangle(lines, (80, 80), (150, 150), 0, 2)
    cv2.line(lines, (170, 0), (239, 70), 0, 2)
    if figure_at_the_bottom:
        cv2.rectangle(lines, (100, 190), (140, 245), 0, 2)
    return lines


def test_a_corner_the_reference_alone_shows_is_not_coloured_without_the_background():
    lines = cut_corner()
    regions = segment(lines)
    corner, background = regions.labels[5, 235], regions.labels[200, 20]
    valid = np.zeros(lines.shape, bool)
    valid[:40, 200:] = True  # a warped reference shows the corner only, in the figure's red
    m = Match(np.full((240, 240, 3), (200, 30, 30), np.uint8), valid, 1.0, 100, False)
    _, covered, consistent = flats.reference_colours(regions, m)
    assert covered[corner] and consistent[corner] and not covered[background]
    draft = np.full((60, 60, 3), 255, np.uint8)  # the network leaves the paper white
    out = finish_panel(draft, lines, matched=m, shading=False)
    assert tuple(out.flats[5, 235]) == (255, 255, 255)
    # Where the reference shows the background in colour, the corner follows it (as before).
    m.valid[120:, :70] = True
    coloured = finish_panel(draft, lines, matched=m, shading=False)
    assert tuple(coloured.flats[5, 235]) == (200, 30, 30)


def test_edge_share_is_the_part_of_a_regions_outline_on_the_crops_edge():
    regions = segment(cut_corner())
    share = flats.edge_share(regions)
    assert share[regions.labels[120, 115]] == 0  # the square inside
    assert 0.4 < share[regions.labels[5, 235]] < 0.65  # two legs of three on the edge


@pytest.mark.parametrize("case", ["light piece", "dark piece", "figure on the edge"])
def test_a_light_edge_piece_the_reference_does_not_show_is_its_paper(case):
    lines = cut_corner(figure_at_the_bottom=case == "figure on the edge")
    draft = np.full((60, 60, 3), 255, np.uint8)
    light, dark = (120, 160, 230), (60, 30, 20)
    piece = (5, 235) if case != "figure on the edge" else (230, 120)  # (y, x)
    draft[piece[0] // 4, piece[1] // 4] = dark if case == "dark piece" else light
    draft[:17, 50:] = draft[piece[0] // 4, piece[1] // 4] if case != "figure on the edge" else 255
    if case == "figure on the edge":
        draft[48:, 25:35] = light
    valid = np.zeros(lines.shape, bool)
    valid[60:200, :70] = True  # the reference shows the background, as paper, and not the piece
    m = Match(np.full((240, 240, 3), 250, np.uint8), valid, 1.0, 100, False)
    out = finish_panel(draft, lines, matched=m, shading=False)
    got = tuple(out.flats[piece])
    if case == "light piece":
        assert got == (255, 255, 255)
    else:  # a dark piece, and a figure meeting the edge along a short stretch of its outline, keep their colour
        assert got != (255, 255, 255)
        assert tuple(finish_panel(draft, lines, shading=False).flats[piece]) == got


def test_a_near_paper_tint_of_the_reference_leaves_draft_paper_white():
    lines = two_squares()
    tint = (248, 238, 212)  # L 94, chroma 13.8: between the paper threshold (12) and 15
    lab = rgb_to_lab(np.array([[tint]], np.uint8))[0, 0]
    assert 12 <= np.hypot(lab[1], lab[2]) < flats.NEAR_PAPER_CHROMA
    m = matched_image((240, 240), tint, (236, 222, 190), (255, 255, 255))  # right: chroma > 15
    white = np.full((60, 60, 3), 255, np.uint8)
    out = finish_panel(white, lines, matched=m, shading=False)
    assert tuple(out.flats[120, 70]) == (255, 255, 255)
    assert tuple(out.flats[120, 170]) == (236, 222, 190)  # a real tint still comes through
    # Where the draft is not paper, the reference's tint wins as any colour does.
    green = np.full((60, 60, 3), (40, 160, 40), np.uint8)
    assert tuple(finish_panel(green, lines, matched=m, shading=False).flats[120, 70]) == tint
