"""Evaluation metrics give known values on constructed inputs; the palette baseline colours regions."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from generated_art import paint_folder
from models.data import list_images
from models.evaluate import (ab_histogram, build_eval_set, chi2, evaluate_method, follows, palette_method, psnr,
                             rgb_to_lab, sample_grid, sketch_method, ssim)
from models.palette import label_regions, palette_transfer, reference_palette

torch.set_num_threads(1)


def solid(rgb, h=16, w=16):
    return torch.tensor(rgb, dtype=torch.float32).view(1, 3, 1, 1).expand(1, 3, h, w).clone()


def test_lab_of_known_colours():
    white = rgb_to_lab(solid([1, 1, 1]))[0, :, 0, 0]
    assert torch.allclose(white, torch.tensor([100.0, 0.0, 0.0]), atol=0.05)
    red = rgb_to_lab(solid([1, 0, 0]))[0, :, 0, 0]
    # sRGB red is L*=53.24, a*=80.09, b*=67.20
    assert torch.allclose(red, torch.tensor([53.24, 80.09, 67.20]), atol=0.1)


def test_histogram_distance_zero_for_identical_and_one_for_disjoint():
    img = torch.rand(2, 3, 24, 24)
    h = ab_histogram(img)
    assert torch.allclose(h.sum(1), torch.ones(2))
    assert torch.allclose(chi2(h, ab_histogram(img.clone())), torch.zeros(2))
    # the same pixels in another order have the same colour distribution
    shuffled = img.flatten(2)[:, :, torch.randperm(24 * 24)].reshape(2, 3, 24, 24)
    assert torch.allclose(chi2(h, ab_histogram(shuffled)), torch.zeros(2), atol=1e-6)
    red, blue = ab_histogram(solid([1, 0, 0]), smooth=0), ab_histogram(solid([0, 0, 1]), smooth=0)
    assert chi2(red, blue).item() == pytest.approx(1.0)
    # smoothing keeps far colours disjoint but makes near ones overlap
    assert chi2(ab_histogram(solid([1, 0, 0])), ab_histogram(solid([0, 0, 1]))).item() == pytest.approx(1.0)
    near = chi2(ab_histogram(solid([0.9, 0.1, 0.1])), ab_histogram(solid([0.8, 0.2, 0.15]))).item()
    assert 0 < near < 0.9


def test_following_rate_on_constructed_outputs():
    red, blue = solid([0.9, 0.1, 0.1]), solid([0.1, 0.2, 0.9])
    reddish = solid([0.8, 0.2, 0.15])
    assert follows(reddish, red, blue).item() is True
    assert follows(reddish, blue, red).item() is False


def test_psnr_of_known_noise_and_ssim_of_identical():
    x = torch.rand(3, 3, 32, 32) * 0.8
    assert torch.allclose(psnr(x, x + 0.1), torch.full((3,), 20.0), atol=1e-3)  # MSE 0.01 -> 20 dB
    noise = torch.randn(3, 3, 32, 32).clamp(-3, 3) * 0.05
    expected = 10 * torch.log10(1 / (noise ** 2).flatten(1).mean(1))
    assert torch.allclose(psnr(x, x + noise), expected, atol=1e-3)
    assert torch.allclose(ssim(x, x), torch.ones(3), atol=1e-5)
    assert (ssim(x, (x + noise).clamp(0, 1)) < 0.99).all()
    assert (ssim(x, torch.rand_like(x)) < 0.2).all()


def test_label_regions_counts_enclosed_areas():
    paper = torch.ones(20, 20, dtype=torch.bool)
    paper[:, 10] = False  # one vertical line: two regions
    labels = label_regions(paper)
    assert len(labels[labels > 0].unique()) == 2 and (labels[:, 10] == 0).all()


def test_palette_transfer_gives_the_biggest_region_the_commonest_colour():
    sketch = torch.ones(1, 20, 20)
    sketch[0, :, 14] = 0.0  # region left: 14 columns, right: 5 columns
    ref = torch.zeros(3, 10, 10)
    ref[0, :, :7] = 1.0  # 70% red
    ref[2, :, 7:] = 1.0  # 30% blue
    colours, weights = reference_palette(ref)
    assert torch.allclose(weights, torch.tensor([0.7, 0.3]))
    out = palette_transfer(sketch, ref)
    assert torch.allclose(out[:, 5, 3], torch.tensor([1.0, 0.0, 0.0]))
    assert torch.allclose(out[:, 5, 17], torch.tensor([0.0, 0.0, 1.0]))
    assert out[:, :, 14].max() == 0  # lines stay black


def test_evaluation_of_methods_with_known_behaviour(tmp_path):
    files = list_images([paint_folder(tmp_path / "val", 8)])
    items = build_eval_set(files, size=32, pairs=2)
    assert len(items) == 16
    # a "method" that returns its reference follows it perfectly
    copy = evaluate_method(lambda sk, ref: ref, items)
    assert copy["reference_following_rate"] == 1.0 and copy["trials"] == 32
    # the sketch alone has no colour: it cannot follow anything better than the neutral-share lottery
    sk = evaluate_method(sketch_method, items)
    assert sk["reference_following_rate"] < 0.9
    pal = evaluate_method(palette_method, items)
    assert pal["reference_following_rate"] > sk["reference_following_rate"]
    assert 0 < pal["ssim"] <= 1 and math.isfinite(pal["psnr"])
    grid = sample_grid(lambda sk, ref: ref, items[:3])
    assert grid.size == (5 * 32, 3 * 32)
    assert np.asarray(grid).std() > 0
