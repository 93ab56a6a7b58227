"""Claiming the pages that follow a claimed one, for colouring them in one forward pass: only
queued, never-tried page renders of the same batch and style after it, each once, on SQLite and
PostgreSQL."""
from __future__ import annotations

import dataclasses

import pytest

from panelpaint.store import batches, renders, styles
from panelpaint.store.errors import StaleAttempt
from panelpaint.store.schema import Page, Render, RunStatus
from test_renders import age_heartbeat, claim, get, queue
from tests.testkit import KEY_A, KEY_B, race


@pytest.fixture
def chapter(store, world):
    """World A's batch with 8 pages in all, each with a queued render."""
    with store.session() as s:
        for i in range(6):
            batches.add_page(s, world.a.batch, f"more-{i}.png", KEY_A, 100, 80)
        pages = [p.id for p in batches.get_batch(s, world.a.studio, world.a.batch).pages]
    return pages, [queue(store, p) for p in pages]


def follow(store, c, limit, worker="w1", max_attempts=3):
    with store.session() as s:
        return renders.claim_following(s, c, worker, max_attempts, limit=limit, lease_seconds=60)


def test_takes_the_following_queued_pages_in_order_up_to_the_limit(store, world, chapter):
    _, ids = chapter
    first = claim(store, ids[2])
    taken = follow(store, first, 3)
    assert [c.render_id for c in taken] == ids[3:6]
    for c in taken:
        r = get(store, c.render_id)
        assert (r.status, r.attempt, r.worker) == (RunStatus.running, 1, "w1") and c.attempt == 1
        assert r.task_id == c.task_id  # each keeps its own task id: its own message finds it running
    assert get(store, ids[0]).status == get(store, ids[6]).status == RunStatus.queued  # before, and over the limit


def test_skips_other_styles_panel_renders_tried_and_claimed_renders(store, world, chapter):
    pages, ids = chapter
    with store.session() as s:
        other = styles.add_style_reference(s, world.a.studio, "villain", [], KEY_B, 64, 64).id
    # page 2: another style; page 3: tried once before; page 4: claimed by another worker.
    with store.session() as s:
        s.get(Render, ids[2]).style_id = other
    c3 = claim(store, ids[3])
    with store.session() as s:
        renders.fail_render(s, ids[3], c3.attempt, "worker lost", retryable=True)
    claim(store, ids[4], worker="elsewhere")
    with store.session() as s:  # page 5 also has a panel re-render queued: never taken along
        panel = batches.set_panels(s, pages[5], [{"bbox": [0, 0, 10, 10]}])[0]
    with store.session() as s:  # finished, so that the panel may be re-rendered
        s.get(Render, ids[5]).status = s.get(Page, pages[5]).status = RunStatus.succeeded
    with store.session() as s:
        panel_render = renders.rerender(s, pages[5], panel.id).id
    taken = follow(store, claim(store, ids[0]), 10)
    assert [c.render_id for c in taken] == [ids[1], ids[6], ids[7]]
    assert get(store, panel_render).status == RunStatus.queued
    assert get(store, ids[4]).worker == "elsewhere"


def test_panel_renders_and_cancelled_batches_take_nothing(store, world, chapter):
    pages, ids = chapter
    first = claim(store, ids[0])
    with store.session() as s:
        batches.cancel_batch(s, world.a.batch)
    assert follow(store, first, 5) == []
    # A panel re-render colours one panel of one page: it never takes pages along.
    assert follow(store, dataclasses.replace(first, panel_id=1), 5) == []
    assert follow(store, first, 0) == []


def test_two_workers_following_at_once_never_take_the_same_page(store, world, chapter):
    _, ids = chapter
    firsts = [claim(store, ids[0], worker="w0"), claim(store, ids[1], worker="w1")]

    def run(i):
        return [c.render_id for c in follow(store, firsts[i], 6, worker=f"w{i}")]

    results, errors = race(2, run)
    assert errors == []
    taken = [r for got in results for r in got]
    assert sorted(taken) == ids[2:]  # every following page once, none twice
    for rid in taken:
        assert get(store, rid).attempt == 1


def test_a_followed_page_is_fenced_and_taken_over_like_any_other(store, world, chapter):
    _, ids = chapter
    (second,) = follow(store, claim(store, ids[0]), 1)
    age_heartbeat(store, second.render_id, 500)  # the worker that took it along died
    again = claim(store, second.render_id, worker="w2", lease_seconds=60)
    assert again.attempt == 2 and again.takeover
    with store.session() as s, pytest.raises(StaleAttempt):
        renders.set_progress(s, second.render_id, second.attempt, 0, 4)


def test_only_pages_with_the_same_seed_are_taken_along(store, world, chapter):
    """The seed moves the style code inside the shared forward pass, so a seeded render and a
    canonical one (or two seeds) are never coloured together."""
    _, ids = chapter
    with store.session() as s:
        s.get(Render, ids[1]).seed = 11
        s.get(Render, ids[2]).seed = 12
        s.get(Render, ids[3]).seed = 11
    assert [c.render_id for c in follow(store, claim(store, ids[0]), 2)] == ids[4:6]
    assert [c.render_id for c in follow(store, claim(store, ids[1]), 5)] == [ids[3]]
    assert get(store, ids[2]).status == RunStatus.queued
