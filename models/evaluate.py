"""Held-out evaluation: reference-following rate, PSNR and SSIM, for the model and the baselines;
deterministic for a given file list (the measures: docs/quality.md). A "method" is any function
(sketch [B,1,H,W], reference [B,3,H,W]) -> colour [B,3,H,W], all in [0,1]."""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from models.colour import rgb_to_lab
from models.data import PairConfig, augment_reference, fit_square, load_rgb, to_tensor
from models.lines import extract_lines
from models.palette import label_regions, palette_transfer

Method = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# ----------------------------------------------------------------------------- colour metrics

def ab_histogram(rgb: torch.Tensor, bins: int = 16, limit: float = 100.0, smooth: float = 1.0) -> torch.Tensor:
    """[B,3,H,W] in [0,1] -> [B, bins*bins] normalised histogram of (a*, b*), clipped to +-limit.

    The histogram is blurred by a Gaussian of `smooth` bins, so that nearly equal colours on two
    sides of a bin edge still count as similar (hard bins would call them as different as red and blue).
    """
    lab = rgb_to_lab(rgb)
    ab = ((lab[:, 1:].clamp(-limit, limit - 1e-3) + limit) / (2 * limit) * bins).long()
    keys = (ab[:, 0] * bins + ab[:, 1]).flatten(1)
    hist = torch.zeros(keys.shape[0], bins * bins).scatter_add_(1, keys, torch.ones_like(keys, dtype=torch.float32))
    if smooth > 0:
        r = max(1, int(math.ceil(2 * smooth)))
        g = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=torch.float32) / smooth) ** 2)
        k = (g[:, None] * g[None, :])[None, None]
        hist = F.conv2d(hist.view(-1, 1, bins, bins), k / k.sum(), padding=r).flatten(1)
    return hist / hist.sum(dim=1, keepdim=True)


