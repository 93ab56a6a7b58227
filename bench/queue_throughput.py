"""Pages/s end to end through Redis and real Celery workers, against the same pipeline run in-process
(`--sections`: latency, scaling, codec; what each measures: docs/benchmarks.md, "Queue throughput").
Everything runs on a private redis-server, a SQLite store and storage in a temporary folder.

    python -m bench.queue_throughput                          # CPU, A5: latency and 1 -> 2 scaling
    python -m bench.queue_throughput --a4 --pages 4 --latency-pages 2
    python -m bench.queue_throughput --sections codec --a4 --pages 8
    python -m bench.queue_throughput --sections codec --a4 --pages 48 --device cuda --render-procs 2  # GPU host"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from panelpaint.formats import Output
from tests.panelpaint.comic_pages import grid_page, style_png
from tests.testkit import ROOT, Processes, RedisServer, random_weights

A5_150 = (874, 1240)
A4_300 = (2480, 3508)
FORMATS = [f.value for f in Output]  # every output
# What the tasks time inside themselves (render: claim and load incl. decode, panels, model;
# finish: load incl. decode, upsampling, compositing, encode); the rest of a page's wall time,
# the writing of the hand-off file included, is queue.
WORK_KEYS = ("claim_and_load", "panels", "model", "finish_load", "flats", "compositing", "encode")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def ts(t) -> float:
    import datetime as dt

    return (t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)).timestamp()


# --- in-process reference rates ----------------------------------------------------------------


def local_rates(pages: list[bytes], style: Image.Image, weights: Path, work_size: int, device: str,
                out: Path) -> tuple[float, float]:
    """(model-only pages/s, local pages/s with outputs encoded), in this process."""
    from models.colorizer import Colorizer
    from panelpaint.images import open_image
    from panelpaint.pages import render_page, write_outputs

    colorizer = Colorizer.from_file(weights, device=device)
    render_page(open_image(pages[0]), style, colorizer, work_size=work_size, seed=0)  # warm-up
    decoded = [open_image(p) for p in pages]
    t = time.perf_counter()
    for i, img in enumerate(decoded):
        render_page(img, style, colorizer, work_size=work_size, seed=i)
    model_only = len(pages) / (time.perf_counter() - t)
    t = time.perf_counter()
    for i, img in enumerate(decoded):
        result = render_page(img, style, colorizer, work_size=work_size, seed=i)
        write_outputs(result, out / f"p{i}", set(FORMATS))
    local = len(pages) / (time.perf_counter() - t)
    return model_only, local


def codec_cost(pages: list[bytes], style: Image.Image, weights: Path, work_size: int, device: str,
               out: Path) -> dict[str, float]:
    """Median process CPU seconds per page of each stage around the model, and the model's own."""
    from models.colorizer import Colorizer
    from panelpaint import pages as pipeline
    from panelpaint.images import open_image, to_gray

    colorizer = Colorizer.from_file(weights, device=device)
    rows: list[dict[str, float]] = []
    for i, data in enumerate([pages[0], *pages]):  # the first run warms up and is dropped
        row: dict[str, float] = {}

        def timed(name, fn, *a, **kw):
            c = time.process_time()
            value = fn(*a, **kw)
            row[name] = row.get(name, 0.0) + time.process_time() - c
            return value

        img = timed("decode", open_image, data)
        prepared = timed("panels", pipeline.prepare_page, img, style, work_size=work_size)
        (colours,) = timed("model", pipeline.colour_pages, [prepared], colorizer, work_size=work_size)
        lines = timed("decode", lambda: to_gray(open_image(data)))  # the finishing stage decodes again
        result = timed("finish", pipeline.finish_page, lines, prepared.panels, prepared.boxes, colours)
        timed("encode", pipeline.write_outputs, result, out / f"c{i}", set(FORMATS))
        rows.append(row)
    rows = rows[1:]
    cost = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    cost["codec"] = sum(v for k, v in cost.items() if k != "model")
    return cost


# --- the service -------------------------------------------------------------------------------


