"""Discriminator heads and every loss term with its weight, on known values."""
from __future__ import annotations

import math

import pytest
import torch

from models.discriminators import ACGANDiscriminator, DCGANDiscriminator
from models.losses import (acgan_d_loss, acgan_g_loss, dcgan_d_loss, dcgan_g_loss, generator_loss,
                           guided_l1_loss, luminance)

torch.set_num_threads(1)


def test_acgan_discriminator_has_4096_outputs():
    d = ACGANDiscriminator(widths=(8, 16, 32))
    logits, style = d(torch.rand(2, 3, 32, 48) * 2 - 1)
    assert style.shape == (2, 4096)
    assert logits.shape == (2, 1, 4, 6)
    cond = ACGANDiscriminator(in_channels=4, widths=(8, 16))
    assert cond(torch.zeros(1, 4, 16, 16))[1].shape == (1, 4096)


def test_dcgan_discriminator_one_logit_per_image():
    d = DCGANDiscriminator(widths=(8, 16, 32))
    assert d(torch.rand(3, 3, 64, 40)).shape == (3,)


def test_luminance_formula():
    rgb = torch.tensor([1.0, 0.0, -1.0]).view(1, 3, 1, 1)
    assert luminance(rgb).item() == pytest.approx(0.299 - 0.114)
    assert luminance(torch.ones(1, 3, 2, 2)).allclose(torch.ones(1, 1, 2, 2))


def test_guided_l1_terms_and_weights():
    target = torch.zeros(1, 3, 2, 2)
    out = torch.full((1, 3, 2, 2), 0.5)     # L1 0.5
    g1 = torch.full((1, 1, 2, 2), -0.25)    # L1 against T(0) = 0.25
    g2 = torch.full((1, 3, 2, 2), 1.0)      # L1 1.0
    total, t = guided_l1_loss(out, g1, g2, target)
    assert t["l1_out"].item() == pytest.approx(0.5)
    assert t["l1_guide1"].item() == pytest.approx(0.25)
    assert t["l1_guide2"].item() == pytest.approx(1.0)
    assert total.item() == pytest.approx(0.5 + 0.3 * 0.25 + 0.9 * 1.0)
    total2, _ = guided_l1_loss(out, g1, g2, target, alpha=1.0, beta=0.0)
    assert total2.item() == pytest.approx(0.75)
    # guide 1 is compared with the GRAYSCALE target: a gray guide matching T(y) costs nothing.
    target = torch.tensor([0.2, -0.4, 0.6]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    _, t = guided_l1_loss(target, luminance(target), target, target)
    assert t["l1_guide1"].item() == pytest.approx(0.0, abs=1e-7)


def test_dcgan_terms():
    zero = torch.zeros(4)  # D = sigmoid(0) = 0.5 everywhere
    total, t = dcgan_d_loss(zero, zero)
    assert t["d_real"].item() == pytest.approx(math.log(2)) and total.item() == pytest.approx(2 * math.log(2))
    big = torch.full((4,), 20.0)
    assert dcgan_d_loss(big, -big)[0].item() < 1e-6  # a perfect discriminator
    g, t = dcgan_g_loss(-big)
    assert g.item() == pytest.approx(20.0, rel=1e-3)  # non-saturating: -log sigmoid(-20)


def test_acgan_terms():
    logits = torch.zeros(2, 1, 3, 3)
    style = torch.full((2, 4096), 2.0)
    real_out = (logits, torch.full((2, 4096), 1.0))  # regression error 1 -> MSE 1
    fake_out = (logits, torch.full((2, 4096), 3.0))  # should be 0 -> MSE 9
    total, t = acgan_d_loss(real_out, fake_out, style, aux_weight=0.5)
    assert t["aux_real"].item() == pytest.approx(1.0)
    assert t["aux_fake"].item() == pytest.approx(9.0)
    assert total.item() == pytest.approx(2 * math.log(2) + 0.5 * 10.0)
    g, t = acgan_g_loss(fake_out, style, aux_weight=2.0)
    assert t["g_aux"].item() == pytest.approx(1.0)  # the generator wants V(y) read from its output
    assert g.item() == pytest.approx(math.log(2) + 2.0)


def test_eq5_combination_and_gradients():
    l1 = torch.tensor(0.8, requires_grad=True)
    gan = torch.tensor(3.0, requires_grad=True)
    total, t = generator_loss(l1, gan, lam=0.1)
    assert total.item() == pytest.approx(1.1) and t["gan"].item() == 3.0
    total.backward()
    assert gan.grad.item() == pytest.approx(0.1) and l1.grad.item() == 1.0
    assert not t["total"].requires_grad  # logged terms are detached


def test_colour_distribution_loss_rewards_the_truths_saturation_wherever_pixels_sit():
    from models.losses import colour_distribution_loss

    torch.manual_seed(0)
    truth = torch.rand(2, 3, 16, 16) * 2 - 1
    shuffled = truth.flatten(2)[:, :, torch.randperm(256)].reshape(2, 3, 16, 16)
    grey = truth.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1).clone().requires_grad_(True)
    same, terms = colour_distribution_loss(shuffled, truth)
    washed, _ = colour_distribution_loss(grey, truth)
    assert same.item() < 1e-4 and set(terms) == {"colour", "total"}
    assert washed.item() > 0.2
    washed.backward()
    assert grey.grad is not None and grey.grad.abs().sum() > 0