def chi2(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Chi-squared distance of normalised histograms, 0.5 * sum (p-q)^2/(p+q): 0 when equal, 1 when disjoint."""
    return 0.5 * ((p - q) ** 2 / (p + q).clamp(min=1e-12)).sum(dim=-1)


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of [B,C,H,W] images in [0,1] (inf for identical images)."""
    mse = ((x.float() - y.float()) ** 2).flatten(1).mean(dim=1)
    return 10 * torch.log10(1.0 / mse)


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-image SSIM (Wang et al. 2004: Gaussian window 11/1.5, K1=0.01, K2=0.03, data range 1), channel mean."""
    c = x.shape[1]
    g = torch.exp(-0.5 * ((torch.arange(window) - window // 2) / sigma) ** 2)
    g = g / g.sum()
    k = (g[:, None] * g[None, :]).expand(c, 1, window, window).contiguous()
    blur = lambda t: F.conv2d(t, k, groups=c)  # noqa: E731 - "valid" windows, as the reference code
    x, y = x.float(), y.float()
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return s.flatten(1).mean(dim=1)


def follows(output: torch.Tensor, ref_a: torch.Tensor, ref_b: torch.Tensor) -> torch.Tensor:
    """[B] bool: output nearer to A than to B in a*b* histogram chi-squared distance."""
    h = ab_histogram(output)
    return chi2(h, ab_histogram(ref_a)) < chi2(h, ab_histogram(ref_b))


# ----------------------------------------------------------------------------- held-out set

@dataclass
class EvalItem:
    sketch: torch.Tensor      # [1,S,S]
    truth: torch.Tensor       # [3,S,S]
    own_ref: torch.Tensor     # augmented truth [3,S,S]
    ref_a: torch.Tensor       # another image, whole [3,S,S]
    ref_b: torch.Tensor


def eval_sketch(view: np.ndarray) -> np.ndarray:
    """The fixed line extraction used for evaluation and the demo sketch."""
    return extract_lines(view, "xdog", sigma=0.7, tau=0.985, phi=120.0)


def build_eval_set(files: Sequence[Path], size: int = 128, limit: int | None = None, seed: int = 1234,
                   pairs: int = 1) -> list[EvalItem]:
    """One item per held-out image and reference pair (`pairs` different A/B pairs per sketch)."""
    if len(files) < 3:
        raise ValueError(f"evaluation needs at least 3 held-out images, got {len(files)}")
    views = [fit_square(load_rgb(f), size) for f in files]
    tensors = [to_tensor(v) for v in views]
    items = []
    for i in range(len(views) if limit is None else min(limit, len(views))):
        sketch = torch.from_numpy(eval_sketch(views[i]))[None]
        others = [j for j in range(len(views)) if j != i]
        for p in range(pairs):
            rng = np.random.default_rng([seed, i, p])
            a, b = rng.choice(others, size=2, replace=False)
            items.append(EvalItem(sketch=sketch, truth=tensors[i],
                                  own_ref=augment_reference(tensors[i], rng, PairConfig(size=size)),
                                  ref_a=tensors[a], ref_b=tensors[b]))
    return items


def evaluate_method(method: Method, items: Sequence[EvalItem], batch_size: int = 16) -> dict[str, float]:
    """Reference-following rate, mean PSNR and mean SSIM of one method over the held-out items."""
    hits, ps, ss = [], [], []
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        sk = torch.stack([it.sketch for it in chunk])
        truth = torch.stack([it.truth for it in chunk])
        a = torch.stack([it.ref_a for it in chunk])
        b = torch.stack([it.ref_b for it in chunk])
        with torch.no_grad():
            out_a, out_b = method(sk, a).float(), method(sk, b).float()
            own = method(sk, torch.stack([it.own_ref for it in chunk])).float()
        hits += follows(out_a, a, b).tolist() + follows(out_b, b, a).tolist()
        ps += psnr(own, truth).tolist()
        ss += ssim(own, truth).tolist()
    n = len(hits)
    rate = sum(hits) / n
    return {"reference_following_rate": rate,
            # 95% normal-approximation interval, so a table reader can see what the sample size allows
            "rate_ci95": 1.96 * math.sqrt(max(rate * (1 - rate), 1e-12) / n),
            "psnr": float(np.mean(ps)), "ssim": float(np.mean(ss)), "trials": n,
            "sketches": len({id(it.sketch) for it in items})}


# ----------------------------------------------------------------------------- methods

def sketch_method(sketch: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Baseline: the line art itself, no colour at all."""
    return sketch.expand(-1, 3, -1, -1)


def palette_method(sketch: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Baseline: `models.palette.palette_transfer` per image."""
    return torch.stack([palette_transfer(s, r, labels=_regions(s)) for s, r in zip(sketch, reference)])


@functools.lru_cache(maxsize=64)
def _regions_of(key: bytes, h: int, w: int) -> torch.Tensor:
    lines = torch.frombuffer(bytearray(key), dtype=torch.float32).reshape(h, w)
    return label_regions(lines > 0.5)


def _regions(sketch: torch.Tensor) -> torch.Tensor:
    """Region labels of a sketch, cached: each sketch is coloured with three references in a row."""
    s = sketch[0].float().contiguous()
    return _regions_of(s.numpy().tobytes(), *s.shape)


def model_method(generator: torch.nn.Module, style_encoder: torch.nn.Module) -> Method:
    """Generator + style encoder as a method (no local hints; CPU float32)."""
    generator.eval()
    style_encoder.eval()

    def run(sketch: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        dev = next(generator.parameters()).device
        out = generator(sketch.to(dev), style_encoder(reference.to(dev)))
        return (out.float().cpu() + 1) / 2

    return run


# ----------------------------------------------------------------------------- sample grid

def sample_grid(method: Method, items: Sequence[EvalItem]) -> Image.Image:
    """Rows of: sketch | truth | output with its own reference | another reference | output with it."""
    sk = torch.stack([it.sketch for it in items])
    own = torch.stack([it.own_ref for it in items])
    other = torch.stack([it.ref_a for it in items])
    with torch.no_grad():
        out_own, out_other = method(sk, own).float(), method(sk, other).float()
    rows = [torch.cat([sk[i].expand(3, -1, -1), items[i].truth, out_own[i], other[i], out_other[i]], dim=2)
            for i in range(len(items))]
    grid = torch.cat(rows, dim=1).clamp(0, 1)
    return Image.fromarray((grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))


__all__ = ["rgb_to_lab", "ab_histogram", "chi2", "psnr", "ssim", "follows", "EvalItem", "build_eval_set",
           "evaluate_method", "sketch_method", "palette_method", "model_method", "sample_grid", "eval_sketch"]
