"""The inference pipeline: line art + style reference (+ optional colour dots) -> coloured panel.
`Colorizer` owns device, dtype and compilation like a diffusers pipeline; panels keep their
aspect ratio (padded, never stretched) and a seed asks for a variant (docs/architecture.md,
"The networks")."""
from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageOps

from models.lines import normalize_lineart

log = logging.getLogger(__name__)

# Working sizes the network takes (the long side fed to it). The service's own range, which `models`
# cannot import (panelpaint.limits.WORK_SIZE_MIN/MAX, 64-4096), must lie within: tests/models checks it.
MIN_SIZE, MAX_SIZE = 16, 4096
MAX_ASPECT = 256                        # beyond this a "panel" is a line, not a picture
STYLE_MAX_SIDE = 512                    # encoders resize to ~224 anyway; no need to move 8k references
STYLE_JITTER = 0.5                      # a seeded variant's noise on the style code, in units of its spread


class WeightsNotFoundError(FileNotFoundError):
    """No trained weights where they were looked for: the Colorizer never runs an untrained network."""


def pick_device(device: str | torch.device | None = "auto") -> torch.device:
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but no CUDA GPU is available (use --device auto or cpu)")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' was requested but Apple MPS is not available (use --device auto or cpu)")
    return dev


def default_dtype(device: torch.device) -> torch.dtype:
    return torch.bfloat16 if device.type == "cuda" else torch.float32


# ----------------------------------------------------------------------------- PIL conversion

def _check_image(img, what: str) -> Image.Image:
    if not isinstance(img, Image.Image):
        raise TypeError(f"{what} must be a PIL image, got {type(img).__name__}")
    if img.width < 1 or img.height < 1:
        raise ValueError(f"{what} is empty ({img.width}x{img.height})")
    return ImageOps.exif_transpose(img)


def _on_white(img: Image.Image) -> Image.Image:
    """RGB with any transparency composited on white paper."""
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("LA", "La", "PA", "RGBa"):
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, img).convert("RGB")
    return img.convert("RGB")


def sketch_to_array(img: Image.Image) -> np.ndarray:
    """Any PIL line art (1, L, LA, P, RGB, RGBA, CMYK, I;16, I, F, ...) -> float32 HxW in [0,1]."""
    img = _check_image(img, "sketch")
    mode = img.mode
    if mode.startswith("I;16"):
        a = np.asarray(img).astype(np.float32) / 65535.0
    elif mode in ("I", "F"):
        a = np.asarray(img).astype(np.float32)
        a = np.nan_to_num(a, nan=1.0)
        peak = float(a.max()) if a.size else 0.0
        # 16-bit PNGs open as "I" on some Pillow versions; floats are usually already in [0,1].
        scale = 1.0 if (mode == "F" and peak <= 1.0) else 255.0 if peak <= 255.0 else 65535.0
        a = np.clip(a / scale, 0.0, 1.0)
    elif mode == "1":
        a = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    elif mode == "L":
        a = np.asarray(img, dtype=np.float32) / 255.0
    else:
        a = np.asarray(_on_white(img).convert("L"), dtype=np.float32) / 255.0
    return a


def style_to_tensor(img: Image.Image) -> torch.Tensor:
    """Style reference -> [1,3,H,W] RGB in [0,1] (alpha on white, at most STYLE_MAX_SIDE on a side)."""
    img = _check_image(img, "style image")
    if img.mode.startswith("I") or img.mode == "F":
        img = Image.fromarray((sketch_to_array(img) * 255).round().astype(np.uint8), "L")
    img = _on_white(img)
    if max(img.size) > STYLE_MAX_SIDE:
        img = img.copy()
        img.thumbnail((STYLE_MAX_SIDE, STYLE_MAX_SIDE), Image.BICUBIC)
    a = np.asarray(img, dtype=np.float32) / 255.0
    return torch.from_numpy(a).permute(2, 0, 1)[None].contiguous()


