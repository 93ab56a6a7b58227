"""Line extraction (XDoG, dilation difference) and clean-up of scanned or drawn line art. A line
map is float32 HxW in [0, 1], 1.0 paper and 0.0 ink, whether made for training or from an upload."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

# ITU-R BT.601 luma, the same weights Pillow uses for mode "L" and the losses use for T(y).
LUMA = (0.299, 0.587, 0.114)


# ----------------------------------------------------------------------------- basic ops

def to_gray(image: np.ndarray) -> np.ndarray:
    """Any HxW / HxWx1 / HxWx3 / HxWx4 array (uint8, uint16 or float in [0,1]) -> float32 HxW in [0,1].

    An alpha channel is composited on white, so transparent areas count as paper.
    """
    a = np.asarray(image)
    if a.ndim not in (2, 3):
        raise ValueError(f"expected an HxW or HxWxC image, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"empty image of shape {a.shape}")
    if a.dtype == np.uint8:
        f = a.astype(np.float32) / 255.0
    elif a.dtype == np.uint16:
        f = a.astype(np.float32) / 65535.0
    elif a.dtype == np.bool_:
        f = a.astype(np.float32)
    elif np.issubdtype(a.dtype, np.floating):
        f = np.nan_to_num(a.astype(np.float32), nan=1.0, posinf=1.0, neginf=0.0)
        f = np.clip(f, 0.0, 1.0)
    else:
        raise ValueError(f"unsupported image dtype {a.dtype}; use uint8, uint16, bool or float in [0,1]")
    if f.ndim == 2:
        return f
    c = f.shape[2]
    if c == 1:
        return f[..., 0]
    if c == 2:  # gray + alpha
        return f[..., 0] * f[..., 1] + (1.0 - f[..., 1])
    if c in (3, 4):
        g = f[..., 0] * LUMA[0] + f[..., 1] * LUMA[1] + f[..., 2] * LUMA[2]
        if c == 4:
            g = g * f[..., 3] + (1.0 - f[..., 3])
        return g.astype(np.float32)
    raise ValueError(f"unsupported channel count {c}")


def _shift_accumulate(a: np.ndarray, weights: np.ndarray, axis: int) -> np.ndarray:
    r = len(weights) // 2
    pad = [(0, 0)] * a.ndim
    pad[axis] = (r, r)
    p = np.pad(a, pad, mode="reflect" if a.shape[axis] > r else "edge")
    out = np.zeros_like(a)
    n = a.shape[axis]
    for i, w in enumerate(weights):
        out += w * _window(p, axis, i, n)
    return out


def _window(a: np.ndarray, axis: int, start: int, n: int) -> np.ndarray:
    """a[start:start+n] along `axis`, as a view (no copy)."""
    index = [slice(None)] * a.ndim
    index[axis] = slice(start, start + n)
    return a[tuple(index)]


def gaussian_blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur (radius 3 sigma, reflected borders) of a float32 HxW array."""
    if sigma <= 0:
        return a.astype(np.float32, copy=True)
    r = max(1, int(np.ceil(3.0 * sigma)))
    x = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    k = (k / k.sum()).astype(np.float32)
    a = a.astype(np.float32, copy=False)
    return _shift_accumulate(_shift_accumulate(a, k, 0), k, 1)


def _running(a: np.ndarray, size: int, op) -> np.ndarray:
    """Square grey-level rank filter (op = np.maximum or np.minimum), separable, edge-padded."""
    if size <= 1:
        return a.copy()
    lo = (size - 1) // 2
    hi = size - 1 - lo
    out = a
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (lo, hi)
        p = np.pad(out, pad, mode="edge")
        n = out.shape[axis]
        acc = _window(p, axis, 0, n).copy()
        for i in range(1, size):
            op(acc, _window(p, axis, i, n), out=acc)
        out = acc
    return out


def grey_dilate(a: np.ndarray, size: int) -> np.ndarray:
    """Running maximum over a size x size window (spreads bright paper over thin dark strokes)."""
    return _running(a, int(size), np.maximum)


def grey_erode(a: np.ndarray, size: int) -> np.ndarray:
    """Running minimum over a size x size window (thickens dark strokes)."""
    return _running(a, int(size), np.minimum)


