"""Line-aware upsampling keeps colours on their side of the lines; compositing keeps lines and gutters exact."""
import cv2
import numpy as np

from panelpaint.composite import multiply, normalize_lines, paste_panel, upsample_colors


def two_colour_scene(size=600, scale=3):
    """Native line art (a cross of 3 px lines) and truth colours; the model output is a blurred small copy."""
    lines = np.full((size, size), 255, np.uint8)
    lines[:, size // 2 - 1:size // 2 + 2] = 0
    lines[size // 3 - 1:size // 3 + 2, :] = 0
    truth = np.zeros((size, size, 3), np.uint8)
    truth[:, : size // 2] = (220, 40, 40)
    truth[:, size // 2:] = (40, 40, 220)
    truth[: size // 3] = (40, 200, 40)
    # The network draws its own soft, dark lines too, which must not reach the flats.
    model = cv2.GaussianBlur(truth, (0, 0), scale)
    model = (model.astype(np.float32) * (cv2.GaussianBlur(lines, (0, 0), scale)[..., None] / 255.0)).astype(np.uint8)
    small = cv2.resize(model, (size // scale, size // scale), interpolation=cv2.INTER_AREA)
    return lines, truth, small


def near_line_error(out, truth, lines, width=12):
    paper = lines >= 160
    near = (cv2.distanceTransform(paper.astype(np.uint8), cv2.DIST_L2, 3) < width) & paper
    return np.abs(out.astype(float) - truth)[near].mean()


def test_region_upsampling_bleeds_far_less_than_bicubic():
    lines, truth, small = two_colour_scene()
    bicubic = near_line_error(cv2.resize(small, lines.shape[::-1], interpolation=cv2.INTER_CUBIC), truth, lines)
    regions = near_line_error(upsample_colors(small, lines), truth, lines)
    assert regions < bicubic / 3, (regions, bicubic)
    assert regions < 5


def test_flats_carry_no_model_lines():
    lines, truth, small = two_colour_scene()
    out = upsample_colors(small, lines).astype(float)
    # Paper right next to the line keeps its region's colour instead of the network's dark line.
    row = 450
    assert np.abs(out[row, 290:298] - truth[row, 290:298]).max() < 20
    assert np.abs(out[row, 303:310] - truth[row, 303:310]).max() < 20
    # The line pixels take a neighbouring region's colour, not black.
    assert out[row, 299:302].min() > 30


def test_far_from_lines_the_model_colours_are_kept():
    lines = np.full((300, 300), 255, np.uint8)
    small = np.zeros((100, 100, 3), np.uint8)
    small[..., 0] = np.linspace(0, 255, 100)[None, :].astype(np.uint8)  # a gradient, no lines at all
    out = upsample_colors(small, lines)
    ref = cv2.resize(small, (300, 300), interpolation=cv2.INTER_CUBIC)
    assert np.abs(out[50:250, 50:250].astype(int) - ref[50:250, 50:250]).max() <= 3


def test_output_size_follows_the_line_art_and_bad_method_fails():
    out = upsample_colors(np.zeros((64, 48, 3), np.uint8), np.full((200, 150), 255, np.uint8))
    assert out.shape == (200, 150, 3) and out.dtype == np.uint8
    all_ink = upsample_colors(np.full((8, 8, 3), 7, np.uint8), np.zeros((16, 16), np.uint8))
    assert all_ink.shape == (16, 16, 3)


def test_multiply_keeps_black_lines_exact_and_white_paper_transparent():
    colours = np.random.default_rng(1).integers(0, 256, (50, 50, 3), dtype=np.uint8)
    lines = np.random.default_rng(2).choice([0, 255, 128], size=(50, 50)).astype(np.uint8)
    out = multiply(colours, lines)
    assert (out[lines == 0] == 0).all()
    assert (out[lines == 255] == colours[lines == 255]).all()
    mid = lines == 128
    assert np.abs(out[mid].astype(int) - colours[mid].astype(int) * 128 / 255).max() <= 1


def test_paste_panel_only_inside_mask():
    flats = np.full((20, 20, 3), 255, np.uint8)
    mask = np.zeros((10, 10), np.uint8)
    mask[2:8, 2:8] = 255
    paste_panel(flats, np.zeros((10, 10, 3), np.uint8), mask, (5, 5))
    assert (flats[7:13, 7:13] == 0).all()
    assert flats.sum() == 255 * 3 * (400 - 36)


def test_normalize_lines_stretches_grey_paper_and_ink():
    scan = np.full((50, 50), 220, np.uint8)
    scan[20:30, :] = 60
    out = normalize_lines(scan)
    assert out[0, 0] == 255 and out[25, 0] == 0
    assert (normalize_lines(np.full((10, 10), 240, np.uint8)) == 255).all()
