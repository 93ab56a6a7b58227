"""Outages against the real service (issue #18): a private PostgreSQL cluster, a private Redis with
its append-only file, and Celery workers started as `panelpaint worker` starts them, with short
limits (lease 6 s, visibility timeout 40 s, time limits 16/20 s) so that every scenario runs in
about a minute.

Each scenario asserts the contract: every page done exactly once, no healthy page failed, no page
coloured twice (`render.coloured` and `render.claimed` in the event log), the service's own
warnings free of tracebacks, and the time to recover: from the moment the failed part is back (or,
for a frozen process, froze) until every affected page is being worked on again, within one
lease plus one janitor tick. `python -m bench.faults` runs this module and reports the times.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

from fault_plugin import Faults
from harness import Stack, draw_page
from panelpaint.store.schema import RenderStage, RunStatus
from tests.testkit import PostgresServer, missing_service, random_weights, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

LEASE, VISIBILITY, SOFT_LIMIT, HARD_LIMIT = 6, 40, 16, 20
FAULT_ENV = {
    "PANELPAINT_RENDER_LEASE_SECONDS": str(LEASE),
    "PANELPAINT_VISIBILITY_TIMEOUT": str(VISIBILITY),
    "PANELPAINT_TASK_SOFT_TIME_LIMIT": str(SOFT_LIMIT),
    "PANELPAINT_TASK_TIME_LIMIT": str(HARD_LIMIT),
}
TICK = max(1.0, min(15.0, LEASE / 4))  # worker.sweeps.tick_seconds
PANEL_DELAY = 0.5  # "slow" pages take 2 s to finish, "stall" pages 2 s to colour (4 panels)
SLACK = 3.0  # message delivery, polling and a loaded CI machine
DB_OUTAGE, BROKER_OUTAGE = 8, 3  # seconds: the database stopped at once, Redis SIGKILLed
S = RunStatus.succeeded
REPORT = os.environ.get("PANELPAINT_FAULT_REPORT")  # bench/faults.py collects the measurements here


@dataclass
class Recovery:
    scenario: str
    seconds: float  # from back (or frozen) until every affected page was worked on again
    bound: float
    done: float  # until every page of the scenario was done
    pages: int


RESULTS: list[Recovery] = []


@pytest.fixture(scope="module")
def postgres():
    server = PostgresServer()
    try:
        server.start()
    except (RuntimeError, OSError) as exc:
        missing_service(f"a private PostgreSQL cluster ({exc})")
    yield server
    server.remove()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, postgres):
    directory = tmp_path_factory.mktemp("faults")
    (directory / "marks").mkdir()
    faults = Faults(panel_delay=PANEL_DELAY, freeze_page="freeze", marks=str(directory / "marks"))
    st = Stack(directory, random_weights(directory / "tiny.safetensors"), faults,
               db_url=postgres.create_database("faults"), **FAULT_ENV)
    yield st
    st.close()
    if RESULTS:
        lines = [f"{r.scenario:<34} recovered in {r.seconds:5.1f} s (bound {r.bound:.1f} s), "
                 f"{r.pages} pages done after {r.done:5.1f} s" for r in RESULTS]
        print("\n" + "\n".join(lines))
        if REPORT:
            Path(REPORT).write_text(json.dumps([asdict(r) for r in RESULTS], indent=2))


@pytest.fixture
def service(stack, postgres):
    """The service as deployed: the database, the broker, one render worker and one io worker
    with two children, all running (started again when a failed scenario left one down)."""
    if not postgres.running:
        postgres.start()
    if stack.redis.proc is None:
        stack.redis.start()
    for name, queues, concurrency in (("render", "render", 1), ("io", "io", 2)):
        proc = stack.workers.get(name)
        if proc is None or proc.poll() is not None:
            stack.workers.pop(name, None)
            stack.start_worker(name, queues=queues, concurrency=concurrency)
    return stack


@pytest.fixture(scope="module")
def web(stack):
    """The dashboard's API on the same stack, in this process, with an artist's token."""
    from panelpaint.store import accounts
    from panelpaint.store.schema import Role
    from web import create_app

    # No shared status answers and no trusted tokens: every request reaches the database, so the
    # outage test sees what the API says when it cannot (within their seconds they would answer).
    app = create_app(stack.settings.model_copy(update={"secret_key": "fault-tests", "status_max_age": 0,
                                                       "token_cache_seconds": 0}),
                     {"RATELIMIT_STORAGE_URI": "memory://"})
    with stack.store.session() as s:
        user = accounts.create_user(s, stack.studio_id, "artist@faults.test", "password-1234", Role.artist)
        _, token = accounts.create_api_token(s, user.id, "fault tests")
    yield app.test_client(), {"Authorization": f"Bearer {token}"}
    app.extensions["panelpaint"].store.dispose()


# --- what every scenario asserts -----------------------------------------------------------------

def _utc(wall: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(wall, dt.timezone.utc)


def _aware(t: dt.datetime | None) -> dt.datetime | None:
    return t.replace(tzinfo=dt.timezone.utc) if t is not None and t.tzinfo is None else t


def progressed(stack: Stack, ids: list[int], since: float) -> bool:
    """Every render done, or worked on since `since` (wall clock): claimed, coloured or finishing
    (a janitor's takeover alone, which sets it waiting, is not work)."""
    return all(r.status == S or (r.stage != RenderStage.waiting and r.heartbeat_at is not None
                                 and _aware(r.heartbeat_at) > _utc(since)) for r in stack.renders(ids))


def measure(stack: Stack, scenario: str, ids: list[int], affected: list[int], since_wall: float,
            since: float, timeout: float = 120) -> Recovery:
    """Wait until the affected pages are worked on again, then until every page is done."""
    wait_for(lambda: progressed(stack, affected, since_wall), timeout, f"{scenario}: the pages to be worked on again",
             lambda: [(r.id, r.status.value, r.stage, r.attempt) for r in stack.renders(affected)])
    recovered = time.monotonic() - since
    stack.wait_final(ids, timeout)
    result = Recovery(scenario, round(recovered, 2), LEASE + TICK + SLACK, round(time.monotonic() - since, 2),
                      len(ids))
    RESULTS.append(result)
    return result


def assert_each_done_once(stack: Stack, ids: list[int], claims: dict[int, int] | None = None) -> None:
    """Succeeded with one result, coloured once, claimed once (or as `claims` says), nothing failed."""
    finals = stack.renders(ids)
    assert [(r.id, r.status) for r in finals] == [(i, S) for i in ids], [(r.id, r.status, r.error) for r in finals]
    once = {i: 1 for i in ids}
    assert stack.event_counts("render.succeeded", ids) == once
    assert stack.event_counts("render.coloured", ids) == once, "a page was coloured twice"
    assert stack.event_counts("render.claimed", ids) == {**once, **(claims or {})}
    assert stack.event_counts("render.failed", ids) == {i: 0 for i in ids}
    assert stack.event_counts("render.gave_up", ids) == {i: 0 for i in ids}


class Logs:
    """What the workers logged from now on: the service's handled conditions come without tracebacks."""

    def __init__(self, stack: Stack):
        self.stack = stack
        self.start = {name: len(stack.log(name)) for name in ("render", "io") if (stack.dir / f"worker-{name}.log").exists()}

    def since(self, name: str) -> str:
        return self.stack.log(name)[self.start.get(name, 0):]

    def assert_no_tracebacks(self, *names: str) -> None:
        for name in names:
            text = self.since(name)
            assert "Traceback" not in text, f"worker {name} logged a traceback:\n{text[-4000:]}"


def _colouring(stack: Stack, render_id: int) -> bool:
    (render,) = stack.renders([render_id])
    return render.status == RunStatus.running and render.stage == RenderStage.colouring


# --- the scenarios ---------------------------------------------------------------------------------

def test_io_outage_coloured_pages_wait_without_losing_an_attempt(service):
    """Defect 1: with the io worker down, the sweep coloured waiting pages again and burnt their
    attempts ("gave up after 3 attempts"). Waiting is not lost: nothing happens until it is back."""
    stack, logs = service, Logs(service)
    stack.stop_worker("io")
    stopped = time.monotonic()
    _, ids = stack.add_batch([f"io-{i}.png" for i in range(3)])
    wait_for(lambda: all(r.stage == RenderStage.waiting for r in stack.renders(ids)), 60, "the pages to be coloured")
    # Past the visibility timeout and the old sweep's interval (a quarter of it): the old sweep
    # coloured them again here.
    deadline = time.monotonic() + VISIBILITY * 1.25 + 2 * TICK
    while time.monotonic() < deadline:
        assert all(n == 1 for n in stack.event_counts("render.coloured", ids).values()), "coloured again"
        assert {(r.status, r.stage, r.attempt) for r in stack.renders(ids)} == {(RunStatus.running,
                                                                                 RenderStage.waiting, 1)}
        time.sleep(1)
    stack.start_worker("io", queues="io", concurrency=2)
    back_wall, back = time.time(), time.monotonic()
    result = measure(stack, f"io worker down {back - stopped:.0f} s", ids, ids, back_wall, back)
    assert_each_done_once(stack, ids)
    assert [r.attempt for r in stack.renders(ids)] == [1, 1, 1]
    assert result.seconds <= result.bound, result
    logs.assert_no_tracebacks("render", "io")


def test_database_outage_is_waited_out(service, postgres):
    """PostgreSQL stopped at once for 8 s (`DB_OUTAGE`) while one page is colouring and another finishing: the
    workers wait for it; no page is coloured again and no attempt is charged."""
    stack, logs = service, Logs(service)
    _, ids = stack.add_batch(["db-slow-1.png", "db-stall-2.png", "db-3.png", "db-4.png"])
    wait_for(lambda: _colouring(stack, ids[1]), 60, "a page to be colouring")
    postgres.stop("immediate")
    time.sleep(DB_OUTAGE)  # the outage itself
    postgres.start()
    back_wall, back = time.time(), time.monotonic()
    unfinished = [r.id for r in stack.renders(ids) if r.status != S]
    result = measure(stack, f"database down {DB_OUTAGE} s (immediate)", ids, unfinished, back_wall, back)
    assert_each_done_once(stack, ids)
    assert [r.attempt for r in stack.renders(ids)] == [1, 1, 1, 1]
    assert result.seconds <= result.bound, result
    logs.assert_no_tracebacks("render", "io")


def test_broker_outage_work_saved_meanwhile_is_sent_when_it_answers(service, web):
    """Redis SIGKILLed (its append-only file keeps what it had) mid-batch for 3 s (`BROKER_OUTAGE`). A page submitted
    meanwhile is saved ("the queue cannot be reached") and sent within a lease of Redis being back,
    not after the visibility timeout; /healthz and /readyz tell the broker apart."""
    stack, logs = service, Logs(service)
    client, auth = web
    _, ids = stack.add_batch(["mq-slow-1.png", "mq-2.png", "mq-3.png"])
    wait_for(lambda: any(r.status == RunStatus.running for r in stack.renders(ids)), 60, "a page to start")
    stack.redis.kill()
    response = client.post("/api/v1/batches", headers=auth, data={
        "name": "during the outage", "style_id": str(stack.style_id),
        "pages": (io.BytesIO(draw_page(9)), "mq-during.png")})
    assert response.status_code == 201, response.get_data(as_text=True)
    assert "cannot be reached" in response.get_json()["warning"]
    during = [p["render_id"] for p in response.get_json()["pages"]]
    health = client.get("/healthz")
    assert health.status_code == 200 and health.get_json()["broker"] != "ok" and health.get_json()["database"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.headers["Retry-After"]
    time.sleep(BROKER_OUTAGE)  # the outage itself
    stack.redis.start()
    back_wall, back = time.time(), time.monotonic()
    assert client.get("/readyz").status_code == 200
    result = measure(stack, f"broker down {BROKER_OUTAGE} s (SIGKILL)", ids + during, during, back_wall, back)
    assert_each_done_once(stack, ids + during)
    assert result.seconds <= result.bound, result
    logs.assert_no_tracebacks("render", "io")


def test_render_worker_killed_mid_page_is_taken_over_when_it_is_back(service):
    """The only render worker SIGKILLed (parent and child) while colouring, back after its lease
    ran out: the page is taken over at once (attempt 2), not after the visibility timeout."""
    stack = service
    _, ids = stack.add_batch(["rk-stall-1.png", "rk-2.png"])
    wait_for(lambda: _colouring(stack, ids[0]), 60, "the page to be colouring")
    stack.kill_worker("render")
    (victim,) = stack.renders(ids[:1])
    wait_for(lambda: time.time() - _aware(victim.heartbeat_at).timestamp() > LEASE, 30, "the lease to run out")
    stack.start_worker("render", queues="render")
    back_wall, back = time.time(), time.monotonic()
    logs = Logs(stack)
    result = measure(stack, "render worker killed", ids, ids[:1], back_wall, back)
    assert_each_done_once(stack, ids, claims={ids[0]: 2})
    assert [r.attempt for r in stack.renders(ids)] == [2, 1]
    assert result.seconds <= result.bound, result
    logs.assert_no_tracebacks("render", "io")


def test_io_child_frozen_past_its_limits_is_taken_over_within_a_lease(service):
    """An io child SIGSTOPped while finishing: its finishing is taken over one lease later (attempt
    2, the page not coloured again) by the other child; when the hard time limit ends the frozen
    child, its late run reports `stale` and writes nothing."""
    stack, logs = service, Logs(service)
    _, ids = stack.add_batch(["freeze-1.png"])
    marks = Path(stack.faults.marks)
    wait_for(lambda: (marks / f"frozen-{ids[0]}").exists(), 60, "the io child to freeze")
    frozen_wall, frozen = time.time(), time.monotonic()
    result = measure(stack, "io child frozen (SIGSTOP)", ids, ids, frozen_wall, frozen)
    assert result.seconds < HARD_LIMIT  # before the pool's hard limit even ended the frozen child
    assert_each_done_once(stack, ids)
    (render,) = stack.renders(ids)
    assert render.attempt == 2
    (resent,) = stack.events("render.resent", ids[0])
    assert resent["takeover"] is True and resent["previous_attempt"] == 1
    # The hard limit kills the frozen child; its message goes back and runs again: fenced, stale.
    late = f"finish_page[finish-{ids[0]}-1] succeeded"
    wait_for(lambda: any(late in line and "'stale'" in line for line in logs.since("io").splitlines()),
             HARD_LIMIT + 30, "the frozen finishing's late run")
    assert stack.event_counts("render.succeeded", ids) == {ids[0]: 1}
    assert result.seconds <= result.bound, result


# --- the web during a database outage (issue #18 row 3) -------------------------------------------

def test_the_web_during_a_database_outage(stack, web, postgres, caplog):
    """/healthz and /readyz answer 503 while the database is down and recover at once; the API
    answers 503 with Retry-After (`web/errors.py`), logged once per outage, without a traceback."""
    import logging

    client, auth = web
    batch_id, _ = stack.add_batch(["web.png"], enqueue=False)
    assert client.get(f"/api/v1/batches/{batch_id}", headers=auth).status_code == 200
    postgres.stop("immediate")
    try:
        health = client.get("/healthz")
        assert health.status_code == 503 and health.get_json()["database"] != "ok"
        assert health.get_json()["broker"] == "ok"
        assert client.get("/readyz").status_code == 503
        with caplog.at_level(logging.WARNING):
            caplog.clear()  # what the API logs for this outage, not the health checks' own line
            answers = [client.get(f"/api/v1/batches/{batch_id}", headers=auth) for _ in range(3)]
            logged = [r for r in caplog.records if r.levelno >= logging.WARNING]
    finally:
        postgres.start()
    wait_for(lambda: client.get("/healthz").status_code == 200, 5, "/healthz to recover")
    assert client.get("/readyz").status_code == 200
    assert [a.status_code for a in answers] == [503, 503, 503]
    assert all(a.headers.get("Retry-After") for a in answers)
    assert all(a.is_json and a.get_json()["status"] == 503 for a in answers)
    assert len(logged) <= 1 and all(r.exc_info is None for r in logged), [r.getMessage() for r in logged]
