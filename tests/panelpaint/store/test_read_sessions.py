"""Read sessions take no write lock: a write commits while reads are open, claims keep exactly one
winner while readers poll, a read session refuses to write, and an API token's use is recorded at
most once per interval (on SQLite and PostgreSQL)."""
from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
import sqlalchemy as sa

from panelpaint.store import accounts, batches, renders
from panelpaint.store.errors import LeaseHeld
from panelpaint.store.schema import ApiToken, Page, Render, RunStatus
from tests.testkit import race

WRITE_WITHIN = 5.0  # seconds; a write queued behind a read would wait the 30 s busy timeout


def test_a_write_commits_while_a_read_is_open(store, world):
    with store.reading() as reader:
        assert batches.batch_progress(reader, world.a.batch).total == 2  # the read transaction is open
        done = threading.Event()

        def write() -> None:
            with store.session() as s:
                batches.add_page(s, world.a.batch, "late.png", "a" * 64 + ".png", 10, 10)
            done.set()

        writer = threading.Thread(target=write)
        started = time.monotonic()
        writer.start()
        assert done.wait(WRITE_WITHIN), "the write waited for a read-only session"
        writer.join()
        assert time.monotonic() - started < WRITE_WITHIN
    with store.reading() as reader:
        assert batches.batch_progress(reader, world.a.batch).total == 3


def test_a_read_session_refuses_to_write(store, world):
    with store.reading() as reader:
        page = reader.get(Page, world.a.pages[0])
        page.source_name = "renamed"
        with pytest.raises(RuntimeError, match="read-only session"):
            reader.flush()
    with store.session() as s:
        assert s.get(Page, world.a.pages[0]).source_name == "p0.png"


def test_claims_keep_one_winner_while_readers_poll(store, world):
    with store.session() as s:
        rid = renders.queue_render(s, world.a.pages[0]).id
    stop = threading.Event()
    polls: list[int] = []

    def poll() -> None:
        while not stop.is_set():
            with store.reading() as reader:
                batches.pages_with_renders(reader, world.a.batch)
                polls.append(batches.batch_progress(reader, world.a.batch).total)

    readers = [threading.Thread(target=poll) for _ in range(3)]
    for t in readers:
        t.start()
    try:
        def attempt(i: int):  # noqa: ANN202
            with store.session() as s:
                return renders.claim_render(s, rid, f"w{i}", 3, lease_seconds=60)

        results, errors = race(4, attempt)
    finally:
        stop.set()
        for t in readers:
            t.join(10)
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and winners[0].attempt == 1
    assert all(isinstance(e, LeaseHeld) for e in errors) and len(winners) + len(errors) == 4
    assert polls and set(polls) == {2}
    with store.reading() as reader:
        assert reader.get(Render, rid).status == RunStatus.running


def test_pages_with_renders_loads_current_renders_in_two_queries(store, world):
    with store.session() as s:
        for pid in world.a.pages:
            renders.queue_render(s, pid)
    statements = []
    # SQLite's BEGIN is a statement of its own (PostgreSQL's goes with the first query): not counted.
    sa.event.listen(store.engine, "before_cursor_execute",
                    lambda *a: statements.append(a[2]) if not a[2].startswith("BEGIN") else None)
    with store.reading() as reader:
        pages = batches.pages_with_renders(reader, world.a.batch)
        assert len(statements) == 2
        got = [reader.get(Render, p.current_render_id).page_id for p in pages]
        assert len(statements) == 2  # found in the session, not asked for again
    assert got == world.a.pages


def test_token_use_is_recorded_at_most_once_per_interval(store, world):
    with store.session() as s:
        token, plaintext = accounts.create_api_token(s, world.a.artist, "poller")
    with store.reading() as reader:
        found = accounts.token_for(reader, plaintext)
        assert found.user_id == world.a.artist and accounts.touch_due(found)
    with store.session() as s:
        accounts.touch_token(s, token.id)
    with store.reading() as reader:
        assert not accounts.touch_due(accounts.token_for(reader, plaintext))
    with store.session() as s:
        s.get(ApiToken, token.id).last_used_at -= accounts.TOKEN_TOUCH_INTERVAL + dt.timedelta(seconds=1)
    with store.reading() as reader:
        assert accounts.touch_due(accounts.token_for(reader, plaintext))
        assert accounts.token_for(reader, plaintext[:-1] + "x") is None
