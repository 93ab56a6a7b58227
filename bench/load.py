"""A chapter's speed while the studio watches (issue 17), on the embedded default (SQLite) and on
PostgreSQL, each with its own private Redis, workers as `panelpaint up` runs them (one render
child, an io child per core) and the dashboard under gunicorn as `panelpaint up` sizes it.

Per configuration, after 4 warm-up pages (not timed): a chapter goes up as one ZIP with nobody
watching (its pages/min), then another chapter while API clients poll the batch and the batch
list, dashboard sessions poll the batch's live progress (as app.js does: ETag, every 1.5 s) and a
burst of small batches arrives. It prints
the pages/min of both, the watched share, the latency of `GET /api/v1/batches/<id>`, the cores each
part of the stack used in each phase (this benchmark's own client threads included), the 5xx
answers, and whether every page ended with exactly one successful render.

    python -m bench.load                          # the small scenario, SQLite, and PostgreSQL if DATABASE_URL names one
    python -m bench.load --scenario issue         # issue 17's: 60 pages, 10 API clients, 3 dashboards, 15 x 4 pages
    python -m bench.load --backends sqlite --plain-clients   # API clients that never send If-None-Match
    python -m bench.load --without burst          # what the watchers alone cost (or --without watchers)
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from tests.panelpaint.comic_pages import grid_page, style_png
from tests.testkit import ROOT, Processes, RedisServer, ScratchDatabase, free_port, postgres_admin_url, \
    random_weights, wait_for, zip_bytes

PASSWORD = "bench-password-1"
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


@dataclass(frozen=True)
class Scenario:
    chapter: int  # pages in the chapter's ZIP
    api_clients: int  # each polls the batch and the batch list every `api_poll` seconds
    dashboards: int  # each polls the batch page's live progress every `dashboard_poll` seconds
    burst_batches: int  # small batches sent at once while the chapter runs
    burst_pages: int  # pages in each
    api_poll: float = 0.5
    dashboard_poll: float = 1.5


SCENARIOS = {
    "issue": Scenario(chapter=60, api_clients=10, dashboards=3, burst_batches=15, burst_pages=4),
    "small": Scenario(chapter=24, api_clients=6, dashboards=2, burst_batches=6, burst_pages=3),
}


# --- HTTP ----------------------------------------------------------------------------------------

@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]
    seconds: float

    def json(self):  # noqa: ANN201
        return json.loads(self.body)


class Http:
    """A client of the dashboard (stdlib only): bearer token or a cookie session, multipart posts."""

    def __init__(self, base: str, token: str | None = None):
        self.base = base
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> Answer:
        req = urllib.request.Request(self.base + path, data=body, method=method,
                                     headers={**self.headers, **(headers or {})})
        t = time.perf_counter()
        try:
            with self.opener.open(req, timeout=120) as resp:
                return Answer(resp.status, resp.read(), dict(resp.headers), time.perf_counter() - t)
        except urllib.error.HTTPError as exc:  # 304 and every error status
            return Answer(exc.code, exc.read(), dict(exc.headers), time.perf_counter() - t)

    def get(self, path: str, etag: str | None = None) -> Answer:
        return self.request("GET", path, headers={"If-None-Match": etag} if etag else None)

    def post(self, path: str, fields: dict[str, str], files: list[tuple[str, str, bytes]] = ()) -> Answer:
        boundary = uuid.uuid4().hex
        parts = []
        for name, value in fields.items():
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
        for name, filename, data in files:
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                         f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        return self.request("POST", path, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})

    def login(self, email: str, password: str) -> None:
        token = CSRF_META.search(self.get("/login").body.decode()).group(1)
        form = f"csrf_token={token}&email={urllib.request.quote(email)}&password={urllib.request.quote(password)}"
        answer = self.request("POST", "/login", form.encode(), {"Content-Type": "application/x-www-form-urlencoded"})
        if answer.status != 200 or b"Log out" not in answer.body and b"logout" not in answer.body:
            raise SystemExit(f"dashboard login failed: {answer.status}")


def answers(client: Http) -> bool:
    """True once the dashboard answers /healthz with 200."""
    try:
        return client.get("/healthz").status == 200
    except OSError:
        return False


# --- the stack ------------------------------------------------------------------------------------

class Stack:
    """Redis, a database (SQLite file or a scratch PostgreSQL database), workers and the dashboard."""

    def __init__(self, directory: Path, backend: str, weights: Path, work_size: int):
        from cli.service import web_argv, worker_argv
        from migrations.runner import upgrade
        from panelpaint.settings import load_settings
        from panelpaint.store import accounts, styles
        from panelpaint.store.db import Store
        from panelpaint.store.storage import LocalStorage

        self.dir = directory
        self.redis = RedisServer(directory / "redis", appendonly=False)
        self.redis.start()
        self.scratch = ScratchDatabase(postgres_admin_url(), "pp_bench_load") if backend == "postgresql" else None
        db = self.scratch.url if self.scratch else f"sqlite:///{directory / 'panelpaint.db'}"
        upgrade(db)
        port = free_port()
        self.env = {**os.environ, "REDIS_URL": self.redis.url, "DATABASE_URL": db,
                    "STORAGE_ROOT": str(directory / "storage"), "PANELPAINT_VAR_DIR": str(directory / "var"),
                    "PANELPAINT_WEIGHTS": str(weights), "PANELPAINT_DEVICE": "cpu",
                    "PANELPAINT_WORK_SIZE": str(work_size), "PANELPAINT_WEB_PORT": str(port),
                    "PANELPAINT_SECRET_KEY": "bench", "PYTHONPATH": str(ROOT)}
        self.settings = load_settings(redis_url=self.redis.url, database_url=db, var_dir=directory / "var",
                                      storage_root=directory / "storage", web_port=port)
        self.store = Store(db)
        # The bench's own look at the progress: a plain engine, whose reads take no lock on SQLite
        # whatever the version of the store (so it measures old code as fairly as new).
        self.reader = sa.create_engine(db)
        with self.store.session() as s:
            studio = accounts.create_studio(s, "bench")
            self.email = "artist@bench.test"
            user = accounts.create_user(s, studio.id, self.email, PASSWORD, "artist")
            self.token = accounts.create_api_token(s, user.id, "bench")[1]
            key = LocalStorage(directory / "storage").put_bytes(style_png(256), ".png")
            self.style_id = styles.add_style_reference(s, studio.id, "style", [], key, 256, 256).id
        self.processes = Processes(directory)
        cores = os.cpu_count() or 1
        self.processes.start("worker-render", worker_argv(self.settings, ["render"], 1, "prefork", "render@%h"),
                             self.env, 60, cwd=ROOT)
        self.processes.start("worker-io", worker_argv(self.settings, ["io"], cores, "prefork", "io@%h"),
                             self.env, 60, cwd=ROOT)
        self.processes.start("web", web_argv(self.settings), self.env, 15, cwd=ROOT)
        self.base = f"http://{self.settings.web_host}:{port}"
        wait_for(lambda: "warmed up" in self.processes.log("worker-render"), 300, "the render worker's model",
                 lambda: self.processes.log("worker-render")[-2000:], every=0.5)
        wait_for(lambda: answers(Http(self.base)), 120, "the dashboard", every=0.5)

    def api(self) -> Http:
        return Http(self.base, self.token)

    def final(self, batch_ids: list[int]) -> bool:
        """True when every page of the batches is finished and no upload is still being unpacked."""
        from panelpaint.store.schema import Page, RunStatus, Upload

        with self.reader.connect() as s:
            open_pages = s.scalar(sa.select(sa.func.count(Page.id)).where(
                Page.batch_id.in_(batch_ids), Page.status.in_([RunStatus.queued, RunStatus.running])))
            unpacking = s.scalar(sa.select(sa.func.count(Upload.id)).where(
                Upload.batch_id.in_(batch_ids), Upload.status.in_([RunStatus.queued, RunStatus.running])))
            return open_pages == 0 and unpacking == 0

    def finished_pages(self, batch_id: int) -> int:
        from panelpaint.store.schema import Page, RunStatus

        with self.reader.connect() as s:
            return s.scalar(sa.select(sa.func.count(Page.id)).where(
                Page.batch_id == batch_id, Page.status.in_([RunStatus.succeeded, RunStatus.failed])))

    def outcome(self, batch_ids: list[int]) -> tuple[int, int, float]:
        """(pages, pages with exactly one successful page render, last page finished at)."""
        from panelpaint.store.schema import Page, Render, RunStatus

        with self.reader.connect() as s:
            pages = list(s.scalars(sa.select(Page.id).where(Page.batch_id.in_(batch_ids))))
            wins = dict(s.execute(sa.select(Render.page_id, sa.func.count(Render.id)).where(
                Render.page_id.in_(pages), Render.panel_id.is_(None), Render.status == RunStatus.succeeded)
                .group_by(Render.page_id)).all())
            last = s.scalar(sa.select(sa.func.max(Render.finished_at)).where(Render.page_id.in_(pages)))
        if last is not None and last.tzinfo is None:
            import datetime as dt

            last = last.replace(tzinfo=dt.timezone.utc)
        return len(pages), sum(1 for p in pages if wins.get(p) == 1), last.timestamp() if last else float("nan")

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds used so far by each child (its whole process group: pool children included)."""
        import psutil

        out = {}
        for child in self.processes.children:
            total = 0.0
            try:
                root = psutil.Process(child.proc.pid)
                for p in [root, *root.children(recursive=True)]:
                    t = p.cpu_times()
                    total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
            out[child.name] = total
        if self.scratch is not None:
            out["database"] = postgres_cpu_seconds()
        return out

    def close(self) -> None:
        self.processes.stop(["web"])
        self.processes.stop()
        self.store.dispose()
        self.reader.dispose()
        self.redis.stop()
        if self.scratch:
            self.scratch.drop()


