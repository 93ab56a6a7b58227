"""Training pairs made on the fly from folders of finished colour images: (sketch, truth,
augmented self-reference, hints), float32 in [0, 1]; the generator's target is `truth * 2 - 1`
(docs/training.md, "What a training pair is")."""
from __future__ import annotations

import io
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from models.lines import extract_lines

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


@dataclass
class PairConfig:
    size: int = 128                       # training crop, a multiple of the generator stride
    scale_jitter: tuple[float, float] = (1.0, 1.35)  # short side resized to size * U(a, b) before cropping
    pad_square_prob: float = 0.5          # pad to a white square (whole drawing) instead of cropping
    hint_prob: float = 0.5
    max_hints: int = 20
    jpeg_prob: float = 0.3
    xdog_prob: float = 0.6                # else dilation difference
    threshold_prob: float = 0.4
    thicken_prob: float = 0.25
    ref_area: tuple[float, float] = (0.4, 1.0)   # area of the crop taken for the reference
    ref_rotate: float = 30.0              # degrees
    ref_warp: float = 0.12                # std of the elastic displacement, in half-widths
    ref_grid: int = 4                     # control points per side of the displacement field
    ref_brightness: float = 0.08
    ref_contrast: float = 0.08
    ref_noise: tuple[float, float] = (0.004, 0.02)
    recolour_prob: float = 0.0            # permute the RGB channels of truth AND reference together


# ----------------------------------------------------------------------------- reading images

def list_images(roots: Iterable[str | Path]) -> list[Path]:
    """Every PNG/JPEG/WebP file under the given folders (or the files themselves), sorted."""
    files: list[Path] = []
    for root in roots:
        root = Path(root)
        if root.is_file():
            files.append(root)
        elif root.is_dir():
            files.extend(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        else:
            raise FileNotFoundError(f"training data folder {root} does not exist")
    return sorted(set(files))


def load_rgb(path: str | Path) -> np.ndarray:
    """Any image file -> uint8 HxWx3 RGB, transparency composited on white, 16-bit scaled down."""
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                a = np.asarray(im, dtype=np.float32)
                im = Image.fromarray((a / max(a.max(), 1.0) * 255).astype(np.uint8))
            if im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info:
                im = im.convert("RGBA")
                white = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(white, im)
            rgb = np.asarray(im.convert("RGB"))
    except (OSError, ValueError, SyntaxError) as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from exc
    if min(rgb.shape[:2]) < 8:
        raise ValueError(f"image {path} is too small ({rgb.shape[1]}x{rgb.shape[0]})")
    return rgb


# ----------------------------------------------------------------------------- the truth crop

def _resize(rgb: np.ndarray, w: int, h: int) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).resize((w, h), Image.Resampling.BICUBIC))


def pad_square(rgb: np.ndarray) -> np.ndarray:
    """Pad with white to a centred square."""
    h, w = rgb.shape[:2]
    s = max(h, w)
    out = np.full((s, s, 3), 255, np.uint8)
    y, x = (s - h) // 2, (s - w) // 2
    out[y:y + h, x:x + w] = rgb
    return out


def fit_square(rgb: np.ndarray, size: int) -> np.ndarray:
    """Deterministic view used for evaluation: the whole image padded to a square, resized."""
    return _resize(pad_square(rgb), size, size)


def random_truth(rgb: np.ndarray, size: int, rng: np.random.Generator, cfg: PairConfig) -> np.ndarray:
    """A random size x size view of a painting: the padded whole, or a crop at a random scale; maybe flipped."""
    if rng.random() < cfg.pad_square_prob:
        rgb = pad_square(rgb)
    h, w = rgb.shape[:2]
    short = size * rng.uniform(*cfg.scale_jitter)
    scale = short / min(h, w)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    img = _resize(rgb, nw, nh)
    y = int(rng.integers(0, nh - size + 1))
    x = int(rng.integers(0, nw - size + 1))
    img = img[y:y + size, x:x + size]
    if rng.random() < 0.5:
        img = img[:, ::-1]
    return np.ascontiguousarray(img)


# ----------------------------------------------------------------------------- the sketch

