"""Generator speed at 512x512: panels/s and achieved TFLOP/s, eager and torch.compile, per config and
batch, run as the Colorizer runs it (figures: docs/benchmarks.md, "Model speed"). On CPU,
`cpu_s/panel` is process CPU time over the thread count (the uncontended time on a shared machine).

    python -m bench.model_speed                       # CPU or CUDA, whichever is there
    python -m bench.model_speed --device cpu --threads 2 --modes eager
    python -m bench.model_speed --device cuda --batches 1,16,64 --peak-tflops 790"""
from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from models.generator import Generator, count_flops

CPU_DEFAULT_BATCHES = {"compact": [1, 4], "paper": [1]}
CUDA_DEFAULT_BATCHES = [1, 16, 64]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(fn, device: torch.device, min_time: float, min_iters: int) -> tuple[float, float, int]:
    """Mean wall seconds and process CPU seconds per call, and the call count."""
    n, wall, cpu = 0, 0.0, 0.0
    while n < min_iters or wall < min_time:
        sync(device)
        t, c = time.perf_counter(), time.process_time()
        fn()
        sync(device)
        wall += time.perf_counter() - t
        cpu += time.process_time() - c
        n += 1
    return wall / n, cpu / n, n


def bench_one(name: str, batch: int, mode: str, device: torch.device, dtype: torch.dtype, size: int,
              args) -> dict:
    gen = Generator(name).eval().to(device, dtype).to(memory_format=torch.channels_last)
    fwd = torch.compile(gen, dynamic=False) if mode == "compiled" else gen
    sk = torch.rand(batch, 1, size, size, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
    st = torch.randn(batch, gen.config.style_dim, device=device, dtype=dtype)
    with torch.inference_mode():
        t = time.perf_counter()
        fwd(sk, st)  # first call: compilation for "compiled", allocation for "eager"
        sync(device)
        first = time.perf_counter() - t
        for _ in range(args.warmup):
            fwd(sk, st)
        wall, cpu, n = measure(lambda: fwd(sk, st), device, args.min_time, args.min_iters)
    return {"first_call_s": first, "wall": wall, "cpu": cpu, "iters": n}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="compact,paper")
    p.add_argument("--batches", default=None, help="comma list; default depends on device (see above)")
    p.add_argument("--modes", default="eager,compiled")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--min-iters", type=int, default=3)
    p.add_argument("--min-time", type=float, default=2.0, help="seconds of timed calls at least")
    p.add_argument("--peak-tflops", type=float, default=None,
                   help="hardware peak for the utilisation column (e.g. 790 for bf16 on an H100)")
    args = p.parse_args()

    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        hw = torch.cuda.get_device_name()
    else:
        hw = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# torch {torch.__version__}; device {device.type} ({hw}); dtype {str(dtype).removeprefix('torch.')}; "
          f"size {args.size}x{args.size}; load average at start {load:.1f}")

    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for name in configs:
        with torch.device("meta"):
            meta_gen = Generator(name)
            flops = count_flops(meta_gen, size=args.size)
            params = meta_gen.num_params()
        print(f"\n## {name}: {flops / 1e9:.1f} GFLOP per {args.size}x{args.size} panel, {params / 1e6:.2f} M parameters "
              f"(inference, without guide decoders)")
        if args.batches:
            batches = [int(b) for b in args.batches.split(",")]
        elif device.type == "cuda":
            batches = CUDA_DEFAULT_BATCHES
        else:
            batches = CPU_DEFAULT_BATCHES.get(name, [1])
        head = f"{'mode':9} {'batch':>5} {'panels/s':>9} {'s/panel':>8} {'cpu_s/panel':>11} {'TFLOP/s':>8}"
        if args.peak_tflops:
            head += f" {'of peak':>7}"
        print(head + f" {'first call s':>12}")
        for mode in modes:
            for b in batches:
                try:
                    r = bench_one(name, b, mode, device, dtype, args.size, args)
                except Exception as exc:  # e.g. out of memory at batch 64, or no compiler for inductor
                    print(f"{mode:9} {b:5d} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
                    continue
                per_panel = r["wall"] / b
                cpu_per_panel = r["cpu"] / b / torch.get_num_threads() if device.type == "cpu" else float("nan")
                tflops = flops * b / r["wall"] / 1e12
                line = (f"{mode:9} {b:5d} {b / r['wall']:9.2f} {per_panel:8.3f} {cpu_per_panel:11.3f} {tflops:8.3f}")
                if args.peak_tflops:
                    line += f" {100 * tflops / args.peak_tflops:6.1f}%"
                print(line + f" {r['first_call_s']:12.1f}", flush=True)


if __name__ == "__main__":
    main()