def _resize(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a float32 HxW array to (width, height)."""
    return np.asarray(Image.fromarray(a.astype(np.float32), "F").resize(size, Image.BILINEAR), dtype=np.float32)


# ----------------------------------------------------------------------------- scan clean-up

def paper_background(gray: np.ndarray, cell: int = 32, percentile: float = 90.0) -> np.ndarray:
    """Large-scale estimate of the paper's brightness under the drawing (uneven lighting, yellowed paper).

    The image is cut into cells of about `cell` pixels; in each, a high percentile is paper because
    strokes are thin. Cells much darker than their neighbourhood (solid black fills, big shadows)
    take the neighbourhood's brightest cell instead, so fills are not mistaken for dim paper. The
    cell grid is then smoothed and upsampled bilinearly: cheap even for 8k scans.
    """
    h, w = gray.shape
    sh, sw = max(1, -(-h // cell)), max(1, -(-w // cell))
    ph, pw = sh * cell - h, sw * cell - w
    padded = np.pad(gray, ((0, ph), (0, pw)), mode="edge") if (ph or pw) else gray
    blocks = padded.reshape(sh, cell, sw, cell).transpose(0, 2, 1, 3).reshape(sh, sw, cell * cell)
    small = np.percentile(blocks, percentile, axis=2).astype(np.float32)
    neighbourhood = grey_dilate(small, 5)
    small = np.where(small < 0.85 * neighbourhood, neighbourhood, small)
    if min(sh, sw) >= 3:
        small = gaussian_blur(small, 0.7)
    bg = _resize(small, (sw * cell, sh * cell))[:h, :w]
    return np.clip(bg, 1e-3, 1.0)


def flatten_paper(gray: np.ndarray, cell: int = 32) -> np.ndarray:
    """Divide by the paper estimate so paper becomes ~1 everywhere, whatever its tint or lighting."""
    return np.clip(gray / paper_background(gray, cell), 0.0, 1.0).astype(np.float32)


def _sample(values: np.ndarray, limit: int = 250_000) -> np.ndarray:
    """A regular subsample: percentiles of a few hundred thousand pixels are as good as of millions."""
    step = -(-values.size // limit)
    return values[::step] if step > 1 else values


def levels(gray: np.ndarray, white: float = 0.92, black_percentile: float = 2.0, gamma: float = 1.0,
           min_black: float = 0.35) -> np.ndarray:
    """Map paper (>= `white`) to exactly 1 and the darkest ink (a low percentile) to 0.

    `white` swallows paper grain and JPEG ringing; `black_percentile` is taken over pixels darker
    than `white` only (a mostly-white page would otherwise put it at 1), and is capped at
    `min_black` so a page of faint pencil is darkened but a blank page stays blank.
    """
    ink = _sample(gray[gray < white])
    black = float(np.percentile(ink, black_percentile)) if ink.size else 0.0
    black = min(black, min_black)
    span = max(white - black, 1e-3)
    out = np.clip((gray - black) / span, 0.0, 1.0)
    if gamma != 1.0:
        out = out ** gamma
    return out.astype(np.float32)


def paper_white_point(gray: np.ndarray, ceiling: float = 0.95, floor: float = 0.6) -> float:
    """Level above which a flattened image counts as paper: 3 robust sigmas of paper grain below
    the paper's median, so noisy scans lose their speckle while clean digital art keeps faint strokes."""
    paper = _sample(gray[gray > 0.75])
    if paper.size < 16:
        return ceiling
    med = float(np.median(paper))
    noise = 1.4826 * float(np.median(np.abs(paper - med)))
    return float(np.clip(med - 3.0 * noise, floor, ceiling))


def normalize_lineart(gray: np.ndarray, *, white: float | None = None, black_percentile: float = 2.0,
                      gamma: float = 1.0, background_cell: int = 32, despeckle: bool = True) -> np.ndarray:
    """Clean up already-drawn line art (scan, photo, pencil, digital) into a line map.

    Input: HxW or HxWxC array, uint8 / uint16 / float in [0, 1] (alpha composited on white).
    Output: float32 HxW in [0, 1], 1 = white paper, 0 = ink.
    Steps: grayscale -> divide by a large-scale paper estimate (off-white, uneven light) ->
    levels (paper, i.e. above `white` or the noise-adaptive `paper_white_point`, to 1; the ink
    percentile to 0) -> optional despeckle (isolated dark pixels that a
    3x3 maximum wipes out entirely and that are faint are JPEG or dust noise).
    """
    g = to_gray(gray)
    if min(g.shape) >= 8:
        g = flatten_paper(g, background_cell)
    if white is None:
        white = paper_white_point(g)
    out = levels(g, white=white, black_percentile=black_percentile, gamma=gamma)
    if despeckle and min(out.shape) >= 3:
        # A faint dark pixel with no dark neighbour in its 3x3 window is JPEG or dust noise;
        # real strokes are connected, so even 1-pixel lines survive.
        dark = (out < 0.9).astype(np.float32)
        ones = np.ones(3, dtype=np.float32)
        neighbours = _shift_accumulate(_shift_accumulate(dark, ones, 0), ones, 1) - dark
        out = np.where((dark > 0) & (neighbours < 0.5) & (out > 0.3), 1.0, out)
    return out.astype(np.float32)


# ----------------------------------------------------------------------------- extraction

@dataclass(frozen=True)
class XDoGParams:
    """Extended difference of Gaussians (Winnemöller et al. 2012), tau form.

    D = G_sigma(I) - tau * G_{k sigma}(I) on I in [0, 1];  E = 1 if D >= eps else 1 + tanh(phi (D - eps)).
    The p form (1 + p) G_sigma - p G_{k sigma} is the same up to scale with tau = p / (1 + p).
    """
    sigma: float = 0.6
    k: float = 1.6
    tau: float = 0.985
    eps: float = -0.005
    phi: float = 180.0


@dataclass(frozen=True)
class DilateParams:
    """Dilation difference: ink = (max over a window) - pixel, i.e. how much darker a pixel is than
    the paper next to it. Contrast below `floor` (paper grain, JPEG noise) is ignored and `scale`
    more maps to full ink. Strokes wider than about size/2 come out as outlines, as in the paper."""
    size: int = 5
    scale: float = 0.3
    floor: float = 0.06
    blur: float = 0.5


def xdog(gray: np.ndarray, p: XDoGParams = XDoGParams()) -> np.ndarray:
    g1 = gaussian_blur(gray, p.sigma)
    g2 = gaussian_blur(gray, p.sigma * p.k)
    d = g1 - p.tau * g2
    e = np.where(d >= p.eps, 1.0, 1.0 + np.tanh(p.phi * (d - p.eps)))
    return np.clip(e, 0.0, 1.0).astype(np.float32)


def dilate_difference(gray: np.ndarray, p: DilateParams = DilateParams()) -> np.ndarray:
    g = gaussian_blur(gray, p.blur) if p.blur > 0 else gray
    diff = grey_dilate(g, p.size) - g
    return np.clip(1.0 - (diff - p.floor) / max(p.scale, 1e-3), 0.0, 1.0).astype(np.float32)


def extract_lines(rgb: np.ndarray, method: str = "xdog", *, threshold: float | None = None,
                  thickness: int = 1, flatten: bool = True, background_cell: int = 32,
                  **params) -> np.ndarray:
    """Line map of a painting or photo of a drawing: float32 HxW in [0, 1], 1 = paper, 0 = ink.

    rgb: uint8/uint16/float array HxWx3 (or HxW, HxWx4 with alpha composited on white).
    method: "xdog" (params of `XDoGParams`: sigma, k, tau, eps, phi) or "dilate"
        (params of `DilateParams`: size, scale, blur).
    threshold: if given, binarise (ink where value < threshold) — crisp lines for training pairs.
    thickness: > 1 thickens strokes by a grey erosion of that window size.
    flatten: divide by the large-scale paper estimate first, so off-white or unevenly lit scans
        give the same lines as clean digital images.
    """
    g = to_gray(rgb)
    if flatten and min(g.shape) >= 8:
        g = flatten_paper(g, background_cell)
    if method == "xdog":
        out = xdog(g, XDoGParams(**params))
    elif method == "dilate":
        out = dilate_difference(g, DilateParams(**params))
    else:
        raise ValueError(f"unknown line extraction method {method!r}; use 'xdog' or 'dilate'")
    if threshold is not None:
        out = (out >= threshold).astype(np.float32)
    if thickness > 1:
        out = grey_erode(out, thickness)
    return out.astype(np.float32)
