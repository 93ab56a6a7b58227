"""The colouring generator: a residual U-net with a global style hint and two guide decoders, after
Zhang et al. 2017 (style2paints). How the hint enters, what the guides are for and why GroupNorm:
docs/architecture.md, "The networks"."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class GeneratorConfig:
    # Width of each U-net level; level 0 is full resolution, the last is the mid level.
    # depth = len(channels) - 1 downsamplings, so H and W must be multiples of 2**depth.
    channels: tuple[int, ...] = (16, 32, 48, 96, 192)
    # Residual blocks at levels 1 .. depth-1, in the encoder and again in the decoder. High
    # resolution levels are the expensive ones, so the compact model keeps them light.
    level_blocks: tuple[int, ...] = (0, 1, 1)
    mid_blocks: int = 4          # residual blocks at the lowest resolution (style is added here)
    sketch_channels: int = 1
    hint_channels: int = 4       # RGB in [-1, 1] + mask; zeros when no hints are given
    out_channels: int = 3
    style_dim: int = 4096
    style_hidden: int = 2048
    guide_width: int = 128       # guide decoder width at the mid level, halved at each upsampling
    norm_groups: int = 8

    def __post_init__(self):
        self.channels = tuple(int(c) for c in self.channels)
        self.level_blocks = tuple(int(n) for n in self.level_blocks)
        if len(self.channels) < 2:
            raise ValueError("GeneratorConfig.channels needs at least two levels")
        if len(self.level_blocks) != len(self.channels) - 2:
            raise ValueError(f"level_blocks needs {len(self.channels) - 2} entries (levels 1 .. depth-1), "
                             f"got {self.level_blocks}")
        if min(self.channels) < 1:
            raise ValueError(f"channel counts must be positive, got {self.channels}")

    @property
    def depth(self) -> int:
        return len(self.channels) - 1

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        d["level_blocks"] = list(self.level_blocks)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "GeneratorConfig":
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown generator config keys: {sorted(unknown)}")
        return cls(**d)


# Named configurations (figures in docs/benchmarks.md, "Model speed"). "compact" is the shipped,
# CPU-trainable default: 21 GFLOP per 512x512 panel, well under 1 s on 2 CPU cores. "paper" is
# sized like the paper's network: about 150 GFLOP per 512x512 panel, for GPUs.
CONFIGS: dict[str, GeneratorConfig] = {
    "compact": GeneratorConfig(),
    "paper": GeneratorConfig(channels=(32, 64, 128, 256, 512), level_blocks=(0, 1, 1),
                             mid_blocks=6, guide_width=256, norm_groups=32),
    # For tests only: about 70 MFLOP at 64x64, still every part of the architecture.
    "tiny": GeneratorConfig(channels=(8, 16, 32), level_blocks=(1,), mid_blocks=2,
                            style_hidden=64, guide_width=16, norm_groups=4),
}


def generator_config(name_or_config: str | GeneratorConfig | dict) -> GeneratorConfig:
    if isinstance(name_or_config, GeneratorConfig):
        return name_or_config
    if isinstance(name_or_config, dict):
        return GeneratorConfig.from_dict(name_or_config)
    try:
        return replace(CONFIGS[name_or_config])  # a copy: the named configs stay as written
    except KeyError:
        raise ValueError(f"unknown generator config {name_or_config!r}; choose from {sorted(CONFIGS)}") from None


def group_norm(c: int, groups: int) -> nn.Module:
    return nn.GroupNorm(math.gcd(c, groups), c) if groups > 0 else nn.Identity()


def act() -> nn.Module:
    return nn.LeakyReLU(0.2, inplace=False)


class ResBlock(nn.Module):
    """Pre-activation residual block: x + conv(act(norm(conv(act(norm(x) + s))) + s)).

    `style` (a [B, C] bias or None) is added after each normalisation, where it survives.
    """

    def __init__(self, c: int, groups: int):
        super().__init__()
        self.norm1 = group_norm(c, groups)
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.norm2 = group_norm(c, groups)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        self.act = act()

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm1(x)
        if style is not None:
            h = h + style[:, :, None, None]
        h = self.conv1(self.act(h))
        h = self.norm2(h)
        if style is not None:
            h = h + style[:, :, None, None]
        return x + self.conv2(self.act(h))


class Down(nn.Module):
    """Stride-2 3x3 convolution into the next level, then that level's residual blocks."""

    def __init__(self, c_in: int, c_out: int, blocks: int, groups: int):
        super().__init__()
        self.down = nn.Conv2d(c_in, c_out, 3, stride=2, padding=1)
        self.blocks = nn.ModuleList(ResBlock(c_out, groups) for _ in range(blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.down(x)
        for b in self.blocks:
            x = b(x)
        return x


class Up(nn.Module):
    """1x1 conv at low resolution (cheap), nearest upsample (no checkerboard), concatenate the skip,
    merge with a 3x3 conv, then residual blocks."""

    def __init__(self, c_in: int, c_out: int, blocks: int, groups: int):
        super().__init__()
        self.reduce = nn.Conv2d(c_in, c_out, 1)
        self.merge = nn.Conv2d(2 * c_out, c_out, 3, padding=1)
        self.norm = group_norm(2 * c_out, groups)
        self.act = act()
        self.blocks = nn.ModuleList(ResBlock(c_out, groups) for _ in range(blocks))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(self.reduce(x), scale_factor=2.0, mode="nearest")
        x = self.merge(self.act(self.norm(torch.cat([x, skip], dim=1))))
        for b in self.blocks:
            x = b(x)
        return x


class StyleHead(nn.Module):
    """4096-d style hint -> Linear to 2048 -> layer norm without affine -> one bias per mid block."""

    def __init__(self, style_dim: int, hidden: int, c_mid: int, n_blocks: int):
        super().__init__()
        self.fc = nn.Linear(style_dim, hidden)
        self.to_blocks = nn.ModuleList(nn.Linear(hidden, c_mid) for _ in range(n_blocks))

    def forward(self, style: torch.Tensor) -> list[torch.Tensor]:
        h = self.fc(style)
        h = F.layer_norm(h, h.shape[-1:])  # the paper's "global normalisation"
        return [p(h) for p in self.to_blocks]


class GuideDecoder(nn.Module):
    """Training-only decoder from the mid level to full resolution, without skips.

    Width halves as resolution doubles, so each stage costs about the same and the whole decoder
    stays a small fraction of the generator.
    """

    def __init__(self, c_in: int, width: int, depth: int, out_channels: int, groups: int):
        super().__init__()
        widths = [max(width >> i, 4) for i in range(depth + 1)]
        self.inp = nn.Conv2d(c_in, widths[0], 1)
        self.stages = nn.ModuleList(
            nn.Sequential(nn.Upsample(scale_factor=2.0, mode="nearest"),
                          nn.Conv2d(widths[i], widths[i + 1], 3, padding=1),
                          group_norm(widths[i + 1], groups), act())
            for i in range(depth))
        self.out = nn.Conv2d(widths[-1], out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.inp(x)
        for s in self.stages:
            x = s(x)
        return torch.tanh(self.out(x))


class Generator(nn.Module):
    def __init__(self, config: GeneratorConfig | str | dict = "compact"):
        super().__init__()
        cfg = self.config = generator_config(config)
        ch, g, d = cfg.channels, cfg.norm_groups, cfg.depth
        self.stem = nn.Conv2d(cfg.sketch_channels + cfg.hint_channels, ch[0], 3, padding=1)
        blocks = (0,) + cfg.level_blocks + (0,)  # per level; level 0 and the mid level have none here
        self.downs = nn.ModuleList(Down(ch[i], ch[i + 1], blocks[i + 1], g) for i in range(d))
        self.style = StyleHead(cfg.style_dim, cfg.style_hidden, ch[-1], cfg.mid_blocks)
        self.mid = nn.ModuleList(ResBlock(ch[-1], g) for _ in range(cfg.mid_blocks))
        # No normalisation at full resolution: there it costs as much time as the convolutions on
        # a CPU (memory-bound) while the deeper levels already keep activations well scaled.
        self.ups = nn.ModuleList(Up(ch[i + 1], ch[i], blocks[i], g if i > 0 else 0)
                                 for i in reversed(range(d)))
        self.out = nn.Conv2d(ch[0], cfg.out_channels, 3, padding=1)
        self.guide1 = GuideDecoder(ch[-1], cfg.guide_width, d, 1, g)
        self.guide2 = GuideDecoder(ch[-1], cfg.guide_width, d, cfg.out_channels, g)

    @property
    def stride(self) -> int:
        """H and W of every input must be multiples of this."""
        return 2 ** self.config.depth

    def forward(self, sketch: torch.Tensor, style: torch.Tensor, hints: torch.Tensor | None = None,
                return_guides: bool = False):
        """sketch [B,1,H,W] line map in [0,1] (1 = paper); style [B,4096]; hints [B,4,H,W] or None.

        Returns the RGB painting [B,3,H,W] in [-1,1]; with return_guides=True, (out, guide1, guide2)
        where guide1 [B,1,H,W] is the predicted grayscale painting and guide2 [B,3,H,W] the colour one.
        """
        b, _, h, w = sketch.shape
        if h % self.stride or w % self.stride:
            raise ValueError(f"input size {h}x{w} must be a multiple of the generator stride {self.stride}")
        if hints is None:
            hints = sketch.new_zeros(b, self.config.hint_channels, h, w)
        x = self.stem(torch.cat([sketch, hints.to(sketch.dtype)], dim=1))
        skips = []
        for down in self.downs:
            skips.append(x)
            x = down(x)
        g1 = self.guide1(x) if return_guides else None  # mid entry: sketch features only
        for block, s in zip(self.mid, self.style(style.to(x.dtype))):
            x = block(x, s)
        g2 = self.guide2(x) if return_guides else None  # mid exit
        for up, skip in zip(self.ups, reversed(skips)):
            x = up(x, skip)
        out = torch.tanh(self.out(F.leaky_relu(x, 0.2)))
        return (out, g1, g2) if return_guides else out

    def inference_parameters(self):
        """Parameters used by `forward` without guides (what an inference-only file must hold)."""
        return (p for n, p in self.named_parameters() if not n.startswith(("guide1.", "guide2.")))

    def num_params(self, inference_only: bool = True) -> int:
        ps = self.inference_parameters() if inference_only else self.parameters()
        return sum(p.numel() for p in ps)


def count_flops(generator: Generator, size: int = 512, batch: int = 1, return_guides: bool = False) -> int:
    """FLOPs (2 per multiply-add) of one forward pass at size x size, counted by torch's FlopCounterMode.

    A generator built under `torch.device("meta")` is counted without computing anything.
    """
    from torch.utils.flop_counter import FlopCounterMode

    dev = next(generator.parameters()).device
    sk = torch.zeros(batch, generator.config.sketch_channels, size, size, device=dev)
    st = torch.zeros(batch, generator.config.style_dim, device=dev)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        generator(sk, st, return_guides=return_guides)
    return int(fc.get_total_flops())
