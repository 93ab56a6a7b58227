"""What one poll of a batch's status costs the dashboard: CPU seconds of gunicorn (its processes
together) per `GET /api/v1/batches/<id>` answered 304, under the command line `panelpaint up`
runs, with no workers. The share a watched chapter keeps (`bench.load`) follows from it.

Per database (SQLite, and PostgreSQL when DATABASE_URL names one) and per gunicorn process count,
a 60-page batch is made in a fresh database with its own Redis; `--clients` threads poll it with
its ETag (each opening a connection per request, as `urllib` does) for `--seconds`, and it prints
polls/s, the web's cores and its CPU milliseconds per poll.

    python -m bench.poll_cost                               # the default sizing (settings' defaults)
    python -m bench.poll_cost --workers 1,2,5               # gunicorn processes to compare
    python -m bench.poll_cost --token-cache-seconds 0       # every poll checks its token in the database
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from bench.load import Http, answers
from tests.testkit import ROOT, Processes, RedisServer, ScratchDatabase, free_port, postgres_admin_url, wait_for

PAGES = 60


def make_batch(db: str, storage: Path) -> tuple[str, int]:
    """A studio with an artist, an API token and a 60-page batch: (the token, the batch id)."""
    from migrations.runner import upgrade
    from panelpaint.store import accounts, batches, renders, styles
    from panelpaint.store.db import Store
    from panelpaint.store.storage import LocalStorage
    from tests.panelpaint.comic_pages import small_page

    upgrade(db)
    store = Store(db)
    try:
        with store.session() as s:
            studio = accounts.create_studio(s, "bench")
            user = accounts.create_user(s, studio.id, "artist@bench.test", "bench-password-1", "artist")
            token = accounts.create_api_token(s, user.id, "bench")[1]
            key = LocalStorage(storage).put_bytes(small_page((64, 96)), ".png")
            style = styles.add_style_reference(s, studio.id, "style", [], key, 64, 96).id
            batch = batches.create_batch(s, studio.id, user.id, "chapter", style)
            for i in range(PAGES):
                renders.queue_new_page(s, batches.add_page(s, batch.id, f"{i:03d}.png", key, 64, 96).id)
            return token, batch.id
    finally:
        store.dispose()


def measure(backend: str, workers: int | None, args: argparse.Namespace, root: Path) -> dict[str, float]:
    import psutil

    from cli.service import web_argv
    from panelpaint.settings import load_settings

    directory = Path(tempfile.mkdtemp(dir=root))
    redis = RedisServer(directory / "redis", appendonly=False)
    redis.start()
    scratch = ScratchDatabase(postgres_admin_url(), "pp_bench_poll") if backend == "postgresql" else None
    processes = Processes(directory)
    try:
        db = scratch.url if scratch else f"sqlite:///{directory / 'panelpaint.db'}"
        token, batch = make_batch(db, directory / "storage")
        port = free_port()
        env = {**os.environ, "REDIS_URL": redis.url, "DATABASE_URL": db, "STORAGE_ROOT": str(directory / "storage"),
               "PANELPAINT_VAR_DIR": str(directory / "var"), "PANELPAINT_WEB_PORT": str(port),
               "PANELPAINT_SECRET_KEY": "bench", "PYTHONPATH": str(ROOT)}
        if args.token_cache_seconds is not None:
            env["PANELPAINT_TOKEN_CACHE_SECONDS"] = str(args.token_cache_seconds)
        settings = load_settings(redis_url=redis.url, database_url=db, var_dir=directory / "var", web_port=port)
        argv = web_argv(settings, workers=workers)
        processes.start("web", argv, env, 15, cwd=ROOT)
        client = Http(f"http://{settings.web_host}:{port}", token)
        wait_for(lambda: answers(client), 120, "the dashboard", every=0.3)
        url = f"/api/v1/batches/{batch}"
        tag = client.get(url).headers["ETag"]
        web = psutil.Process(processes.children[0].proc.pid)

        def cpu() -> float:
            return sum(sum(p.cpu_times()[:2]) for p in [web, *web.children(recursive=True)])

        stop, polls, wrong = threading.Event(), [0] * args.clients, []

        def poll(i: int) -> None:
            while not stop.is_set():
                answer = client.get(url, tag)
                if answer.status != 304:
                    wrong.append(answer.status)
                polls[i] += 1
                stop.wait(args.pause)

        threads = [threading.Thread(target=poll, args=(i,)) for i in range(args.clients)]
        before, started = cpu(), time.monotonic()
        for t in threads:
            t.start()
        time.sleep(args.seconds)
        stop.set()
        for t in threads:
            t.join()
        seconds, used = time.monotonic() - started, cpu() - before
        if wrong:
            raise SystemExit(f"{backend}: {len(wrong)} polls not answered 304 (first: {wrong[0]})")
        n = sum(polls)
        return {"workers": int(argv[argv.index("--workers") + 1]), "polls/s": n / seconds, "cores": used / seconds,
                "ms/poll": used / n * 1000}
    finally:
        processes.stop()
        redis.stop()
        if scratch:
            scratch.drop()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backends", default=None,
                    help="comma-separated: sqlite, postgresql (default: both when DATABASE_URL names PostgreSQL)")
    ap.add_argument("--workers", default="", help="comma-separated gunicorn process counts (default: the settings')")
    ap.add_argument("--token-cache-seconds", type=float, default=None, help="PANELPAINT_TOKEN_CACHE_SECONDS")
    ap.add_argument("--clients", type=int, default=10, help="polling threads")
    ap.add_argument("--pause", type=float, default=0.05, help="seconds each client waits between polls")
    ap.add_argument("--seconds", type=float, default=15.0, help="how long they poll")
    args = ap.parse_args(argv)
    backends = args.backends.split(",") if args.backends else \
        ["sqlite", "postgresql"] if postgres_admin_url() else ["sqlite"]
    counts = [int(w) for w in args.workers.split(",") if w] or [None]
    root = Path(tempfile.mkdtemp(prefix="bench-poll-"))
    print(f"{os.cpu_count()} cores, {args.clients} clients, {args.seconds:.0f} s, token cache "
          f"{'default' if args.token_cache_seconds is None else args.token_cache_seconds}", flush=True)
    print("| database | gunicorn processes | polls/s | web cores | CPU ms per 304 |\n| --- | ---: | ---: | ---: | ---: |")
    try:
        for backend in backends:
            for workers in counts:
                r = measure(backend, workers, args, root)
                print(f"| {backend} | {r['workers']} | {r['polls/s']:.0f} | {r['cores']:.2f} | {r['ms/poll']:.2f} |",
                      flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
