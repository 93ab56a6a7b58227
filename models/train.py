"""Training: stage 1 (L1 with the two guide decoders, eq. 2) and stage 2 (adversarial fine-tuning,
eq. 5), in a run folder that the same command resumes (docs/training.md)."""
from __future__ import annotations

import contextlib
import json
import math
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from models.checkpoint import load_training_state, save_training_state
from models.colorizer import pick_device
from models.data import PairConfig, PairDataset, infinite_loader, list_images, load_rgb, make_pair
from models.evaluate import build_eval_set, evaluate_method, model_method, sample_grid
from models.generator import Generator, generator_config
from models.style_encoders import build_style_encoder

WEIGHTS_FILE = "weights.safetensors"
STATE_FILE = "state.safetensors"


@dataclass
class TrainConfig:
    data: list[str] = field(default_factory=list)   # folders (or files) of finished colour images
    out: str = "runs/train"
    val: list[str] = field(default_factory=list)    # held-out images for sample grids / periodic eval
    generator: str = "compact"                      # named GeneratorConfig
    generator_overrides: dict = field(default_factory=dict)  # fields replaced in it, e.g. {"norm_groups": 1}
    style_encoder: dict = field(default_factory=lambda: {"kind": "painting"})
    init: str | None = None                          # start from these weights (fine-tuning)
    size: int = 128
    sizes: list[int] = field(default_factory=list)   # train at a size drawn per batch from these (multi-scale)
    batch_size: int = 8
    steps: int = 1000                                # total steps of this run (resume continues to it)
    lr: float = 1e-3
    lr_min: float = 1e-4                             # cosine decay to this
    style_lr_scale: float = 0.1                      # the style encoder's learning rate relative to lr
    warmup: int = 50
    weight_decay: float = 1e-4
    guides: bool = True                              # False = the ablation without guide decoders
    alpha: float = 0.3                               # eq. 2: weight of guide 1 (grayscale)
    beta: float = 0.9                                # eq. 2: weight of guide 2 (colour)
    colour_lambda: float = 0.0                       # weight of the colour-distribution term (losses)
    stage: int = 1                                   # 2 = adversarial fine-tuning
    discriminator: str = "acgan"                     # or "dcgan"
    gan_lambda: float = 0.01                         # eq. 5
    lr_d: float = 2e-4
    d_widths: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    hint_prob: float = 0.5
    recolour_prob: float = 0.0                       # see models.data.make_pair
    workers: int = 0
    log_every: int = 10
    sample_every: int = 200
    checkpoint_every: int = 100
    keep_every: int = 0                              # also keep weights_step_N.safetensors every N steps
    eval_every: int = 0                              # 0 = never during training
    eval_images: int = 48
    seed: int = 0
    threads: int = 0                                 # torch CPU threads; 0 = torch's default
    version: str = "0.1.0"

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


def lr_at(step: int, cfg: TrainConfig, base: float) -> float:
    """Linear warm-up, then cosine decay from `base` to lr_min * base / lr over the run."""
    if step < cfg.warmup:
        return base * (step + 1) / cfg.warmup
    t = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    low = cfg.lr_min * base / cfg.lr
    return low + 0.5 * (base - low) * (1 + math.cos(math.pi * t))


def sample_references(files, cfg: TrainConfig, n: int = 32) -> torch.Tensor:
    """[n,3,S,S] augmented self-references of randomly chosen training images (seeded by cfg.seed)."""
    rng = np.random.default_rng(cfg.seed)
    refs = []
    for i in rng.choice(len(files), size=min(n, len(files)), replace=False):
        try:
            refs.append(make_pair(load_rgb(files[i]), rng, PairConfig(size=cfg.size))["reference"])
        except ValueError:
            continue  # unreadable files are reported (and skipped) by the data set later
    return torch.stack(refs) if refs else torch.zeros(0, 3, cfg.size, cfg.size)


