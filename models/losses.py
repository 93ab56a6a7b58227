"""The paper's losses: guided L1 (eq. 2), AC-GAN (eq. 3) and DCGAN (eq. 4) terms, and their sum (eq. 5).

Every function returns `(total, terms)` where `terms` maps a name to a detached scalar tensor, so
training logs and tests see each term and its weight separately. Images are in [-1, 1].
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from models.colour import soft_ab_histogram
from models.lines import LUMA  # ITU-R BT.601, as Pillow's "L" conversion


def luminance(rgb: torch.Tensor) -> torch.Tensor:
    """T(y): grayscale painting [B,1,H,W] = 0.299 R + 0.587 G + 0.114 B (stays in [-1, 1])."""
    w = torch.tensor(LUMA, device=rgb.device, dtype=rgb.dtype).view(1, 3, 1, 1)
    return (rgb * w).sum(1, keepdim=True)


def _terms(**values: torch.Tensor) -> dict[str, torch.Tensor]:
    return {k: v.detach() for k, v in values.items()}


def guided_l1_loss(out: torch.Tensor, guide1: torch.Tensor, guide2: torch.Tensor, target_rgb: torch.Tensor,
                   alpha: float = 0.3, beta: float = 0.9) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Eq. (2): |y - G(x)|_1 + alpha |T(y) - G1(x)|_1 + beta |y - G2(x)|_1 (means over pixels).

    guide1 is compared with the grayscale target T(y), guide2 with the colour target.
    """
    l_out = F.l1_loss(out, target_rgb)
    l_g1 = F.l1_loss(guide1, luminance(target_rgb))
    l_g2 = F.l1_loss(guide2, target_rgb)
    total = l_out + alpha * l_g1 + beta * l_g2
    return total, _terms(l1_out=l_out, l1_guide1=l_g1, l1_guide2=l_g2, total=total)


def colour_distribution_loss(out: torch.Tensor, target_rgb: torch.Tensor, bins: int = 16
                             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Chi-squared distance between the soft a*b* histograms of output and truth (both in [-1, 1]).

    L1 alone pays an uncertain pixel best with the average of the candidate colours, which is grey:
    the outputs come out a third as saturated as the paintings. This term rewards the truth's
    colour distribution (its saturation and hues) without caring where each pixel sits.
    """
    with torch.autocast(out.device.type, enabled=False):  # histogram votes need float32
        p = soft_ab_histogram((out.float() + 1) / 2, bins)
        q = soft_ab_histogram((target_rgb.float() + 1) / 2, bins)
        loss = (0.5 * (p - q) ** 2 / (p + q).clamp(min=1e-8)).sum(dim=1).mean()
    return loss, _terms(colour=loss, total=loss)


def _bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def dcgan_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Eq. (4), discriminator side: -log D(y) - log(1 - D(G(x)))."""
    real, fake = _bce(real_logits, True), _bce(fake_logits, False)
    total = real + fake
    return total, _terms(d_real=real, d_fake=fake, total=total)


def dcgan_g_loss(fake_logits: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Eq. (4), generator side, in the non-saturating form: -log D(G(x))."""
    adv = _bce(fake_logits, True)
    return adv, _terms(g_adv=adv, total=adv)


def acgan_d_loss(real_out: tuple[torch.Tensor, torch.Tensor], fake_out: tuple[torch.Tensor, torch.Tensor],
                 real_style: torch.Tensor, aux_weight: float = 1.0) -> tuple[torch.Tensor, dict]:
    """Eq. (3), discriminator side: real/fake cross-entropy, plus the 4096-d head regressing the
    style vector V(y) for real paintings and 0 for generated ones (mean squared error, weight aux_weight)."""
    (real_logits, real_pred), (fake_logits, fake_pred) = real_out, fake_out
    real, fake = _bce(real_logits, True), _bce(fake_logits, False)
    aux_real = F.mse_loss(real_pred, real_style.detach())
    aux_fake = F.mse_loss(fake_pred, torch.zeros_like(fake_pred))
    total = real + fake + aux_weight * (aux_real + aux_fake)
    return total, _terms(d_real=real, d_fake=fake, aux_real=aux_real, aux_fake=aux_fake, total=total)


def acgan_g_loss(fake_out: tuple[torch.Tensor, torch.Tensor], style: torch.Tensor,
                 aux_weight: float = 1.0) -> tuple[torch.Tensor, dict]:
    """Eq. (3), generator side: be judged real, and make the discriminator read the reference's
    style vector in the generated painting (where it is trained to read 0)."""
    fake_logits, fake_pred = fake_out
    adv = _bce(fake_logits, True)
    aux = F.mse_loss(fake_pred, style.detach())
    total = adv + aux_weight * aux
    return total, _terms(g_adv=adv, g_aux=aux, total=total)


def generator_loss(l1_total: torch.Tensor, gan_total: torch.Tensor, lam: float = 0.01) -> tuple[torch.Tensor, dict]:
    """Eq. (5): the guided L1 loss plus lambda times the generator's GAN term (AC-GAN or DCGAN)."""
    total = l1_total + lam * gan_total
    return total, _terms(l1=l1_total, gan=gan_total, total=total)