def hints_to_arrays(img: Image.Image, size: tuple[int, int], work: tuple[int, int]) -> np.ndarray:
    """RGBA hint map (alpha > 0 marks a colour dot, style2paints V1) -> float32 4xHxW at the working
    size: RGB in [-1,1] where a dot is, mask 1 there, zeros elsewhere. Area-averaged so that a
    one-pixel dot on a large page survives the downscale."""
    img = _check_image(img, "hints image")
    if img.size != size:
        raise ValueError(f"hints image is {img.width}x{img.height} but the sketch is {size[0]}x{size[1]}; "
                         "draw hints on a transparent image the size of the sketch")
    rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
    mask = (rgba[..., 3] > 0).astype(np.float32)
    rgb = rgba[..., :3] * mask[..., None]
    w, h = work
    mask_s = np.asarray(Image.fromarray(mask, "F").resize((w, h), Image.BOX), dtype=np.float32)
    rgb_s = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(rgb[..., c]), "F").resize((w, h), Image.BOX),
                                 dtype=np.float32) for c in range(3)])
    hit = mask_s > 0
    colour = np.where(hit, rgb_s / np.maximum(mask_s, 1e-8), 0.0) * 2.0 - 1.0
    out = np.zeros((4, h, w), np.float32)
    out[:3] = np.where(hit, np.clip(colour, -1.0, 1.0), 0.0)
    out[3] = hit
    return out


def _shrink(a: np.ndarray, long_side: int) -> np.ndarray:
    """Area-average a float image down to at most `long_side` on its long side: line art is cleaned
    at twice the working size, which is as good as full size for the network and far cheaper on
    a 60-megapixel page."""
    h, w = a.shape
    if max(w, h) <= long_side:
        return a
    scale = long_side / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(a, "F").resize(size, Image.BOX), dtype=np.float32)