def random_sketch(rgb: np.ndarray, rng: np.random.Generator, cfg: PairConfig = PairConfig()) -> np.ndarray:
    """Line map (float32 HxW in [0, 1], 1 = paper) by a randomly parameterised line extraction."""
    threshold = float(rng.uniform(0.45, 0.8)) if rng.random() < cfg.threshold_prob else None
    thickness = int(rng.choice([2, 3])) if rng.random() < cfg.thicken_prob else 1
    if rng.random() < cfg.xdog_prob:
        params = dict(sigma=float(rng.uniform(0.35, 1.1)), k=float(rng.uniform(1.4, 1.8)),
                      tau=float(rng.uniform(0.96, 0.995)), eps=float(rng.uniform(-0.03, 0.0)),
                      phi=float(rng.uniform(40.0, 250.0)))
        lines = extract_lines(rgb, "xdog", threshold=threshold, thickness=thickness, **params)
    else:
        params = dict(size=int(rng.choice([3, 5, 7])), scale=float(rng.uniform(0.12, 0.4)),
                      floor=float(rng.uniform(0.02, 0.1)), blur=float(rng.uniform(0.0, 1.0)))
        lines = extract_lines(rgb, "dilate", threshold=threshold, thickness=thickness, **params)
    if rng.random() < cfg.jpeg_prob:
        buf = io.BytesIO()
        Image.fromarray((lines * 255).round().astype(np.uint8)).save(
            buf, "JPEG", quality=int(rng.integers(30, 91)))
        lines = np.asarray(Image.open(buf), dtype=np.float32) / 255.0
    return np.clip(lines, 0.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------- the reference

def _warp_grid(h: int, w: int, rng: np.random.Generator, cfg: PairConfig, flip: bool) -> torch.Tensor:
    """Sampling grid [1,H,W,2] of a random crop + rotation + flip + smooth elastic displacement."""
    area = rng.uniform(*cfg.ref_area)
    aspect = math.exp(rng.uniform(-0.2, 0.2))
    sx = min(1.0, math.sqrt(area * aspect))
    sy = min(1.0, math.sqrt(area / aspect))
    tx = rng.uniform(-(1 - sx), 1 - sx)
    ty = rng.uniform(-(1 - sy), 1 - sy)
    a = math.radians(rng.uniform(-cfg.ref_rotate, cfg.ref_rotate))
    f = -1.0 if flip else 1.0
    theta = torch.tensor([[sx * math.cos(a) * f, -sy * math.sin(a), tx],
                          [sx * math.sin(a) * f, sy * math.cos(a), ty]], dtype=torch.float32)
    grid = F.affine_grid(theta[None], [1, 3, h, w], align_corners=False)
    amp = cfg.ref_warp * rng.uniform(0.3, 1.0)
    coarse = torch.from_numpy(rng.normal(0.0, amp, (1, 2, cfg.ref_grid, cfg.ref_grid)).astype(np.float32))
    field = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)
    return grid + field.permute(0, 2, 3, 1)


def augment_reference(truth: torch.Tensor, rng: np.random.Generator, cfg: PairConfig = PairConfig()) -> torch.Tensor:
    """Augmented self-reference of a [3,H,W] image in [0,1]: same colours, moved pixels.

    Never returns the input unchanged: even a blank or symmetric image gets a visible
    brightness change and noise if the geometric warp happened to leave it as it was.
    """
    if truth.ndim != 3 or truth.shape[0] != 3:
        raise ValueError(f"augment_reference expects a [3,H,W] image, got {tuple(truth.shape)}")
    _, h, w = truth.shape
    flip = bool(rng.random() < 0.5)
    grid = _warp_grid(h, w, rng, cfg, flip)
    ref = F.grid_sample(truth[None].float(), grid, mode="bilinear", padding_mode="reflection",
                        align_corners=False)[0]
    mean = ref.mean(dim=(1, 2), keepdim=True)
    contrast = 1.0 + rng.uniform(-cfg.ref_contrast, cfg.ref_contrast)
    brightness = rng.uniform(-cfg.ref_brightness, cfg.ref_brightness)
    ref = (ref - mean) * contrast + mean + brightness
    noise = torch.from_numpy(rng.normal(0.0, rng.uniform(*cfg.ref_noise), ref.shape).astype(np.float32))
    ref = (ref + noise).clamp(0.0, 1.0)
    if (ref - truth).abs().max() < 2.0 / 255:
        # A flat image the warp cannot move: darken it visibly instead (the property tests rely on it).
        ref = (truth * 0.9 + noise.abs()).clamp(0.0, 1.0)
    return ref


# ----------------------------------------------------------------------------- hints

def random_hints(truth: torch.Tensor, rng: np.random.Generator, cfg: PairConfig = PairConfig()) -> torch.Tensor:
    """[4,H,W] local colour hints: with probability `hint_prob`, 1..max_hints dots of the truth's colour."""
    _, h, w = truth.shape
    hints = torch.zeros(4, h, w)
    if rng.random() >= cfg.hint_prob:
        return hints
    for _ in range(int(rng.integers(1, cfg.max_hints + 1))):
        r = int(rng.integers(1, 3))
        y = int(rng.integers(r, max(r + 1, h - r)))
        x = int(rng.integers(r, max(r + 1, w - r)))
        colour = truth[:, max(0, y - 1):y + 2, max(0, x - 1):x + 2].mean(dim=(1, 2))
        hints[:3, y - r:y + r + 1, x - r:x + r + 1] = (colour * 2 - 1)[:, None, None]
        hints[3, y - r:y + r + 1, x - r:x + r + 1] = 1.0
    return hints