# --- the scenario ---------------------------------------------------------------------------------

@dataclass
class Watchers:
    """API clients and dashboard sessions polling until stopped; what they saw."""

    stack: Stack
    scenario: Scenario
    batch_id: int
    etags: bool
    stop: threading.Event = field(default_factory=threading.Event)
    batch_seconds: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    threads: list[threading.Thread] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _count(self, answer: Answer) -> None:
        with self.lock:
            self.statuses[answer.status] = self.statuses.get(answer.status, 0) + 1

    def _api_client(self) -> None:
        http, tags = self.stack.api(), {}
        while not self.stop.is_set():
            started = time.monotonic()
            for path in (f"/api/v1/batches/{self.batch_id}", "/api/v1/batches"):
                answer = http.get(path, tags.get(path) if self.etags else None)
                self._count(answer)
                tags[path] = answer.headers.get("ETag", tags.get(path))
                if path != "/api/v1/batches":
                    with self.lock:
                        self.batch_seconds.append(answer.seconds)
            self.stop.wait(max(0.0, self.scenario.api_poll - (time.monotonic() - started)))

    def _dashboard(self) -> None:
        http = Http(self.stack.base)
        http.login(self.stack.email, PASSWORD)
        self._count(http.get(f"/batches/{self.batch_id}"))
        tag = None
        while not self.stop.wait(self.scenario.dashboard_poll):
            answer = http.get(f"/batches/{self.batch_id}/status.json", tag)
            self._count(answer)
            tag = answer.headers.get("ETag", tag)

    def start(self) -> None:
        self.threads = [threading.Thread(target=self._api_client) for _ in range(self.scenario.api_clients)]
        self.threads += [threading.Thread(target=self._dashboard) for _ in range(self.scenario.dashboards)]
        for t in self.threads:
            t.start()

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(120)


