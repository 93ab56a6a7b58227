"""Job store throughput: claims and fenced completions per second on SQLite and PostgreSQL.

Prints, for each backend, how fast one worker claims and completes renders (claim_render then
complete_render, each its own transaction, as a Celery task does), and how fast four threads do,
each taking the next render id from a shared queue as Celery workers take messages. Usage:
    python -m bench.store_claims [--renders 300] [--postgres postgresql+psycopg://.../db]
The PostgreSQL run makes and drops a scratch database on that server.
"""
from __future__ import annotations

import argparse
import os
import queue
import tempfile
import threading
import time
import uuid


from migrations import runner as migrate
from panelpaint.store import accounts, batches, renders
from panelpaint.store.db import Store
from tests.testkit import ScratchDatabase

KEY = "a" * 64 + ".png"


def seed(store: Store, n: int) -> list[int]:
    with store.session() as s:
        studio = accounts.create_studio(s, f"bench-{uuid.uuid4().hex[:6]}")
        batch = batches.create_batch(s, studio.id, None, "bench")
        pages = [batches.add_page(s, batch.id, f"p{i}.png", KEY, 100, 100) for i in range(n)]
        return [renders.queue_render(s, p.id).id for p in pages]


def one_worker(store: Store, ids: list[int]) -> float:
    t = time.perf_counter()
    for rid in ids:
        with store.session() as s:
            c = renders.claim_render(s, rid, "bench", 3)
        with store.session() as s:
            renders.complete_render(s, rid, c.attempt, {"png": KEY})
    return len(ids) / (time.perf_counter() - t)


def workers(store: Store, ids: list[int], threads: int = 4) -> float:
    done = []
    messages: queue.SimpleQueue[int] = queue.SimpleQueue()
    for rid in ids:
        messages.put(rid)

    def run():
        while True:
            try:
                rid = messages.get_nowait()
            except queue.Empty:
                return
            with store.session() as s:
                c = renders.claim_render(s, rid, f"bench-{threading.get_ident()}", 3)
            with store.session() as s:
                renders.complete_render(s, rid, c.attempt, {"png": KEY})
            done.append(rid)

    ts = [threading.Thread(target=run) for _ in range(threads)]
    t = time.perf_counter()
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    assert sorted(done) == sorted(ids), "a render was claimed twice or lost"
    return len(ids) / (time.perf_counter() - t)


def bench(url: str, n: int) -> None:
    migrate.upgrade(url)
    store = Store(url)
    try:
        single = one_worker(store, seed(store, n))
        multi = workers(store, seed(store, n))
        print(f"{store.dialect:10s} claim+complete, 1 worker: {single:7.0f} renders/s   "
              f"4 threads: {multi:7.0f} renders/s   ({n} renders each)")
    finally:
        store.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--renders", type=int, default=300)
    ap.add_argument("--postgres", default=os.environ.get("DATABASE_URL", ""))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench(f"sqlite:///{tmp}/bench.db", args.renders)
    if args.postgres.startswith("postgresql"):
        scratch = ScratchDatabase(args.postgres.replace("postgresql://", "postgresql+psycopg://", 1), "pp_bench")
        try:
            bench(scratch.url, args.renders)
        finally:
            scratch.drop()


if __name__ == "__main__":
    main()
