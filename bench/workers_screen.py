"""Workers screen latency: how long `GET /workers` (the page) and `GET /workers/status.json` (what
its script fetches) take with a real broker and two live workers (a private redis-server, an io and
a render worker started as `panelpaint up` starts them, SQLite), and where the render worker says it
colours. Prints its figures.

    python -m bench.workers_screen --runs 10
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.testkit import Processes, RedisServer, wait_for


def timed(client, url: str, runs: int) -> list[float]:  # noqa: ANN001 - a Flask test client
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        response = client.get(url)
        out.append(time.perf_counter() - t)
        assert response.status_code == 200, response.status_code
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    from cli.service import worker_argv
    from migrations import runner as migrate
    from panelpaint import queue
    from panelpaint.settings import load_settings
    from panelpaint.store import accounts
    from panelpaint.store.db import Store
    from web import create_app

    tmp = Path(tempfile.mkdtemp(prefix="pp-bench-workers-"))
    redis = RedisServer(tmp / "redis", appendonly=False)
    redis.start()
    procs = Processes(tmp / "logs")
    (tmp / "logs").mkdir()
    try:
        url = f"sqlite:///{tmp / 'db.sqlite'}"
        migrate.upgrade(url)
        settings = load_settings(var_dir=tmp, database_url=url, secret_key="bench", redis_url=redis.url)
        env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis.url, "PANELPAINT_VAR_DIR": str(tmp)}
        for name in ("io", "render"):
            procs.start(name, worker_argv(settings, [name], 1, None, f"{name}-bench@%h"), env, cwd=Path.cwd())
        # Ready: both answer every question (a render worker's parent waits for its child's model first).
        wait_for(lambda: [bool(w["queues"]) for w in queue.live_workers(settings)] == [True, True], 180,
                 "both workers to answer", lambda: procs.log("render")[-2000:])
        app = create_app(settings, {"WTF_CSRF_ENABLED": False, "RATELIMIT_STORAGE_URI": "memory://"})
        store = Store(url)
        with store.session() as s:
            studio = accounts.create_studio(s, "Bench")
            accounts.create_user(s, studio.id, "bench@bench.test", "bench-password", "admin")
        client = app.test_client()
        client.post("/login", data={"email": "bench@bench.test", "password": "bench-password"})
        page = timed(client, "/workers", args.runs)
        status = timed(client, "/workers/status.json", args.runs)
        # A loaded machine may miss a reply within the second: ask again for the listing printed below.
        workers = []
        for _ in range(5):
            workers = client.get("/workers/status.json").get_json()["workers"]
            if len(workers) == 2:
                break
    finally:
        procs.stop()
        redis.stop()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPU(s); {len(workers)} live worker(s): "
          + ", ".join(f"{w['name']} ({'/'.join(w['queues'])}, device {w['device']})" for w in workers))
    print(f"GET /workers (the page): median {statistics.median(page) * 1000:.0f} ms, "
          f"max {max(page) * 1000:.0f} ms over {args.runs} runs")
    print(f"GET /workers/status.json (live workers, fetched by the page): median "
          f"{statistics.median(status) * 1000:.0f} ms, max {max(status) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