def working_size(size: tuple[int, int], long_side: int, stride: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """(w, h) to resize to (long side = long_side, aspect kept) and (W, H) padded to the stride."""
    w, h = size
    if max(w, h) / min(w, h) > MAX_ASPECT:
        raise ValueError(f"image of {w}x{h} is too elongated (aspect ratio above {MAX_ASPECT}:1) to colour")
    scale = long_side / max(w, h)
    ww, hh = max(1, round(w * scale)), max(1, round(h * scale))
    pad = (-(-ww // stride) * stride, -(-hh // stride) * stride)
    return (ww, hh), pad


# ----------------------------------------------------------------------------- pipeline

class Colorizer:
    def __init__(self, generator: torch.nn.Module, style_encoder: torch.nn.Module, *,
                 device: str | torch.device | None = None, dtype: torch.dtype | None = None,
                 compile: bool = False, model_version: str = "unversioned", max_batch: int = 16,
                 work_size: int = 512):
        self.device = pick_device(device)
        self.work_size = int(work_size)  # the default `size`: what the weights were calibrated at
        self.dtype = dtype or default_dtype(self.device)
        self.model_version = model_version
        self.max_batch = max(1, int(max_batch))
        self.last_seed: int | None = None
        self.generator = generator.eval().to(self.device, self.dtype).to(memory_format=torch.channels_last)
        # The style encoder stays float32: it runs once per reference and its statistics
        # (histograms, std pooling) are the part most sensitive to precision.
        self.style_encoder = style_encoder.eval().to(self.device, torch.float32)
        self._forward = self.generator
        if compile:
            self._forward = torch.compile(self.generator, dynamic=False)

    @classmethod
    def from_file(cls, path: str | Path, *, device: str | torch.device | None = "auto",
                  compile: bool = False, dtype: torch.dtype | None = None, max_batch: int = 16) -> "Colorizer":
        """Load a panelpaint safetensors file (the shipped one is `panelpaint.weights.DEFAULT_WEIGHTS`)."""
        from models.weights_io import load_weights

        path = Path(path)
        if not path.is_file():
            raise WeightsNotFoundError(
                f"no trained weights at {path}. Colouring needs a trained model: train one with "
                "`panelpaint train` and pass its weights.safetensors with --weights FILE "
                "(or PANELPAINT_WEIGHTS), or copy it to models/weights/default.safetensors.")
        generator, encoder, meta = load_weights(path, map_location="cpu")
        return cls(generator, encoder, device=device, dtype=dtype, compile=compile,
                   model_version=meta.get("model_version", "unversioned"), max_batch=max_batch,
                   work_size=int(meta.get("work_size") or 512))

    @property
    def stride(self) -> int:
        return self.generator.stride

    # -- public API ---------------------------------------------------------------------------

    def colorize(self, sketch: Image.Image, style: Image.Image, hints: Image.Image | None = None,
                 size: int | None = None, seed: int | None = None) -> Image.Image:
        """One panel -> an RGB image the size of `sketch` (the network's draft, resized)."""
        return self.colorize_batch([sketch], [style], None if hints is None else [hints], size=size, seed=seed)[0]

    def colorize_batch(self, sketches: Sequence[Image.Image], styles: Sequence[Image.Image] | Image.Image,
                       hints: Sequence[Image.Image | None] | None = None, size: int | None = None,
                       seed: int | None = None) -> list[Image.Image]:
        """Many panels: grouped by padded working size, one forward pass per group (up to max_batch).

        `styles` is one image for all panels or one per panel; identical style objects are encoded once.
        """
        size = self.work_size if size is None else size
        if isinstance(styles, Image.Image):
            styles = [styles] * len(sketches)
        if len(styles) != len(sketches):
            raise ValueError(f"got {len(sketches)} sketches but {len(styles)} style images")
        if hints is not None and len(hints) != len(sketches):
            raise ValueError(f"got {len(sketches)} sketches but {len(hints)} hint images")
        if not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
            raise ValueError(f"size must be an integer between {MIN_SIZE} and {MAX_SIZE}, got {size!r}")
        self.last_seed = seed
        if not sketches:
            return []

        items = []
        for i, sk in enumerate(sketches):
            raw = sketch_to_array(sk)
            orig = (raw.shape[1], raw.shape[0])
            (w, h), (pw, ph) = working_size(orig, size, self.stride)
            lines = normalize_lineart(_shrink(raw, 2 * size))
            small = np.asarray(Image.fromarray(lines, "F").resize((w, h), Image.BILINEAR), dtype=np.float32)
            padded = np.ones((ph, pw), np.float32)  # pad with paper
            padded[:h, :w] = np.clip(small, 0.0, 1.0)
            hint = None
            if hints is not None and hints[i] is not None:
                hint = np.zeros((4, ph, pw), np.float32)
                hint[:, :h, :w] = hints_to_arrays(hints[i], orig, (w, h))
            items.append({"sketch": padded, "hint": hint, "work": (w, h), "orig": orig})

        style_vecs = self._encode_styles(styles, seed)
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, it in enumerate(items):
            groups[it["sketch"].shape].append(i)

        results: list[Image.Image | None] = [None] * len(items)
        for idx in groups.values():
            for start in range(0, len(idx), self.max_batch):
                chunk = idx[start:start + self.max_batch]
                out = self._run(chunk, items, style_vecs)
                for j, i in enumerate(chunk):
                    results[i] = self._to_image(out[j], items[i]["work"], items[i]["orig"])
        return results  # type: ignore[return-value]

    # -- internals ----------------------------------------------------------------------------

    @torch.inference_mode()
    def _encode_styles(self, styles: Sequence[Image.Image], seed: int | None = None) -> list[torch.Tensor]:
        cache: dict[int, torch.Tensor] = {}
        vecs = []
        for s in styles:
            key = id(s)
            if key not in cache:
                vec = self.style_encoder(style_to_tensor(s).to(self.device))[0]
                if seed is not None:
                    gen = torch.Generator().manual_seed(int(seed) % 2**63)
                    noise = torch.randn(vec.shape, generator=gen).to(vec.device, vec.dtype)
                    vec = vec + STYLE_JITTER * vec.std() * noise
                cache[key] = vec
            vecs.append(cache[key])
        return vecs

    @torch.inference_mode()
    def _run(self, chunk: list[int], items: list[dict], style_vecs: list[torch.Tensor]) -> torch.Tensor:
        dev, dt = self.device, self.dtype
        sk = torch.from_numpy(np.stack([items[i]["sketch"] for i in chunk]))[:, None]
        sk = sk.to(dev, dt).contiguous(memory_format=torch.channels_last)
        st = torch.stack([style_vecs[i] for i in chunk]).to(dev, dt)
        hi = None
        if any(items[i]["hint"] is not None for i in chunk):
            zeros = np.zeros((4,) + items[chunk[0]]["sketch"].shape, np.float32)
            hi = torch.from_numpy(np.stack([items[i]["hint"] if items[i]["hint"] is not None else zeros
                                            for i in chunk]))
            hi = hi.to(dev, dt).contiguous(memory_format=torch.channels_last)
        try:
            out = self._forward(sk, st, hi)
        except Exception:
            if self._forward is self.generator:
                raise
            # torch.compile can fail on machines without a working compiler toolchain: fall back.
            log.warning("torch.compile failed; running the generator eagerly", exc_info=True)
            self._forward = self.generator
            out = self._forward(sk, st, hi)
        return out.float().cpu()

    @staticmethod
    def _to_image(out: torch.Tensor, work: tuple[int, int], orig: tuple[int, int]) -> Image.Image:
        w, h = work
        rgb = ((out[:, :h, :w].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
        img = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
        return img if (w, h) == orig else img.resize(orig, Image.BICUBIC)
