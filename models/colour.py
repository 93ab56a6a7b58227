"""Colour spaces and colour statistics shared by the losses and the evaluation (torch, differentiable)."""
from __future__ import annotations

import torch


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB [...,3,H,W] in [0,1] -> CIE Lab (D65): L in [0,100], a and b roughly [-110,110]."""
    c = rgb.clamp(0, 1).float()
    lin = torch.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    m = torch.tensor([[0.4124564, 0.3575761, 0.1804375],
                      [0.2126729, 0.7151522, 0.0721750],
                      [0.0193339, 0.1191920, 0.9503041]], dtype=lin.dtype)
    xyz = torch.einsum("ij,...jhw->...ihw", m, lin)
    white = torch.tensor([0.95047, 1.0, 1.08883], dtype=lin.dtype).reshape(3, 1, 1)
    t = xyz / white
    f = torch.where(t > (6 / 29) ** 3, t.clamp(min=1e-12) ** (1 / 3), t / (3 * (6 / 29) ** 2) + 4 / 29)
    fx, fy, fz = f.unbind(-3)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=-3)


def soft_ab_histogram(rgb: torch.Tensor, bins: int = 16, limit: float = 100.0, width: float = 1.0) -> torch.Tensor:
    """[B,3,H,W] in [0,1] -> [B, bins*bins] normalised a*b* histogram with soft (Gaussian) bin votes.

    Unlike a counted histogram it has a gradient, so a loss can pull an output's colour
    distribution (its saturation and hues) towards the truth's wherever the pixels sit.
    """
    lab = rgb_to_lab(rgb)
    centres = (torch.arange(bins, dtype=lab.dtype, device=lab.device) + 0.5) * (2 * limit / bins) - limit
    step = 2 * limit / bins
    a, b = lab[:, 1].flatten(1), lab[:, 2].flatten(1)                     # [B, N]
    wa = torch.softmax(-((a[..., None] - centres) / (width * step)) ** 2, dim=-1)  # [B, N, bins]
    wb = torch.softmax(-((b[..., None] - centres) / (width * step)) ** 2, dim=-1)
    hist = torch.einsum("bni,bnj->bij", wa, wb).flatten(1)
    return hist / hist.sum(dim=1, keepdim=True)
