"""Palette-transfer baseline: the reference's colours ranked onto the sketch's regions by area, a
blind bucket fill and the bar the network must beat (docs/quality.md)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def label_regions(paper: torch.Tensor, max_iter: int | None = None) -> torch.Tensor:
    """Connected components (8-neighbourhood) of a boolean [H,W] mask; 0 = not paper, else a label."""
    h, w = paper.shape
    idx = torch.arange(1, h * w + 1, dtype=torch.float32).reshape(h, w)
    labels = torch.where(paper, idx, torch.zeros_like(idx))
    mask = paper.float()
    for _ in range(max_iter or h * w):
        grown = F.max_pool2d(labels[None, None], 3, stride=1, padding=1)[0, 0] * mask
        if torch.equal(grown, labels):
            break
        labels = grown
    return labels.long()


def reference_palette(reference: torch.Tensor, bits: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """[3,H,W] in [0,1] -> (colours [K,3] mean of each quantisation bin, weights [K]), most frequent first."""
    pix = reference.reshape(3, -1).T.clamp(0, 1)
    levels = 2 ** bits
    q = (pix * (levels - 1e-4)).long()
    keys = (q[:, 0] * levels + q[:, 1]) * levels + q[:, 2]
    counts = torch.bincount(keys, minlength=levels ** 3).float()
    sums = torch.zeros(levels ** 3, 3).index_add_(0, keys, pix)
    used = counts > 0
    colours, weights = sums[used] / counts[used, None], counts[used] / counts.sum()
    order = torch.argsort(weights, descending=True)
    return colours[order], weights[order]


def palette_transfer(sketch: torch.Tensor, reference: torch.Tensor, paper_level: float = 0.5,
                     labels: torch.Tensor | None = None) -> torch.Tensor:
    """sketch [1,H,W] line map in [0,1], reference [3,h,w] in [0,1] -> colour image [3,H,W] in [0,1].

    `labels` may pass in `label_regions(sketch[0] > paper_level)` when one sketch is coloured many times.
    """
    lines = sketch[0].float()
    if labels is None:
        labels = label_regions(lines > paper_level)
    colours, weights = reference_palette(reference.float())
    cum = torch.cumsum(weights, 0)
    ids, areas = torch.unique(labels[labels > 0], return_counts=True)
    out = torch.ones(3, *lines.shape)
    if len(ids):
        order = torch.argsort(areas, descending=True)
        frac = areas[order].float() / areas.sum()
        mids = torch.cumsum(frac, 0) - frac / 2
        rank = torch.searchsorted(cum, mids).clamp(max=len(colours) - 1)
        lut = torch.ones(int(labels.max()) + 1, 3)
        lut[ids[order]] = colours[rank]
        out = lut[labels].permute(2, 0, 1)  # label 0 (ink) stays white; the lines darken it below
    return (out * lines[None]).clamp(0, 1)