class Service:
    """Private Redis + SQLite store + storage, and worker processes started like `panelpaint worker`."""

    def __init__(self, directory: Path, weights: Path, work_size: int, device: str):
        from panelpaint.settings import load_settings
        from panelpaint.store import accounts, styles
        from panelpaint.store.db import Store
        from migrations.runner import upgrade
        from panelpaint.store.storage import LocalStorage

        self.dir = directory
        self.redis = RedisServer(directory / "redis", appendonly=False)
        self.redis.start()
        url, db = self.redis.url, f"sqlite:///{directory / 'store.db'}"
        upgrade(db)
        self.env = {**os.environ, "REDIS_URL": url, "DATABASE_URL": db, "STORAGE_ROOT": str(directory / "storage"),
                    "PANELPAINT_VAR_DIR": str(directory / "var"), "PANELPAINT_WEIGHTS": str(weights),
                    "PANELPAINT_DEVICE": device, "PANELPAINT_WORK_SIZE": str(work_size), "PYTHONPATH": str(ROOT)}
        self.settings = load_settings(redis_url=url, database_url=db, var_dir=directory / "var",
                                      storage_root=directory / "storage")
        self.store, self.storage = Store(db), LocalStorage(directory / "storage")
        self.processes = Processes(directory)  # worker-N.log each
        self.started = 0
        with self.store.session() as s:
            self.studio_id = accounts.create_studio(s, "bench").id
            key = self.storage.put_bytes(style_png(256), ".png")
            self.style_id = styles.add_style_reference(s, self.studio_id, "style", [], key, 256, 256).id

    def start_worker(self, queues: str, concurrency: int, threads: int) -> None:
        """One worker process consuming `queues` with `concurrency` pool children of `threads` torch
        and OpenCV threads each."""
        env = {**self.env, "OMP_NUM_THREADS": str(threads), "OPENCV_FOR_THREADS_NUM": str(threads)}
        name = f"worker-{self.started}"
        self.started += 1
        self.processes.start(name, [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", "-Q", queues,
                                    "-c", str(concurrency), "-n", f"bench{self.started}@%h", "-l", "INFO",
                                    "--without-gossip", "--without-mingle"], env, stop_timeout=120, cwd=ROOT)

    @property
    def workers(self) -> list[subprocess.Popen]:
        return [c.proc for c in self.processes.children]

    def wait_ready(self, render_children: int) -> None:
        from panelpaint import queue

        deadline = time.monotonic() + 300
        while len(queue.live_workers(self.settings, 0.5)) < len(self.workers):
            if time.monotonic() > deadline:
                raise SystemExit("workers did not start; see " + str(self.dir))
            time.sleep(0.5)
        # Ready once every render child has loaded and warmed its model.
        while sum(self.processes.log(c.name).count("warmed up") for c in self.processes.children) < render_children:
            if time.monotonic() > deadline:
                raise SystemExit("models did not load; see " + str(self.dir))
            time.sleep(0.3)

    def stop_workers(self) -> None:
        self.processes.stop()

    def submit(self, pages: list[bytes]) -> list[tuple[int, float]]:
        """Queue one render per page (commit, then enqueue), with panel detection for each page
        sent first, as the dashboard does; returns [(render_id, submit time)]."""
        from panelpaint import queue
        from panelpaint.store import batches, renders

        with self.store.session() as s:
            batch = batches.create_batch(s, self.studio_id, None, f"b{time.monotonic_ns()}",
                                         default_style_id=self.style_id, options={"formats": FORMATS})
            jobs = []
            for i, data in enumerate(pages):
                key = self.storage.put_bytes(data, ".png")
                w, h = Image.open(self.storage.local_path(key)).size
                page = batches.add_page(s, batch.id, f"page-{i}.png", key, w, h)
                # As the dashboard does: the canonical colouring, so that the pages may share a
                # forward pass (pages with different seeds never do).
                r = renders.queue_new_page(s, page.id)
                jobs.append((r.id, r.task_id, page.id))
        out = []
        t = time.time()
        for _, _, page_id in jobs:
            queue.enqueue_ingest(self.settings, page_id)
        for render_id, task_id, _ in jobs:
            queue.enqueue_render(self.settings, render_id, task_id)
            out.append((render_id, t))
        return out

    def wait(self, ids: list[int], timeout: float = 3600):
        import sqlalchemy as sa

        from panelpaint.store.schema import Render, RunStatus

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.store.session() as s:
                rows = list(s.scalars(sa.select(Render).where(Render.id.in_(ids))))
                if all(r.status in (RunStatus.succeeded, RunStatus.failed) for r in rows):
                    bad = [(r.id, r.error) for r in rows if r.status != RunStatus.succeeded]
                    if bad:
                        raise SystemExit(f"renders failed: {bad}")
                    for r in rows:
                        s.expunge(r)
                    return {r.id: r for r in rows}
            time.sleep(0.2)  # the times come from the job store's rows, not from this loop
        raise SystemExit("timed out")

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds used so far by the worker processes (pool children included) and Redis."""
        import psutil

        def total(pids: list[int]) -> float:
            out = 0.0
            for pid in pids:
                try:
                    p = psutil.Process(pid)
                    for q in [p, *p.children(recursive=True)]:
                        t = q.cpu_times()
                        out += t.user + t.system
                except psutil.NoSuchProcess:
                    pass
            return out

        def own(pid: int) -> float:
            try:
                t = psutil.Process(pid).cpu_times()
                return t.user + t.system
            except psutil.NoSuchProcess:
                return 0.0

        pids = [w.pid for w in self.workers]
        return {"workers": total(pids), "worker parents": sum(own(p) for p in pids), "redis": total([self.redis.proc.pid]),
                **{f"worker {i}": total([p]) for i, p in enumerate(pids)}}

    def burst(self, pages: list[bytes]) -> tuple[float, dict]:
        """Submit all pages at once; (pages/s from the first submit to the last completion, renders)."""
        before = self.cpu_seconds()
        jobs = self.submit(pages)
        t0 = min(t for _, t in jobs)
        done = self.wait([r for r, _ in jobs])
        t1 = max(ts(r.finished_at) for r in done.values())
        after = self.cpu_seconds()
        cpu = {k: (after[k] - before[k]) / len(jobs) for k in after}
        return len(jobs) / (t1 - t0), {"jobs": jobs, "done": done, "seconds": t1 - t0, "cpu_per_page": cpu}

    def close(self) -> None:
        self.stop_workers()
        self.store.dispose()
        self.redis.stop()


# --- sections ----------------------------------------------------------------------------------


def section_latency(svc: Service, pages: list[bytes], n: int, cores: int) -> None:
    # As `panelpaint up` runs them: a render worker (one child) and an io worker (a child per core).
    svc.start_worker("render", 1, cores)
    svc.start_worker("io", cores, 1)
    svc.wait_ready(1)
    lat, overhead, done = [], [], []
    for i in range(n):
        ((rid, t_submit),) = svc.submit([pages[i]])
        r = svc.wait([rid])[rid]
        wall = ts(r.finished_at) - t_submit
        work = sum(v for k, v in r.timings.items() if k in WORK_KEYS)
        lat.append(ts(r.started_at) - t_submit)
        overhead.append(max(0.0, wall - work) / wall)
        done.append(r)
    svc.stop_workers()
    stages = {k: statistics.median(r.timings.get(k, 0.0) for r in done) for k in WORK_KEYS}
    print("median seconds per page inside the tasks: " + ", ".join(f"{k} {v:.3f}" for k, v in stages.items()))
    print(f"submit-to-start (idle worker): p50 {pct(lat, 50) * 1000:.0f} ms, p95 {pct(lat, 95) * 1000:.0f} ms")
    print(f"queue overhead: {statistics.median(overhead) * 100:.1f} % of a page's wall time (median), "
          f"p95 {pct(overhead, 95) * 100:.1f} %")


def section_scaling(svc: Service, pages: list[bytes], cores: int, local: float, model_only: float,
                    a4: bool) -> None:
    """Worker processes consuming both queues, one child each: 1 and 2 processes of one thread
    (the horizontal scaling of the queue: each process brings one core), then 1 process with all
    the cores' threads, for comparison with the in-process rates."""
    rates = {}
    for procs, threads in ((1, 1), (2, 1), (1, cores)):
        for _ in range(procs):
            svc.start_worker("render,io", 1, threads)
        svc.wait_ready(procs)
        rates[procs, threads], run = svc.burst(pages)
        burst_lat = [ts(run["done"][r].started_at) - t for r, t in run["jobs"]]
        print(f"{procs} worker process{'es' if procs > 1 else ''} x {threads} thread{'s' if threads > 1 else ''}: "
              f"{rates[procs, threads]:.3f} pages/s ({len(pages)} pages in {run['seconds']:.1f} s; "
              f"submit-to-start in the burst p50 {pct(burst_lat, 50):.1f} s, p95 {pct(burst_lat, 95):.1f} s)")
        svc.stop_workers()
    machine = plain_rate(len(pages), 2, a4) / plain_rate(len(pages), 1, a4)
    print(f"scaling 1 -> 2 processes (one thread each): x{rates[2, 1] / rates[1, 1]:.2f}; the same pages "
          f"through the pipeline in 1, then 2 plain processes at once (no queue): x{machine:.2f}, so the queue "
          f"keeps {rates[2, 1] / rates[1, 1] / machine * 100:.0f} % of what this machine's second core gives")
    one = rates[1, cores]
    print(f"1 process x {cores} threads against the same pipeline in-process: {one / local:.2f} of the rate with "
          f"outputs, {one / model_only:.2f} of the model-only rate")


