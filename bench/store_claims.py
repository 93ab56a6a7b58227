"""Job store throughput: claims and fenced completions per second on SQLite and PostgreSQL.

Prints, for each backend, how fast one worker claims and completes renders (claim_render then
complete_render, each its own transaction, as a Celery task does), and how fast four threads
drain a queue with claim_next. Usage:
    python bench/store_claims.py [--renders 300] [--postgres postgresql+psycopg://.../db]
The PostgreSQL run makes and drops a scratch database on that server.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
import uuid

import sqlalchemy as sa

from panelpaint.store import accounts, batches, migrate, renders
from panelpaint.store.db import Store

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


def pollers(store: Store, n: int, threads: int = 4) -> float:
    done = []

    def run():
        while True:
            with store.session() as s:
                c = renders.claim_next(s, "poller", 3)
            if c is None:
                return
            with store.session() as s:
                renders.complete_render(s, c.render_id, c.attempt, {"png": KEY})
            done.append(c.render_id)

    ts = [threading.Thread(target=run) for _ in range(threads)]
    t = time.perf_counter()
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    assert len(done) == len(set(done)) == n, "a render was claimed twice or lost"
    return n / (time.perf_counter() - t)


def bench(url: str, n: int) -> None:
    migrate.upgrade(url)
    store = Store(url)
    try:
        single = one_worker(store, seed(store, n))
        ids = seed(store, n)
        multi = pollers(store, len(ids))
        print(f"{store.dialect:10s} claim+complete, 1 worker: {single:7.0f} renders/s   "
              f"claim_next+complete, 4 threads: {multi:7.0f} renders/s   ({n} renders each)")
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
        admin = sa.create_engine(args.postgres.replace("postgresql://", "postgresql+psycopg://", 1),
                                 isolation_level="AUTOCOMMIT")
        name = f"pp_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            bench(admin.url.set(database=name).render_as_string(hide_password=False), args.renders)
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
