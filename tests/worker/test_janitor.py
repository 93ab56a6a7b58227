"""The janitor (`worker.sweeps.Janitor`) in this process, against a real Redis and job store (no
workers): it sends again exactly what the broker lacks, once however many janitors look, at once
after a broker restart, and it rides out outages with one line each; and the soft time limit
never lands inside a worker's transaction."""
from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
import signal

import pytest
import redis
import sqlalchemy as sa
from celery.exceptions import SoftTimeLimitExceeded

from harness import Stack
from tests.testkit import random_weights
from panelpaint import queue
from panelpaint.store import renders
from panelpaint.store.schema import Render, RenderStage
from worker.resources import ShieldedStore
from worker.sweeps import SEND_GRACE, Janitor

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    directory = tmp_path_factory.mktemp("janitor")
    st = Stack(directory, random_weights(directory / "tiny.safetensors"))
    yield st
    st.close()


@pytest.fixture(autouse=True)
def empty_broker(stack):
    """An empty broker, and no render left over from an earlier test for the janitor to find."""
    redis.Redis.from_url(stack.redis.url).flushall()
    with stack.store.session() as s:
        s.execute(sa.update(Render).where(Render.status.in_(["queued", "running"]))
                  .values(status="cancelled", stage=None))


def age(stack: Stack, render_id: int, seconds: float) -> None:
    with stack.store.session() as s:
        r = s.get(Render, render_id)
        for name in ("queued_at", "heartbeat_at", "started_at", "sent_at"):
            if getattr(r, name) is not None:
                setattr(r, name, getattr(r, name) - dt.timedelta(seconds=seconds))


def messages(stack: Stack, queue_name: str) -> list[tuple[str, list]]:
    """(task id, args) of each message waiting in a queue."""
    out = []
    for raw in redis.Redis.from_url(stack.redis.url).lrange(queue_name, 0, -1):
        data = json.loads(raw)
        out.append((data["headers"]["id"], json.loads(base64.b64decode(data["body"]))[0]))
    return out


def test_a_queued_render_the_broker_lacks_is_sent_once_however_many_janitors_look(stack):
    _, (render_id,) = stack.add_batch(["unsent.png"], enqueue=False)  # saved while the broker was down
    age(stack, render_id, SEND_GRACE + 1)
    first, second = Janitor(stack.settings), Janitor(stack.settings)
    sent = first.tick().resent + second.tick().resent + first.tick().resent
    (task_id,) = [r.task_id for r in stack.renders([render_id])]
    assert [(r.render_id, r.lapse.name) for r in sent] == [(render_id, "UNSENT")]
    assert messages(stack, "render") == [(task_id, [render_id])]
    assert len(stack.events("render.resent", render_id)) == 1


def test_what_the_broker_holds_is_left_alone(stack):
    _, (render_id,) = stack.add_batch(["held.png"])  # sent: its message waits in the queue
    age(stack, render_id, 3600)
    assert Janitor(stack.settings).tick().resent == []
    assert len(messages(stack, "render")) == 1


def test_a_waiting_page_whose_finishing_message_is_gone_gets_it_again_and_only_then(stack):
    _, (render_id,) = stack.add_batch(["waiting.png"], enqueue=False)
    with stack.store.session() as s:
        claim = renders.claim_render(s, render_id, "gone@test", 3)
        renders.hand_off(s, render_id, claim.attempt, "handoff.npz", 4, together=[render_id], panels=4)
    age(stack, render_id, 3600)  # an hour waiting for an io worker, and its message lost with Redis
    janitor = Janitor(stack.settings)
    (resent,) = janitor.tick().resent
    assert (resent.lapse.name, resent.attempt, resent.handoff_key) == ("UNSENT_FINISHING", 1, "handoff.npz")
    assert messages(stack, "io") == [(queue.finish_task_id(render_id, 1), [render_id, 1, "handoff.npz"])]
    age(stack, render_id, 3600)
    janitor.next_full = 0  # a full sweep again: the message is held now
    assert janitor.tick().resent == []
    (render,) = stack.renders([render_id])
    assert (render.stage, render.attempt) == (RenderStage.waiting, 1)  # never coloured again


def test_a_broker_restart_sends_what_it_lost_at_the_next_tick(stack):
    janitor = Janitor(stack.settings)
    assert janitor.tick().full  # the first tick sweeps fully; the next full sweep is far off
    _, (render_id,) = stack.add_batch(["lost-with-redis.png"])
    age(stack, render_id, SEND_GRACE + 1)
    redis.Redis.from_url(stack.redis.url).flushall()  # as a Redis without its append-only file restarting
    stack.redis.stop()
    stack.redis.start()
    sweep = janitor.tick()
    assert sweep.full and [r.render_id for r in sweep.resent] == [render_id]


def test_outages_are_ridden_out_and_said_once(stack, caplog):
    janitor = Janitor(stack.settings)
    janitor.tick()
    with caplog.at_level(logging.WARNING, logger="worker.sweeps"):
        stack.redis.stop()
        try:
            for _ in range(3):
                assert janitor.tick().resent == []
        finally:
            stack.redis.start()
        janitor.tick()
        bad = Janitor(stack.settings.model_copy(update={"database_url": "postgresql+psycopg://x@127.0.0.1:1/none"}))
        for _ in range(3):
            assert bad.tick().resent == []
    said = [r.getMessage() for r in caplog.records]
    assert sum("broker unreachable" in m for m in said) == 1 and sum("broker answers again" in m for m in said) == 1
    assert sum("database unreachable" in m for m in said) == 1
    assert all(r.exc_info is None for r in caplog.records)


def test_after_a_database_outage_silences_count_only_from_its_end(stack):
    _, (render_id,) = stack.add_batch(["claimed-before.png"], enqueue=False)
    with stack.store.session() as s:
        renders.claim_render(s, render_id, "busy@test", 3)
    age(stack, render_id, stack.settings.render_lease_seconds + 1)  # silent: the database was down
    janitor = Janitor(stack.settings, database_down=True)
    assert janitor.tick().resent == []  # its worker could not write a heartbeat meanwhile
    assert janitor.tick().resent == []
    janitor.lease_checks_from = 0.0  # a lease later
    (resent,) = janitor.tick().resent
    assert (resent.render_id, resent.lapse.name) == (render_id, "SILENT_COLOURING")


def test_the_soft_time_limit_waits_for_the_transaction_to_end(tmp_path):
    """Celery raises the soft time limit from a SIGUSR1 handler; inside a worker's transaction it is
    held back and raised as the transaction ends, committed, its connection left clean."""
    def soft_limit(_signum, _frame):
        raise SoftTimeLimitExceeded()

    store = ShieldedStore(f"sqlite:///{tmp_path / 'store.db'}")
    previous = signal.signal(signal.SIGUSR1, soft_limit)
    try:
        with store.session() as s:
            s.execute(sa.text("CREATE TABLE t (x INTEGER)"))
        with pytest.raises(SoftTimeLimitExceeded):
            with store.session() as s:
                os.kill(os.getpid(), signal.SIGUSR1)
                s.execute(sa.text("INSERT INTO t VALUES (1)"))  # still runs: the signal waits
        with store.session() as s:
            assert s.scalar(sa.text("SELECT count(*) FROM t")) == 1
        with pytest.raises(SoftTimeLimitExceeded):  # outside a transaction it lands at once
            os.kill(os.getpid(), signal.SIGUSR1)
    finally:
        signal.signal(signal.SIGUSR1, previous)
        store.dispose()