def pages(n: int, size: tuple[int, int], offset: int = 0) -> list[bytes]:
    return [grid_page(size, 2, 2, seed=offset + i) for i in range(n)]


def send_chapter(stack: Stack, chapter: list[bytes], name: str) -> tuple[int, float]:
    """Upload the chapter as one ZIP through the API: (batch id, time sent)."""
    archive = zip_bytes({f"{i + 1:03d}.png": data for i, data in enumerate(chapter)})
    sent = time.time()
    answer = stack.api().post("/api/v1/batches", {"name": name, "style_id": str(stack.style_id)},
                              [("pages", "chapter.zip", archive)])
    if answer.status != 201 or answer.json().get("warning"):  # a warning: saved but not sent to the workers
        raise SystemExit(f"chapter upload: {answer.status} {answer.body[:300]!r}")
    return answer.json()["id"], sent


def send_burst(stack: Stack, scenario: Scenario, size: tuple[int, int]) -> list[int]:
    """The burst: every small batch posted at once, each from its own client."""
    ids: list[int] = []
    errors: list[str] = []

    def post(i: int) -> None:
        files = [("pages", f"{j}.png", data) for j, data in
                 enumerate(pages(scenario.burst_pages, size, offset=1000 + i * scenario.burst_pages))]
        answer = stack.api().post("/api/v1/batches", {"name": f"burst {i}", "style_id": str(stack.style_id)}, files)
        if answer.status == 201 and not answer.json().get("warning"):
            ids.append(answer.json()["id"])
        else:
            errors.append(f"{answer.status} {answer.body[:200]!r}")

    threads = [threading.Thread(target=post, args=(i,)) for i in range(scenario.burst_batches)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    if errors:
        raise SystemExit(f"burst uploads failed: {errors}")
    return ids


@dataclass
class Figures:
    unwatched: float  # pages/min
    watched: float
    latency_ms: tuple[float, float, float]  # p50, p95, max of GET /api/v1/batches/<id>
    requests: int
    not_modified: int
    server_errors: int
    pages: int
    exactly_once: int
    web_cpu: float  # share of one core the dashboard's processes used while the chapter was watched
    cpu_quiet: dict[str, float]  # cores each part of the stack used while the chapter was not watched
    cpu_watched: dict[str, float]  # ... and while it was (with "clients": this benchmark's own threads)


def run(stack: Stack, scenario: Scenario, size: tuple[int, int], etags: bool, timeout: float) -> Figures:
    chapter = pages(scenario.chapter, size)

    def chapter_rate(batch_ids: list[int], batch_id: int, sent: float) -> float:
        """Pages/min of the chapter; past `timeout`, of the pages it finished by then (and says so)."""
        try:
            wait_for(lambda: stack.final(batch_ids), timeout, "the batches to finish", every=0.5)
        except AssertionError:
            done = stack.finished_pages(batch_id)
            print(f"batch {batch_id}: {done} of {scenario.chapter} pages finished in {timeout:.0f} s", flush=True)
            return done / timeout * 60
        _, _, last = stack.outcome([batch_id])
        rate = scenario.chapter / (last - sent) * 60
        print(f"batch {batch_id}: {rate:.0f} pages/min", flush=True)
        return rate

    # A few pages first, not measured: every worker child does its one-time work (imports, the
    # first database connections) before the chapters are timed.
    warm_id, _ = send_chapter(stack, pages(4, size, offset=5000), "warm-up")
    wait_for(lambda: stack.final([warm_id]), timeout, "the warm-up pages to finish", every=0.5)
    cpu_start, t_start = cpu_now(stack), time.monotonic()
    quiet_id, sent = send_chapter(stack, chapter, "quiet chapter")
    unwatched = chapter_rate([quiet_id], quiet_id, sent)
    cpu_before, t_before = cpu_now(stack), time.monotonic()
    cpu_quiet = cores_used(cpu_start, cpu_before, t_before - t_start)
    watched_id, sent = send_chapter(stack, chapter, "watched chapter")
    watchers = Watchers(stack, scenario, watched_id, etags)
    if scenario.api_clients or scenario.dashboards:
        watchers.start()
    try:
        burst = send_burst(stack, scenario, size) if scenario.burst_batches else []
        watched = chapter_rate([watched_id, *burst], watched_id, sent)
    finally:
        watchers.finish()
    cpu_watched = cores_used(cpu_before, cpu_now(stack), time.monotonic() - t_before)
    web_cpu = cpu_watched["web"]
    total, once, _ = stack.outcome([warm_id, quiet_id, watched_id, *burst])
    ms = np.array(watchers.batch_seconds or [float("nan")]) * 1000
    return Figures(unwatched, watched, (float(np.percentile(ms, 50)), float(np.percentile(ms, 95)), float(ms.max())),
                   sum(watchers.statuses.values()), watchers.statuses.get(304, 0),
                   sum(n for code, n in watchers.statuses.items() if code >= 500), total, once, web_cpu,
                   cpu_quiet, cpu_watched)


def postgres_cpu_seconds() -> float:
    """CPU seconds of the local PostgreSQL server: its postmaster, the backends that ended (counted
    in the postmaster's children times) and those still running. The server is the machine's own,
    shared with nothing else while the benchmark runs."""
    import psutil

    total = 0.0
    for proc in psutil.process_iter(["name"]):
        try:
            if proc.info["name"] != "postgres" or proc.parent() is None or proc.parent().name() == "postgres":
                continue
            times = proc.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
            for backend in proc.children(recursive=True):
                t = backend.cpu_times()
                total += t.user + t.system
        except psutil.Error:
            continue
    return total


def cpu_now(stack: Stack) -> dict[str, float]:
    """CPU seconds so far of each part of the stack and of this benchmark's own process (its clients)."""
    import psutil

    own = psutil.Process().cpu_times()
    return {**stack.cpu_seconds(), "clients": own.user + own.system}


def cores_used(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    return {name: (after[name] - before.get(name, 0.0)) / seconds for name in after}


def table(results: dict[str, Figures]) -> str:
    names = list(results)
    rows = [("", *names), ("---", *["---:"] * len(names))]
    rows.append(("chapter with no clients", *[f"{r.unwatched:.0f} pages/min" for r in results.values()]))
    rows.append(("chapter while the studio watches",
                 *[f"{r.watched:.0f} pages/min ({100 * r.watched / r.unwatched:.0f}%)" for r in results.values()]))
    rows.append(("`GET /api/v1/batches/<id>` p50 / p95 / max",
                 *["{:.0f} / {:.0f} / {:.0f} ms".format(*r.latency_ms) for r in results.values()]))
    rows.append(("requests while watched (304 of them)", *[f"{r.requests} ({r.not_modified})" for r in results.values()]))
    rows.append(("dashboard CPU while watched (cores)", *[f"{r.web_cpu:.2f}" for r in results.values()]))
    parts = dict.fromkeys(name for r in results.values() for name in r.cpu_quiet)  # "database": PostgreSQL's server
    for name in parts:
        rows.append((f"cores used by {name}: quiet / watched",
                     *[f"{r.cpu_quiet[name]:.2f} / {r.cpu_watched[name]:.2f}" if name in r.cpu_quiet else "–"
                       for r in results.values()]))
    rows.append(("5xx answers", *[str(r.server_errors) for r in results.values()]))
    rows.append(("pages with exactly one successful render", *[f"{r.exactly_once}/{r.pages}" for r in results.values()]))
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", choices=sorted(SCENARIOS), default="small")
    ap.add_argument("--backends", default=None,
                    help="comma-separated: sqlite, postgresql (default: both when DATABASE_URL names PostgreSQL)")
    ap.add_argument("--page-size", default="600x850", help="pages' width x height in pixels")
    ap.add_argument("--work-size", type=int, default=128, help="the model's working size (tiny random weights)")
    ap.add_argument("--plain-clients", action="store_true", help="API clients never send If-None-Match")
    ap.add_argument("--without", action="append", default=[], choices=["watchers", "burst"],
                    help="leave a part of the watched phase out (to see what each costs)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds a chapter may take")
    ap.add_argument("--keep", action="store_true", help="keep the stacks' folders (logs) for a look")
    args = ap.parse_args(argv)
    backends = args.backends.split(",") if args.backends else \
        ["sqlite", "postgresql"] if postgres_admin_url() else ["sqlite"]
    if "postgresql" in backends and not postgres_admin_url():
        raise SystemExit("postgresql needs DATABASE_URL=postgresql+psycopg://... (a server to make a database on)")
    size = tuple(int(v) for v in args.page_size.split("x"))
    scenario = SCENARIOS[args.scenario]
    if "watchers" in args.without:
        scenario = dataclasses.replace(scenario, api_clients=0, dashboards=0)
    if "burst" in args.without:
        scenario = dataclasses.replace(scenario, burst_batches=0)
    root = Path(tempfile.mkdtemp(prefix="bench-load-"))
    weights = random_weights(root / "tiny.safetensors")
    print(f"scenario {args.scenario}: {scenario}; pages {size[0]}x{size[1]}, work size {args.work_size}, "
          f"{os.cpu_count()} cores, API clients {'plain' if args.plain_clients else 'with ETags'}", flush=True)
    results = {}
    try:
        for backend in backends:
            stack = Stack(root / backend, backend, weights, args.work_size)
            try:
                results[{"sqlite": "SQLite (default)", "postgresql": "PostgreSQL"}[backend]] = \
                    run(stack, scenario, size, not args.plain_clients, args.timeout)
            finally:
                stack.close()
            print(f"{backend}: done", flush=True)
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(table(results))
    bad = [name for name, r in results.items() if r.exactly_once != r.pages or r.server_errors]
    if bad:
        sys.exit(f"lost, duplicated or 5xx in: {', '.join(bad)}")


if __name__ == "__main__":
    main()