@torch.no_grad()
def standardise_style(encoder: torch.nn.Module, references: torch.Tensor) -> None:
    """Data-dependent initialisation of a fresh painting style encoder: rescale its two output layers
    so that, over a sample of training references, every style feature has zero mean and unit spread.

    At random initialisation the 4096-d vector is dominated by a component shared by all images
    (its statistics include the white paper every drawing has); after the generator's dense layer
    and global normalisation the differences between references shrank to ~1% in our first run, and
    the generator learnt to ignore the style (reference-following rate exactly 50% after 200 steps).
    Centring removes that shared part from the start.
    """
    if not (hasattr(encoder, "linear") and hasattr(encoder, "mlp")) or len(references) < 2:
        return
    y = encoder(references)
    mu, sigma = y.mean(0), y.std(0).clamp_min(1e-3)
    for layer in (encoder.linear, encoder.mlp[-1]):
        layer.weight.div_(sigma[:, None])
        layer.bias.div_(sigma)
    encoder.linear.bias.sub_(mu / sigma)


class Trainer:
    """Holds the networks, optimisers and data of one run; `step()` does one optimisation step."""

    def __init__(self, cfg: TrainConfig, device: torch.device | None = None):
        from models import losses, weights_io

        self.cfg, self.losses, self.weights_io = cfg, losses, weights_io
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "samples").mkdir(exist_ok=True)
        self.device = device or pick_device()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)

        resume = (self.out / WEIGHTS_FILE).exists() and (self.out / STATE_FILE).exists()
        source = self.out / WEIGHTS_FILE if resume else (Path(cfg.init) if cfg.init else None)
        if source is not None:
            self.generator, self.encoder, meta = weights_io.load_weights(source)
        else:
            self.generator = Generator(generator_config(cfg.generator).to_dict() | cfg.generator_overrides)
            enc = dict(cfg.style_encoder)
            self.encoder = build_style_encoder(enc.pop("kind", "painting"), **enc)
        files = list_images(cfg.data)
        if source is None:
            standardise_style(self.encoder, sample_references(files, cfg))
        self.generator.to(self.device).train()
        self.encoder.to(self.device).train()
        g_params = [p for n, p in self.generator.named_parameters()
                    if cfg.guides or not n.startswith(("guide1.", "guide2."))]
        # The fused kernel is ~10x faster on CPU, where the 4096x2048 style layers make the step costly.
        fused = self.device.type in ("cpu", "cuda")
        # The style encoder learns at a fraction of the rate: its statistics feed 4096-d dense layers
        # without normalisation, and at the full rate its features grew 40x in 100 steps, burying the
        # differences between references under a shared component (the generator then ignores them).
        self.opt_g = torch.optim.AdamW(
            [{"params": g_params, "lr_scale": 1.0},
             {"params": list(self.encoder.parameters()), "lr_scale": cfg.style_lr_scale}],
            lr=cfg.lr, betas=(0.9, 0.99), weight_decay=cfg.weight_decay, fused=fused)
        self.discriminator = None
        self.opt_d = None
        if cfg.stage == 2:
            from models.discriminators import ACGANDiscriminator, DCGANDiscriminator

            kinds = {"acgan": ACGANDiscriminator, "dcgan": DCGANDiscriminator}
            if cfg.discriminator not in kinds:
                raise ValueError(f"unknown discriminator {cfg.discriminator!r}; choose from {sorted(kinds)}")
            self.discriminator = kinds[cfg.discriminator](widths=tuple(cfg.d_widths)).to(self.device).train()
            self.opt_d = torch.optim.AdamW(self.discriminator.parameters(), lr=cfg.lr_d, betas=(0.5, 0.99),
                                           weight_decay=0.0, fused=fused)
        self.step_count = 0
        if resume:
            optims = {"g": self.opt_g} | ({"d": self.opt_d} if self.opt_d else {})
            modules = {"guides": self._guides()} | ({"d": self.discriminator} if self.discriminator else {})
            meta = load_training_state(self.out / STATE_FILE, optimizers=optims, modules=modules, optional=("d",))
            self.step_count = int(meta["step"])
        (self.out / "config.json").write_text(json.dumps(asdict(cfg), indent=1))

        self.dataset = PairDataset(files=files, cfg=PairConfig(size=cfg.size, hint_prob=cfg.hint_prob,
                                                                 recolour_prob=cfg.recolour_prob),
                                   seed=cfg.seed + self.step_count)
        self.loader = infinite_loader(self.dataset, cfg.batch_size, cfg.workers, seed=cfg.seed + self.step_count,
                                      sizes=cfg.sizes)
        self.val_items = build_eval_set(list_images(cfg.val), size=cfg.size, limit=cfg.eval_images) if cfg.val else []
        self.autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if self.device.type == "cuda"
                         else contextlib.nullcontext())

    def _guides(self) -> torch.nn.Module:
        return torch.nn.ModuleDict({"guide1": self.generator.guide1, "guide2": self.generator.guide2})

    # ------------------------------------------------------------------ one step

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        cfg, dev = self.cfg, self.device
        sketch = batch["sketch"].to(dev, non_blocking=True)
        truth = batch["truth"].to(dev, non_blocking=True) * 2 - 1
        reference = batch["reference"].to(dev, non_blocking=True)
        hints = batch["hints"].to(dev, non_blocking=True)
        for group in self.opt_g.param_groups:
            group["lr"] = lr_at(self.step_count, cfg, cfg.lr) * group.get("lr_scale", 1.0)
        logs: dict[str, float] = {}

        with self.autocast:
            style = self.encoder(reference)
            if cfg.guides:
                out, g1, g2 = self.generator(sketch, style, hints, return_guides=True)
                loss, terms = self.losses.guided_l1_loss(out.float(), g1.float(), g2.float(), truth,
                                                         alpha=cfg.alpha, beta=cfg.beta)
            else:
                out = self.generator(sketch, style, hints)
                loss = F.l1_loss(out.float(), truth)
                terms = {"l1_out": loss.detach()}
            logs.update({k: float(v) for k, v in terms.items() if k != "total"})
            if cfg.colour_lambda > 0:
                colour, _ = self.losses.colour_distribution_loss(out, truth)
                loss = loss + cfg.colour_lambda * colour
                logs["colour"] = float(colour.detach())
            if self.discriminator is not None:
                logs.update(self._discriminator_step(out.detach().float(), truth))
                gan, gan_terms = self._generator_gan(out.float(), style.float())
                logs.update({f"g_{k}" if not k.startswith("g_") else k: float(v)
                             for k, v in gan_terms.items() if k != "total"})
                loss, _ = self.losses.generator_loss(loss, gan, lam=cfg.gan_lambda)
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in self.opt_g.param_groups for p in g["params"]], 1.0)
        self.opt_g.step()
        self.step_count += 1
        logs["loss"] = float(loss.detach())
        logs["lr"] = self.opt_g.param_groups[0]["lr"]
        return logs

    def _style_target(self, truth_pm1: torch.Tensor) -> torch.Tensor:
        """AC-GAN target of a real painting: its style vector V(y) by our encoder (no gradient)."""
        with torch.no_grad():
            return self.encoder((truth_pm1 + 1) / 2).float()

    def _discriminator_step(self, fake: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
        """One update of D on real truths and (detached) generated paintings; eq. (3) or (4)."""
        for group in self.opt_d.param_groups:
            group["lr"] = lr_at(self.step_count, self.cfg, self.cfg.lr_d)
        d = self.discriminator
        if self.cfg.discriminator == "acgan":
            loss, terms = self.losses.acgan_d_loss(d(real), d(fake), self._style_target(real))
        else:
            loss, terms = self.losses.dcgan_d_loss(d(real), d(fake))
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        return {f"d_{k}" if not k.startswith("d_") else k: float(v) for k, v in terms.items()}

    def _generator_gan(self, fake: torch.Tensor, style: torch.Tensor):
        """The generator's GAN term; for AC-GAN the discriminator must read the reference's style in the output."""
        if self.cfg.discriminator == "acgan":
            return self.losses.acgan_g_loss(self.discriminator(fake), style)
        return self.losses.dcgan_g_loss(self.discriminator(fake))

    # ------------------------------------------------------------------ files

    def save(self) -> None:
        """Weights (loadable by the Colorizer) and the training state, each written atomically."""
        self.weights_io.save_weights(self.out / WEIGHTS_FILE, self.generator, self.encoder, version=self.cfg.version,
                                     extra_meta={"step": self.step_count, "stage": self.cfg.stage,
                                                 "guides": self.cfg.guides})
        optims = {"g": self.opt_g} | ({"d": self.opt_d} if self.opt_d else {})
        modules = {"guides": self._guides()} | ({"d": self.discriminator} if self.discriminator else {})
        save_training_state(self.out / STATE_FILE, step=self.step_count, optimizers=optims, modules=modules,
                            extra={"config": asdict(self.cfg)})

    def method(self):
        return model_method(self.generator, self.encoder)

    def write_samples(self) -> Path | None:
        if not self.val_items:
            return None
        path = self.out / "samples" / f"step_{self.step_count:06d}.png"
        sample_grid(self.method(), self.val_items[:6]).save(path)
        self.generator.train()
        self.encoder.train()
        return path

    def evaluate(self) -> dict[str, float]:
        res = evaluate_method(self.method(), self.val_items)
        self.generator.train()
        self.encoder.train()
        return res

    # ------------------------------------------------------------------ the loop

    def run(self, progress: bool = True) -> dict[str, float]:
        from tqdm import tqdm

        cfg = self.cfg
        metrics = (self.out / "metrics.jsonl").open("a")
        # `kill PID` (SIGTERM) stops a background run like Ctrl-C does: checkpoint first, then exit.
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        bar = tqdm(total=cfg.steps, initial=self.step_count, disable=not progress, unit="step",
                   dynamic_ncols=True, mininterval=2.0)
        last: dict[str, float] = {}
        t0, seen = time.perf_counter(), 0
        try:
            while self.step_count < cfg.steps:
                batch = next(self.loader)
                logs = self.step(batch)
                seen += batch["sketch"].shape[0]
                ips = seen / max(time.perf_counter() - t0, 1e-9)
                bar.update(1)
                bar.set_postfix(loss=f"{logs['loss']:.4f}", img_s=f"{ips:.1f}")
                last = logs
                s = self.step_count
                if s % cfg.log_every == 0 or s == cfg.steps:
                    rec = {"step": s, "time": time.time(), "images_per_s": ips, **logs}
                    metrics.write(json.dumps(rec) + "\n")
                    metrics.flush()
                if cfg.eval_every and s % cfg.eval_every == 0 and self.val_items:
                    rec = {"step": s, "time": time.time(), **{f"val_{k}": v for k, v in self.evaluate().items()}}
                    metrics.write(json.dumps(rec) + "\n")
                    metrics.flush()
                    bar.write(f"step {s}: " + ", ".join(f"{k}={v:.4g}" for k, v in rec.items() if k.startswith("val_")))
                if s % cfg.checkpoint_every == 0 or s == cfg.steps:
                    self.save()
                if cfg.keep_every and s % cfg.keep_every == 0:
                    self.weights_io.save_weights(self.out / f"weights_step_{s:06d}.safetensors", self.generator,
                                                 self.encoder, version=cfg.version,
                                                 extra_meta={"step": s, "stage": cfg.stage, "guides": cfg.guides})
                if s % cfg.sample_every == 0 or s == cfg.steps:
                    self.write_samples()
        except KeyboardInterrupt:
            bar.write("interrupted: saving a checkpoint to resume from")
            self.save()
            raise
        finally:
            bar.close()
            metrics.close()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        return last


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def train(cfg: TrainConfig, device: torch.device | None = None, progress: bool = True) -> Trainer:
    trainer = Trainer(cfg, device)
    trainer.run(progress=progress)
    return trainer
