"""Discriminators of the paper: an AC-GAN one that also regresses the style vector (eq. 3) and a DCGAN one (eq. 4).

Both take paintings [B, in_channels, H, W] in [-1, 1] (in_channels > 3 lets a trainer condition on
the sketch by concatenation, pix2pix style). Any H, W that survive `len(widths)` halvings work.
No BatchNorm: GAN training on CPU uses batches of a few images, where batch statistics are noise
and leak information between real and fake batches; GroupNorm after the first layer instead.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from models.style_encoders import STYLE_DIM


def conv_trunk(in_channels: int, widths: tuple[int, ...], groups: int = 8) -> nn.Sequential:
    layers: list[nn.Module] = []
    c_in = in_channels
    for i, c in enumerate(widths):
        layers.append(nn.Conv2d(c_in, c, 4, stride=2, padding=1))
        if i > 0:
            layers.append(nn.GroupNorm(min(groups, c), c))
        layers.append(nn.LeakyReLU(0.2))
        c_in = c
    return nn.Sequential(*layers)


class ACGANDiscriminator(nn.Module):
    """PatchGAN real/fake logits plus a 4096-output head (global pooled) for the style vector.

    forward -> (logits [B,1,h,w], style [B,4096]). Trained to output the style vector V(y) of
    real paintings and 0 for generated ones (eq. 3 of the paper).
    """

    def __init__(self, in_channels: int = 3, widths: tuple[int, ...] = (64, 128, 256, 512),
                 style_dim: int = STYLE_DIM):
        super().__init__()
        self.config = {"in_channels": in_channels, "widths": list(widths), "style_dim": style_dim}
        self.trunk = conv_trunk(in_channels, tuple(widths))
        self.patch = nn.Conv2d(widths[-1], 1, 3, padding=1)
        self.style = nn.Linear(2 * widths[-1], style_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(x)
        pooled = torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1)
        return self.patch(h), self.style(pooled)


class DCGANDiscriminator(nn.Module):
    """Strided convolutions down to one real/fake logit per image (eq. 4). forward -> [B]."""

    def __init__(self, in_channels: int = 3, widths: tuple[int, ...] = (64, 128, 256, 512)):
        super().__init__()
        self.config = {"in_channels": in_channels, "widths": list(widths)}
        self.trunk = conv_trunk(in_channels, tuple(widths))
        self.head = nn.Linear(widths[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.adaptive_avg_pool2d(self.trunk(x), 1).flatten(1)).squeeze(1)
