"""Line extraction and line-art clean-up: convention (1 = paper, 0 = ink), robustness to scans."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from models.lines import extract_lines, gaussian_blur, normalize_lineart, to_gray


def painting() -> np.ndarray:
    im = Image.new("RGB", (160, 120), (250, 240, 220))
    d = ImageDraw.Draw(im)
    d.rectangle([20, 20, 70, 70], fill=(200, 60, 60))
    d.line([10, 100, 150, 100], fill=(0, 0, 0), width=1)
    return np.asarray(im)


def scan(rng: np.random.Generator) -> np.ndarray:
    """Ink and pencil strokes on yellowish, unevenly lit paper with sensor noise."""
    ink = np.ones((120, 200), np.float32)
    ink[40:42, 10:190] = 0.1
    ink[10:110, 100] = 0.45  # pencil
    light = np.linspace(0.72, 0.95, 200)[None, :] * np.ones((120, 1))
    g = np.clip(ink * light + rng.normal(0, 0.02, ink.shape), 0, 1)
    rgb = np.stack([g, g * 0.97, g * 0.88], -1)
    return (rgb * 255).astype(np.uint8)


@pytest.mark.parametrize("method", ["xdog", "dilate"])
def test_lines_on_painting(method):
    out = extract_lines(painting(), method)
    assert out.dtype == np.float32 and out.shape == (120, 160)
    assert out.min() >= 0 and out.max() <= 1
    assert out[5:15, 100:150].min() == pytest.approx(1.0, abs=1e-3)  # flat paper stays white
    assert out[40:50, 40:50].min() > 0.95  # flat colour interior is not a line
    assert out[98:103, 60].min() < 0.2  # the drawn line is ink
    assert out[18:23, 45].min() < 0.5  # the colour edge becomes a line


@pytest.mark.parametrize("method", ["xdog", "dilate"])
def test_lines_on_noisy_offwhite_scan(method):
    out = extract_lines(scan(np.random.default_rng(0)), method)
    paper = np.concatenate([out[60:110, 5:90].ravel(), out[60:110, 110:195].ravel()])
    assert (paper > 0.9).mean() > 0.97  # noise and tint are not lines
    assert out[39:43, 50].min() < 0.2
    assert out[60, 99:102].min() < 0.5  # faint pencil still found


def test_threshold_and_thickness():
    a = extract_lines(painting(), "xdog", threshold=0.5)
    assert set(np.unique(a)) <= {0.0, 1.0}
    thick = extract_lines(painting(), "xdog", threshold=0.5, thickness=3)
    assert (thick == 0).sum() > (a == 0).sum()


def test_normalize_lineart_scan():
    out = normalize_lineart(scan(np.random.default_rng(1)))
    assert out.dtype == np.float32
    assert (out[60:110, 5:90] == 1.0).mean() > 0.95  # paper becomes exactly white
    assert (out[60:110, 150:195] == 1.0).mean() > 0.95  # also where lighting differs
    assert out[40, 50] < 0.1  # ink becomes black
    assert 0.1 < out[60, 100] < 0.8  # pencil is kept, as grey


def test_normalize_keeps_thin_lines_and_blank_pages():
    a = np.full((50, 50), 255, np.uint8)
    a[25, 5:45] = 0
    out = normalize_lineart(a)
    assert out[25, 10] == 0.0 and out[10, 10] == 1.0
    blank = normalize_lineart(np.full((40, 40), 230, np.uint8))
    assert blank.min() == 1.0


def test_to_gray_inputs():
    assert to_gray(np.zeros((4, 4, 4), np.uint8)).max() == 1.0  # transparent = paper
    assert to_gray(np.full((2, 2), 65535, np.uint16)).min() == 1.0
    with pytest.raises(ValueError):
        to_gray(np.zeros((0, 3)))
    with pytest.raises(ValueError):
        extract_lines(painting(), "canny")
    assert normalize_lineart(np.zeros((1, 1), np.uint8)).shape == (1, 1)


def test_gaussian_blur_preserves_mean_and_smooths():
    a = np.zeros((21, 21), np.float32)
    a[10, 10] = 1
    b = gaussian_blur(a, 2.0)
    assert b.sum() == pytest.approx(1.0, rel=1e-4) and b[10, 10] < 0.1


def jpeg(a: np.ndarray, quality: int) -> np.ndarray:
    import io

    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf))


@pytest.mark.parametrize("method", ["xdog", "dilate"])
def test_jpeg_artefacts_are_not_lines(method):
    out = extract_lines(jpeg(painting(), 40), method)
    assert out[5:15, 100:150].min() > 0.9 and out[40:50, 40:50].min() > 0.9  # ringing stays paper
    assert out[98:103, 60].min() < 0.2
    cleaned = normalize_lineart(jpeg(scan(np.random.default_rng(2)), 50))
    assert (cleaned[60:110, 5:90] == 1.0).mean() > 0.95
    assert cleaned[40, 50] < 0.15
