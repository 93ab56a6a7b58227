"""Training speed: images/s of one full stage-1 (or stage-2) optimisation step at 256x256.

    python -m bench.train_speed [--device cpu|cuda] [--size 256] [--batch 8] [--steps 5] [--threads N]

Times `Trainer.step` (style encoder + generator with both guide decoders + eq. 2 loss + backward +
fused AdamW; bf16 autocast on CUDA) on synthetic batches, so data loading is measured separately
(the last line: pairs made per second by the on-the-fly pair pipeline, one process).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from models.data import PairConfig, make_pair
from models.train import Trainer, TrainConfig


def synthetic_batch(batch: int, size: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    hints = torch.zeros(batch, 4, size, size)
    hints[:, :, ::17, ::23] = 1.0
    return {"sketch": (torch.rand(batch, 1, size, size, generator=g) > 0.1).float(),
            "truth": torch.rand(batch, 3, size, size, generator=g),
            "reference": torch.rand(batch, 3, size, size, generator=g), "hints": hints}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--config", default="compact")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--stage", type=int, default=1, choices=[1, 2])
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    with tempfile.TemporaryDirectory() as tmp:
        img = (np.random.default_rng(0).random((args.size, args.size, 3)) * 255).astype(np.uint8)
        Image.fromarray(img).save(Path(tmp) / "a.png")
        cfg = TrainConfig(data=[tmp], out=str(Path(tmp) / "run"), generator=args.config, size=args.size,
                          batch_size=args.batch, steps=10**9, stage=args.stage,
                          style_encoder={"kind": "painting", "image_size": args.size})
        trainer = Trainer(cfg, device)
        batch = synthetic_batch(args.batch, args.size)
        for _ in range(args.warmup):
            trainer.step(batch)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            trainer.step(batch)
        if device.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0

        rgb = (np.random.default_rng(1).random((args.size * 2, args.size * 2, 3)) * 255).astype(np.uint8)
        rng = np.random.default_rng(0)
        n, t1 = 8, time.perf_counter()
        for _ in range(n):
            make_pair(rgb, rng, PairConfig(size=args.size))
        pairs_per_s = n / (time.perf_counter() - t1)

    ips = args.steps * args.batch / dt
    print(f"device={device.type} threads={torch.get_num_threads()} config={args.config} stage={args.stage} "
          f"size={args.size} batch={args.batch}")
    print(f"train step: {dt / args.steps:.3f} s/step, {ips:.2f} images/s")
    print(f"pair pipeline: {pairs_per_s:.1f} pairs/s per data-loader process")


if __name__ == "__main__":
    main()