def plain_rate(n: int, procs: int, a4: bool, config: str = "compact", work_size: int = 512) -> float:
    """Pages/s of `procs` single-threaded plain processes running the pipeline in-process at once
    (n/procs pages each, no queue): what this machine's cores give together, which a queue of
    that many worker processes can at best match (vCPUs often share an FPU or memory bandwidth)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENCV_FOR_THREADS_NUM": "1"}
    argv = [sys.executable, __file__, "--in-process", str(n // procs), "--config", config,
            "--work-size", str(work_size)] + (["--a4"] if a4 else [])
    children = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True) for _ in range(procs)]
    seconds = [float(c.communicate()[0].split()[-1]) for c in children]
    if any(c.returncode for c in children):
        raise SystemExit("the in-process pipeline failed")
    return (n // procs) * procs / max(seconds)


def in_process(n: int, a4: bool, config: str, work_size: int) -> None:
    """`--in-process N`: N synthetic pages through render_page and write_outputs on one thread,
    after a warm-up page; prints the seconds they took."""
    import torch

    from models.colorizer import Colorizer
    from panelpaint.images import open_image
    from panelpaint.pages import render_page, write_outputs

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="pp-bench-inproc-"))
    try:
        weights = random_weights(tmp / f"{config}.safetensors", config, version=f"bench-{config}")
        colorizer = Colorizer.from_file(weights, device="cpu")
        style = Image.open(io.BytesIO(style_png(256))).convert("RGB")
        pages = [grid_page(A4_300 if a4 else A5_150, 3, 2, seed=i) for i in range(n + 1)]
        render_page(open_image(pages[0]), style, colorizer, work_size=work_size)
        t = time.perf_counter()
        for i, data in enumerate(pages[1:]):
            write_outputs(render_page(open_image(data), style, colorizer, work_size=work_size, seed=i),
                          tmp / f"p{i}", set(FORMATS))
        print(time.perf_counter() - t)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def section_codec(svc: Service, pages: list[bytes], measure_cost, cores: int, render_procs: int,
                  io_procs: int, plain=None) -> None:  # noqa: ANN001 - plain() -> pages/s, or None
    """`measure_cost()` gives the in-process CPU cost per page; it is measured before and after the
    service's run and averaged, so a drift in this machine's speed weighs on both sides alike."""
    before = measure_cost()
    svc.start_worker("render", render_procs, 1)
    svc.start_worker("io", io_procs, 1)
    svc.wait_ready(render_procs)
    rate, run = svc.burst(pages)
    svc.stop_workers()
    after = measure_cost()
    cost = {k: (before[k] + after[k]) / 2 for k in before}
    print(f"in-process CPU seconds per page around the model: {before['codec']:.2f} before the service's run, "
          f"{after['codec']:.2f} after")
    per_core = 1.0 / cost["codec"]
    bound = cores * per_core
    print("CPU seconds per page around the model (median, in-process, mean of both): "
          + ", ".join(f"{k} {v:.3f}" for k, v in cost.items() if k not in ("codec", "model"))
          + f"; total {cost['codec']:.2f} -> {per_core:.3f} pages per core-second")
    print(f"model (the GPU's part): {cost['model'] * 1000:.0f} ms CPU per page")
    print(f"codec-bound rate: {cores} cores x {per_core:.3f} = {bound:.3f} pages/s")
    done = run["done"].values()
    stages = {k: statistics.median(r.timings.get(k, 0.0) for r in done) for k in WORK_KEYS}
    print(f"service: {render_procs} render + {io_procs} io processes: {rate:.3f} pages/s "
          f"({len(pages)} pages in {run['seconds']:.1f} s) = {rate / bound * 100:.0f} % of the codec-bound rate")
    if plain is not None:
        together = plain()
        print(f"  the same pipeline in {cores} plain processes at once (no queue): {together:.3f} pages/s, "
              f"{together / bound * 100:.0f} % of the codec-bound rate; the service reaches "
              f"{rate / together * 100:.0f} % of it")
    cpu = run["cpu_per_page"]
    print(f"  CPU seconds per page in the service: workers {cpu['workers']:.2f} (render {cpu['worker 0']:.2f}, "
          f"io {cpu['worker 1']:.2f}, of which their parent processes {cpu['worker parents']:.2f}; the codec work "
          f"in-process: {cost['codec']:.2f}, the model {cost['model']:.2f}), Redis {cpu['redis']:.3f}")
    print("  median seconds per page inside the tasks: " + ", ".join(f"{k} {v:.3f}" for k, v in stages.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sections", default="latency,scaling", help="comma-separated: latency, scaling, codec")
    ap.add_argument("--pages", type=int, default=8, help="pages per burst")
    ap.add_argument("--latency-pages", type=int, default=6, help="pages sent one at a time for latency")
    ap.add_argument("--a4", action="store_true", help="A4 at 300 dpi instead of A5 at 150 dpi")
    ap.add_argument("--work-size", type=int, default=None,
                    help="network work size (default 512; 128 for the codec section's CPU stand-in)")
    ap.add_argument("--device", default="cpu", help="cpu, or cuda on a GPU host (codec section)")
    ap.add_argument("--render-procs", type=int, default=1, help="render worker processes (codec section)")
    ap.add_argument("--io-procs", type=int, default=0, help="io worker processes (codec section; 0 = cores)")
    ap.add_argument("--in-process", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--config", default="compact", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.in_process:
        return in_process(args.in_process, args.a4, args.config, args.work_size or 512)
    sections = {s.strip() for s in args.sections.split(",") if s.strip()}

    cores = os.cpu_count() or 1
    size = A4_300 if args.a4 else A5_150
    tmp = Path(tempfile.mkdtemp(prefix="pp-bench-"))
    pages = [grid_page(size, 3, 2, seed=i) for i in range(max(args.pages, args.latency_pages))]
    style = Image.open(io.BytesIO(style_png(256))).convert("RGB")
    label = f"page {size[0]}x{size[1]} ({'A4 300 dpi' if args.a4 else 'A5 150 dpi'}), 6 panels, outputs " \
            f"{','.join(FORMATS)}; {cores} CPU cores"
    try:
        if sections & {"latency", "scaling"}:
            work_size = args.work_size or 512
            weights = random_weights(tmp / "compact.safetensors", "compact", version="bench-compact")
            print(f"{label}; compact generator (random weights) on the CPU at work size {work_size}")
            model_only, local = local_rates(pages[:args.pages], style, weights, work_size, "cpu", tmp / "local")
            print(f"in-process: model-only {model_only:.3f} pages/s, with outputs encoded {local:.3f} pages/s")
            svc = Service(tmp / "svc", weights, work_size, "cpu")
            try:
                if "latency" in sections:
                    section_latency(svc, pages, args.latency_pages, cores)
                if "scaling" in sections:
                    section_scaling(svc, pages[:args.pages], cores, local, model_only, args.a4)
            finally:
                svc.close()
        if "codec" in sections:
            gpu = args.device.startswith("cuda")
            config = "compact" if gpu else "tiny"
            work_size = args.work_size or (512 if gpu else 128)
            weights = random_weights(tmp / f"{config}.safetensors", config, version=f"bench-{config}")
            print(f"{label}; {config} generator on {args.device} at work size {work_size}"
                  + ("" if gpu else " (standing in for a GPU)"))
            def measure_cost() -> dict[str, float]:
                return codec_cost(pages[:min(6, args.pages)], style, weights, work_size, args.device, tmp / "codec")

            svc = Service(tmp / "svc-codec", weights, work_size, args.device)
            try:
                plain = None if gpu else (lambda: plain_rate(args.pages, cores, args.a4, config, work_size))
                section_codec(svc, pages[:args.pages], measure_cost, cores, args.render_procs,
                              args.io_procs or cores, plain)
            finally:
                svc.close()
    finally:
        if not os.environ.get("PP_BENCH_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