# ----------------------------------------------------------------------------- pairs

def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(rgb, dtype=np.float32)).permute(2, 0, 1) / 255.0


PERMUTATIONS = [(0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]  # every non-identity RGB order


def make_pair(rgb: np.ndarray, rng: np.random.Generator, cfg: PairConfig = PairConfig(),
              deterministic_view: bool = False) -> dict[str, torch.Tensor]:
    """One training example from a uint8 HxWx3 painting.

    With probability `recolour_prob` the truth is recoloured by a random permutation of its RGB
    channels before the reference is made from it, so truth and reference keep the same colours
    as each other but a bison is no longer always brown: the colours can then only be learnt from
    the reference, not guessed from the drawing. (The reference alone is never recoloured.)
    """
    view = fit_square(rgb, cfg.size) if deterministic_view else random_truth(rgb, cfg.size, rng, cfg)
    sketch = torch.from_numpy(random_sketch(view, rng, cfg))[None]
    truth = to_tensor(view)
    if cfg.recolour_prob > 0 and rng.random() < cfg.recolour_prob:
        truth = truth[list(PERMUTATIONS[int(rng.integers(len(PERMUTATIONS)))])]
    return {"sketch": sketch, "truth": truth, "reference": augment_reference(truth, rng, cfg),
            "hints": random_hints(truth, rng, cfg)}


class PairDataset(torch.utils.data.Dataset):
    """Folders of colour images -> random training pairs (new randomness on every access).

    Unreadable files are reported once and replaced by another image, so one bad file in a
    studio's folder never stops a long run.
    """

    def __init__(self, roots: Sequence[str | Path] | None = None, cfg: PairConfig = PairConfig(),
                 seed: int = 0, files: Sequence[Path] | None = None):
        self.files = list(files) if files is not None else list_images(roots or [])
        if not self.files:
            raise ValueError(f"no PNG/JPEG/WebP images found in {list(map(str, roots or []))}")
        self.cfg, self.seed = cfg, seed
        self.bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        """A pair from image `index`, at `cfg.size` or at the size given as `(index, size)`."""
        cfg = self.cfg
        if isinstance(index, tuple):
            index, size = index
            cfg = replace(cfg, size=int(size))
        # torch's RNG differs per worker and per epoch, so every access draws a fresh pair.
        rng = np.random.default_rng([self.seed, index, int(torch.randint(0, 2**31 - 1, ()).item())])
        for attempt in range(len(self.files)):
            i = (index + attempt) % len(self.files)
            if i in self.bad:
                continue
            try:
                return make_pair(load_rgb(self.files[i]), rng, cfg)
            except ValueError as exc:
                self.bad.add(i)
                print(f"skipping training image: {exc}")
        raise ValueError("no readable training image left")


class MultiScaleBatches(torch.utils.data.Sampler):
    """Shuffled batches of `(index, size)` with one size per batch, drawn from `sizes`.

    Mixing scales from batch to batch is what lets one network colour a panel at any working size:
    weights trained at a single 64 px scale collapsed to one dark hue at 512.
    """

    def __init__(self, n: int, batch_size: int, sizes: Sequence[int], seed: int = 0):
        self.n, self.batch_size, self.sizes = n, batch_size, [int(s) for s in sizes]
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return max(1, self.n // self.batch_size)

    def __iter__(self):
        order = self.rng.permutation(self.n)
        for start in range(0, max(1, len(order) - self.batch_size + 1), self.batch_size):
            size = int(self.rng.choice(self.sizes))
            yield [(int(i), size) for i in order[start:start + self.batch_size]]


def infinite_loader(dataset: PairDataset, batch_size: int, workers: int = 0, seed: int = 0,
                    sizes: Sequence[int] = ()):
    """Endless iterator of batches (reshuffled every pass); with `sizes`, each batch at one of them."""
    gen = torch.Generator().manual_seed(seed)
    if len(set(sizes)) > 1:
        loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=MultiScaleBatches(len(dataset), batch_size, sizes, seed),
            num_workers=workers, generator=gen, persistent_workers=workers > 0)
    else:
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=batch_size, shuffle=True, drop_last=len(dataset) >= batch_size,
            num_workers=workers, generator=gen, persistent_workers=workers > 0)
    while True:
        yield from loader
