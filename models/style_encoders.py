"""Style encoders: a reference image (RGB in [0, 1]) -> the 4096-d global style hint the generator
consumes. `VGG19StyleEncoder` is the paper's (torchvision's layout and weights),
`PaintingStyleEncoder` the default, trained with the generator (docs/architecture.md, "The networks")."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

STYLE_DIM = 4096

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision's VGG19 ("E") layout: numbers are conv widths, "M" a 2x2 max pool.
VGG19_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
                512, 512, 512, 512, "M", 512, 512, 512, 512, "M")


def resize(images: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    size = (size, size) if isinstance(size, int) else size
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)


def check_images(images: torch.Tensor) -> None:
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"style images must be [B,3,H,W] RGB in [0,1], got shape {tuple(images.shape)}")


class VGG19StyleEncoder(nn.Module):
    kind = "vgg19"

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for v in VGG19_LAYOUT:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, v, 3, padding=1), nn.ReLU(inplace=True)]
                c_in = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        # Only fc1 is kept: its pre-ReLU output is the hint, fc2/fc3 would be dead weight.
        self.classifier = nn.Sequential(nn.Linear(512 * 7 * 7, STYLE_DIM))

    @property
    def config(self) -> dict:
        return {}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_images(images)
        mean = torch.tensor(IMAGENET_MEAN, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
        x = (resize(images, 224) - mean) / std
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        return self.classifier[0](x)

    @classmethod
    def from_torchvision_file(cls, path: str | Path) -> "VGG19StyleEncoder":
        """Load torchvision's VGG19 weights (the .pth state dict, or the same keys in .safetensors).

        Keys features.* and classifier.0.* are required with torchvision's shapes; classifier.3
        and classifier.6 (fc2, fc3) are ignored. No network access, ever.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"VGG19 weights not found at {path}: download torchvision's vgg19 state dict "
                "(vgg19-dcbb9e9d.pth) yourself and point PANELPAINT_VGG19_WEIGHTS at it")
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            # The user's own torchvision file; weights_only refuses anything but tensors.
            state = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
                state = state["state_dict"]
        if not isinstance(state, dict):
            raise ValueError(f"{path} does not hold a state dict")
        with torch.device("meta"):  # no point initialising 140M parameters about to be replaced
            model = cls()
        expected = model.state_dict()
        missing = [k for k in expected if k not in state]
        wrong = [f"{k}: {tuple(state[k].shape)} != {tuple(v.shape)}"
                 for k, v in expected.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
        if missing or wrong:
            raise ValueError(f"{path} is not a torchvision VGG19 state dict: "
                             + (f"missing keys {missing[:6]}{'...' if len(missing) > 6 else ''}; " if missing else "")
                             + (f"wrong shapes {wrong[:6]}" if wrong else ""))
        model.load_state_dict({k: state[k].float().contiguous() for k in expected}, strict=True, assign=True)
        return model.eval()


class ConvBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, groups: int = 8):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1)
        self.norm = nn.GroupNorm(min(groups, c_out), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.conv1(x), 0.2)
        return x + self.conv2(F.leaky_relu(self.norm(x), 0.2))


def mean_std(x: torch.Tensor) -> torch.Tensor:
    """Global average and standard deviation pooling: [B,C,H,W] -> [B,2C] (Gram-free style statistics)."""
    return torch.cat([x.mean((2, 3)), x.flatten(2).std(2, unbiased=False)], 1)


def soft_histogram(images: torch.Tensor, bins: int, sharpness: float = 1.0) -> torch.Tensor:
    """Differentiable RGB histogram: each pixel is spread over the bins^3 colour cells by a
    Gaussian of the distance to each cell centre (in bin units), then averaged over the image."""
    b = images.shape[0]
    px = images.flatten(2)  # [B,3,N]
    centres = (torch.arange(bins, device=images.device, dtype=images.dtype) + 0.5) / bins
    w = torch.exp(-0.5 * sharpness * ((px[..., None] - centres) * bins) ** 2)  # [B,3,N,bins]
    w = w / w.sum(-1, keepdim=True).clamp_min(1e-8)
    hist = torch.einsum("bni,bnj,bnk->bijk", w[:, 0], w[:, 1], w[:, 2])
    return hist.reshape(b, -1) / px.shape[-1]


class PaintingStyleEncoder(nn.Module):
    kind = "painting"

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 256), image_size: int = 192,
                 hist_bins: int = 8, hist_size: int = 48, hidden: int = 1024):
        super().__init__()
        self._config = {"widths": list(widths), "image_size": image_size, "hist_bins": hist_bins,
                        "hist_size": hist_size, "hidden": hidden}
        self.image_size, self.hist_bins, self.hist_size = image_size, hist_bins, hist_size
        blocks, c_in = [], 3
        for c in widths:
            blocks.append(ConvBlock(c_in, c, stride=2))
            c_in = c
        self.blocks = nn.ModuleList(blocks)
        # Colour moments of the raw image (mean, std of RGB) + histogram + pooled features.
        d = 6 + hist_bins ** 3 + 2 * sum(widths)
        self.linear = nn.Linear(d, STYLE_DIM)  # short path: statistics straight to the hint
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, STYLE_DIM))

    @property
    def config(self) -> dict:
        return dict(self._config)

    def statistics(self, images: torch.Tensor) -> torch.Tensor:
        x = resize(images, self.image_size) * 2 - 1
        stats = [mean_std(x)]
        small = resize(images, self.hist_size).clamp(0, 1)
        stats.append(soft_histogram(small, self.hist_bins) * (self.hist_bins ** 3) ** 0.5)
        for block in self.blocks:
            x = block(x)
            stats.append(mean_std(x))
        return torch.cat(stats, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_images(images)
        s = self.statistics(images.float())
        return self.linear(s) + self.mlp(s)


ENCODERS = {"painting": PaintingStyleEncoder, "vgg19": VGG19StyleEncoder}


def build_style_encoder(kind: str = "painting", **config) -> nn.Module:
    """A style encoder by kind. kind="vgg19" with weights=PATH loads a torchvision file; without it
    the network is randomly initialised (for loading our own safetensors files into it)."""
    if kind == "vgg19":
        weights = config.pop("weights", None)
        if config:
            raise ValueError(f"unexpected VGG19 options {sorted(config)}")
        return VGG19StyleEncoder.from_torchvision_file(weights) if weights else VGG19StyleEncoder()
    if kind == "painting":
        return PaintingStyleEncoder(**config)
    raise ValueError(f"unknown style encoder {kind!r}; choose from {sorted(ENCODERS)}")
