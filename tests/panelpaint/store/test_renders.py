"""Renders: queueing, atomic claims (also under threads), leases, fencing, idempotent results,
the attempt cap, cancellation, retry and re-render, on SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt

import pytest

from panelpaint import limits
from panelpaint.store import batches, renders
from panelpaint.store.errors import IllegalTransition, InvalidInput, LeaseHeld, NotFound, StaleAttempt
from panelpaint.store.events import list_events
from panelpaint.store.schema import Page, Panel, Render, ReviewStatus, RunStatus
from tests.testkit import race

OUT = {"png": "c" * 64 + ".png"}


def queue(store, page_id, **kw):
    with store.session() as s:
        return renders.queue_render(s, page_id, **kw).id


def claim(store, render_id, worker="w1", max_attempts=3, **kw):
    with store.session() as s:
        return renders.claim_render(s, render_id, worker, max_attempts, **kw)


def get(store, render_id):
    with store.session() as s:
        return s.get(Render, render_id)


def page_of(store, page_id):
    with store.session() as s:
        return s.get(Page, page_id)


def age_heartbeat(store, render_id, seconds):
    with store.session() as s:
        r = s.get(Render, render_id)
        r.heartbeat_at = r.heartbeat_at - dt.timedelta(seconds=seconds)


def test_queue_render_versions_style_seed_and_task_id(store, world):
    page = world.a.pages[0]
    rid = queue(store, page)
    r = get(store, rid)
    assert (r.version, r.status, r.attempt, r.panel_id) == (1, RunStatus.queued, 0, None)
    assert r.style_id == world.a.style  # the batch's default style
    assert r.seed is None and len(r.task_id) == 36  # no seed: the canonical colouring
    assert page_of(store, page).current_render_id == rid
    with pytest.raises(IllegalTransition, match="still queued or running"):
        queue(store, page)
    with store.session() as s:  # a panel render of the same page is a separate series
        panels = batches.set_panels(s, page, [{"bbox": [0, 0, 10, 10], "hints": [{"x": 1}]}])
        pr = renders.queue_render(s, page, panels[0].id, seed=7)
        assert (pr.version, pr.seed, pr.hints) == (1, 7, [{"x": 1}])
    with pytest.raises(NotFound):
        queue(store, world.a.pages[1], panel_id=panels[0].id)  # a panel of another page
    with pytest.raises(NotFound):
        queue(store, world.a.pages[1], style_id=world.b.style)  # another studio's style
    with pytest.raises(InvalidInput):
        queue(store, world.a.pages[1], seed=-1)


def test_claim_sets_running_and_fences_with_attempt(store, world):
    page = world.a.pages[0]
    rid = queue(store, page)
    c = claim(store, rid, "gpu0", task_id="celery-1")
    assert (c.attempt, c.takeover, c.source_key, c.direction, c.options) == (1, False, "a" * 64 + ".png", "rtl",
                                                                            {"work_size": 256})
    r = get(store, rid)
    assert (r.status, r.attempt, r.worker, r.task_id) == (RunStatus.running, 1, "gpu0", "celery-1")
    assert r.started_at is not None and r.heartbeat_at is not None
    assert page_of(store, page).status == RunStatus.running
    with store.session() as s:
        renders.set_progress(s, rid, 1, 1, 3)
    p = page_of(store, page)
    assert (p.panels_done, p.panels_total) == (1, 3)
    with pytest.raises(StaleAttempt):
        with store.session() as s:
            renders.set_progress(s, rid, 2, 2, 3)


def test_second_claim_meets_a_live_lease(store, world):
    rid = queue(store, world.a.pages[0])
    claim(store, rid, "w1")
    with pytest.raises(LeaseHeld) as err:
        claim(store, rid, "w2", lease_seconds=60)
    assert 0 < err.value.retry_in <= 60
    assert get(store, rid).attempt == 1


def test_redelivery_takes_over_and_fences_the_lost_attempt(store, world):
    """A worker killed mid-render: the redelivered task claims attempt 2, the old attempt's writes
    are rejected, and exactly one result is stored."""
    page = world.a.pages[0]
    rid = queue(store, page)
    first = claim(store, rid, "w1")
    age_heartbeat(store, rid, 100)
    second = claim(store, rid, "w2", lease_seconds=30)
    assert (second.attempt, second.takeover, second.previous_worker) == (2, True, "w1")
    with pytest.raises(StaleAttempt) as err:
        with store.session() as s:
            renders.complete_render(s, rid, first.attempt, {"png": "d" * 64 + ".png"})
    assert (err.value.attempt, err.value.current_attempt) == (1, 2)
    with pytest.raises(StaleAttempt):
        with store.session() as s:
            renders.fail_render(s, rid, first.attempt, "late failure")
    with store.session() as s:
        r = renders.complete_render(s, rid, second.attempt, OUT, {"total": 1.5}, "m-1", "w2")
        assert r.status == RunStatus.succeeded
    r = get(store, rid)
    assert (r.outputs, r.attempt, r.worker, r.model_version, r.timings) == (OUT, 2, "w2", "m-1", {"total": 1.5})
    assert page_of(store, page).status == RunStatus.succeeded
    with store.session() as s:
        kinds = [e.kind for e in list_events(s, world.a.studio, render_id=rid)]
    assert kinds == ["render.queued", "render.claimed", "render.claimed", "render.succeeded"]


def test_takeover_at_once_with_zero_lease(store, world):
    rid = queue(store, world.a.pages[0])
    claim(store, rid, "w1")
    assert claim(store, rid, "w2", lease_seconds=0).attempt == 2


def test_complete_is_idempotent_and_first_result_wins(store, world):
    rid = queue(store, world.a.pages[0])
    c = claim(store, rid)
    with store.session() as s:
        renders.complete_render(s, rid, c.attempt, OUT)
    with store.session() as s:
        again = renders.complete_render(s, rid, c.attempt, {"png": "e" * 64 + ".png"})
        assert again.outputs == OUT
    with store.session() as s:
        assert [e.kind for e in list_events(s, world.a.studio, render_id=rid)].count("render.succeeded") == 1
    with pytest.raises(StaleAttempt):  # a finished render cannot fail afterwards
        with store.session() as s:
            renders.fail_render(s, rid, c.attempt, "boom")
    with pytest.raises(InvalidInput):
        with store.session() as s:
            renders.complete_render(s, rid, c.attempt, {})


def test_claims_of_finished_renders_return_none(store, world):
    rid = queue(store, world.a.pages[0])
    c = claim(store, rid)
    with store.session() as s:
        renders.complete_render(s, rid, c.attempt, OUT)
    assert claim(store, rid, lease_seconds=0) is None
    with pytest.raises(NotFound):
        claim(store, 999_999)


def test_fail_not_retryable_fails_page(store, world):
    page = world.a.pages[0]
    rid = queue(store, page)
    c = claim(store, rid)
    with store.session() as s:
        renders.fail_render(s, rid, c.attempt, "bad image", retryable=False)
    with store.session() as s:  # idempotent
        assert renders.fail_render(s, rid, c.attempt, "bad image").status == RunStatus.failed
    p = page_of(store, page)
    assert (p.status, p.error) == (RunStatus.failed, "bad image")
    assert claim(store, rid) is None


def test_retryable_failure_requeues_until_the_cap(store, world):
    page = world.a.pages[0]
    rid = queue(store, page)
    for attempt in (1, 2):
        c = claim(store, rid, max_attempts=3)
        assert c.attempt == attempt
        with store.session() as s:
            assert renders.fail_render(s, rid, c.attempt, "cuda oom", retryable=True, max_attempts=3).status \
                == RunStatus.queued
        assert page_of(store, page).status == RunStatus.queued
    c = claim(store, rid, max_attempts=3)
    with store.session() as s:
        r = renders.fail_render(s, rid, c.attempt, "cuda oom", retryable=True, max_attempts=3)
    assert r.status == RunStatus.failed and r.error == "gave up after 3 attempts: cuda oom"


def test_attempt_cap_stops_a_poison_page(store, world):
    """A page that kills its worker every time: each redelivery claims again, until the cap."""
    page = world.a.pages[0]
    rid = queue(store, page)
    for attempt in (1, 2):
        assert claim(store, rid, max_attempts=2, lease_seconds=0).attempt == attempt
    assert claim(store, rid, max_attempts=2, lease_seconds=0) is None
    r = get(store, rid)
    assert (r.status, r.attempt, r.error) == (RunStatus.failed, 2, "gave up after 2 attempts")
    p = page_of(store, page)
    assert (p.status, p.error) == (RunStatus.failed, "gave up after 2 attempts")
    assert page_of(store, world.a.pages[1]).status == RunStatus.queued  # others unaffected


def test_cancel_batch(store, world):
    p0, p1 = world.a.pages
    running = queue(store, p0)
    queued = queue(store, p1)
    c = claim(store, running)
    with store.session() as s:
        task_ids = batches.cancel_batch(s, world.a.batch, user_id=world.a.artist)
    assert task_ids == [get(store, queued).task_id]
    assert get(store, queued).status == RunStatus.cancelled
    assert page_of(store, p1).status == RunStatus.cancelled
    assert get(store, running).status == RunStatus.running  # told to stop, not killed
    other = queue(store, world.b.pages[0])
    with store.session() as s:
        assert batches.is_cancelled(s, running) and batches.is_cancelled(s, queued)
        assert not batches.is_cancelled(s, other)
        renders.acknowledge_cancel(s, running, c.attempt)
    with store.session() as s:
        assert renders.acknowledge_cancel(s, running, c.attempt).status == RunStatus.cancelled  # idempotent
    assert page_of(store, p0).status == RunStatus.cancelled
    assert claim(store, queued) is None
    with pytest.raises(IllegalTransition, match="cancelled"):
        queue(store, p0)
    with pytest.raises(IllegalTransition):
        with store.session() as s:
            batches.add_page(s, world.a.batch, "late.png", "a" * 64 + ".png", 10, 10)
    with store.session() as s:
        assert batches.cancel_batch(s, world.a.batch) == []  # idempotent


def test_redelivered_claim_in_cancelled_batch_cancels_the_render(store, world):
    rid = queue(store, world.a.pages[0])
    claim(store, rid)
    with store.session() as s:
        batches.cancel_batch(s, world.a.batch)
    assert claim(store, rid, lease_seconds=0) is None
    assert get(store, rid).status == RunStatus.cancelled


def test_retry_page_makes_a_new_render(store, world):
    page = world.a.pages[0]
    rid = queue(store, page, seed=42)
    with pytest.raises(IllegalTransition):
        with store.session() as s:
            renders.retry_page(s, page)  # queued: nothing to retry
    c = claim(store, rid)
    with store.session() as s:
        renders.fail_render(s, rid, c.attempt, "boom")
    with store.session() as s:
        new = renders.retry_page(s, page, user_id=world.a.artist)
        assert (new.version, new.seed, new.status, new.attempt) == (2, 42, RunStatus.queued, 0)
    assert get(store, rid).status == RunStatus.failed  # history kept
    p = page_of(store, page)
    assert (p.status, p.error, p.current_render_id) == (RunStatus.queued, None, new.id)


def test_unreadable_page_cannot_be_queued(store, world):
    with store.session() as s:
        bad = batches.add_page(s, world.a.batch, "broken.png", None, None, None, error="cannot identify image")
    assert (bad.status, bad.error) == (RunStatus.failed, "cannot identify image")
    with pytest.raises(IllegalTransition, match="no readable source"):
        queue(store, bad.id)
    with pytest.raises(IllegalTransition):
        with store.session() as s:
            renders.retry_page(s, bad.id)


def test_rerender_resets_reviews(store, world):
    from panelpaint.store.reviews import review

    page = world.a.pages[0]
    with store.session() as s:
        panel = batches.set_panels(s, page, [{"bbox": [0, 0, 10, 10]}])[0].id
    rid = queue(store, page)
    c = claim(store, rid)
    with store.session() as s:
        renders.complete_render(s, rid, c.attempt, OUT)
        review(s, page, None, world.a.reviewer, "rejected", "too dark")
        review(s, page, panel, world.a.reviewer, "approved")
    with store.session() as s:
        new = renders.rerender(s, page, style_id=None, seed=3, user_id=world.a.artist)
        assert new.version == 2
    p = page_of(store, page)
    assert (p.status, p.review_status, p.current_render_id) == (RunStatus.queued, ReviewStatus.pending, new.id)
    with store.session() as s:
        assert s.get(Panel, panel).review_status == ReviewStatus.pending




def test_concurrent_claims_of_one_render_have_one_winner(store, world):
    rid = queue(store, world.a.pages[0])

    def attempt(i):
        with store.session() as s:
            c = renders.claim_render(s, rid, f"w{i}", 3, lease_seconds=60)
            return c
    results, errors = race(4, attempt)
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and winners[0].attempt == 1
    assert all(isinstance(e, LeaseHeld) for e in errors) and len(winners) + len(errors) == 4
    assert get(store, rid).attempt == 1


def test_max_attempts_must_be_positive(store, world):
    rid = queue(store, world.a.pages[0])
    with pytest.raises(InvalidInput):
        claim(store, rid, max_attempts=0)


def test_late_write_racing_a_takeover_leaves_one_result(store, world):
    """A stalled worker wakes and writes while a redelivered task takes over: whichever commits
    first wins, the other is fenced or finds nothing to do, and one result is stored."""
    for round_ in range(3):
        with store.session() as s:
            page = batches.add_page(s, world.a.batch, f"race{round_}.png", "a" * 64 + ".png", 10, 10).id
        rid = queue(store, page)
        first = claim(store, rid, "stalled")
        outcome = {}

        def act(i):
            with store.session() as s:
                if i == 0:
                    try:
                        renders.complete_render(s, rid, first.attempt, {"png": "1" * 64 + ".png"})
                        outcome["late"] = "applied"
                    except StaleAttempt:
                        outcome["late"] = "fenced"
                    return
                c = renders.claim_render(s, rid, "fresh", 3, lease_seconds=0)
            if c is None:
                outcome["fresh"] = "nothing to do"
                return
            with store.session() as s:
                try:
                    renders.complete_render(s, rid, c.attempt, {"png": "2" * 64 + ".png"})
                    outcome["fresh"] = "applied"
                except StaleAttempt:
                    outcome["fresh"] = "fenced"

        _, errors = race(2, act)
        assert errors == []
        assert sorted(outcome.values()) in (["applied", "fenced"], ["applied", "nothing to do"])
        with store.session() as s:
            r = s.get(Render, rid)
            events = [e.kind for e in list_events(s, world.a.studio, render_id=rid)]
        assert r.status == RunStatus.succeeded and events.count("render.succeeded") == 1
        winner = "1" if outcome["late"] == "applied" else "2"
        assert r.outputs == {"png": winner * 64 + ".png"}


def test_cancel_racing_a_claim_never_leaves_work_unaccounted(store, world):
    """Cancel and claim at the same moment: either the claim wins (the render runs and its worker
    is told to stop) or the cancel wins (the claim finds nothing); never a queued render left."""
    for round_ in range(3):
        with store.session() as s:
            b = batches.create_batch(s, world.a.studio, None, f"race {round_}")
            page = batches.add_page(s, b.id, "p.png", "a" * 64 + ".png", 10, 10).id
        rid = queue(store, page)
        got = {}

        def act(i):
            with store.session() as s:
                if i == 0:
                    got["revoke"] = batches.cancel_batch(s, b.id)
                else:
                    got["claim"] = renders.claim_render(s, rid, "w", 3)

        _, errors = race(2, act)
        assert errors == []
        r, p = get(store, rid), page_of(store, page)
        if got["claim"] is not None:
            assert r.status == RunStatus.running and got["revoke"] == []
            with store.session() as s:
                assert batches.is_cancelled(s, rid)
        else:
            assert r.status == RunStatus.cancelled and got["revoke"] == [r.task_id]
        assert p.status == r.status


@pytest.mark.parametrize("seed", [-1, limits.SEED_MAX + 1, 2**62, "7", 1.5, True])
def test_seeds_outside_0_to_seed_max_are_refused(store, world, seed):
    with pytest.raises(InvalidInput, match=f"seed must be a whole number from 0 to {limits.SEED_MAX}"):
        queue(store, world.a.pages[0], seed=seed)


def test_seed_max_is_a_signed_32_bit_integer_and_accepted(store, world):
    assert limits.SEED_MAX == 2**31 - 1
    assert get(store, queue(store, world.a.pages[0], seed=limits.SEED_MAX)).seed == limits.SEED_MAX


def test_a_new_page_is_rendered_with_its_batchs_seed_option(store, world):
    with store.session() as s:
        plain = renders.queue_new_page(s, world.a.pages[0])
        assert plain.seed is None  # no seed option: the canonical colouring
        batch = batches.create_batch(s, world.a.studio, None, "seeded", world.a.style, options={"seed": 1234})
        page = batches.add_page(s, batch.id, "p.png", "a" * 64 + ".png", 100, 80)
        assert renders.queue_new_page(s, page.id).seed == 1234
        with pytest.raises(NotFound):
            renders.queue_new_page(s, 10**9)


def test_hints_given_must_lie_on_the_panel_they_colour(store, world):
    page = world.a.pages[0]
    with store.session() as s:
        top, bottom = batches.set_panels(s, page, [{"bbox": [0, 0, 100, 40]},
                                                   {"bbox": [0, 40, 100, 40]}])
        top, bottom = top.id, bottom.id
    dot = {"x": 10, "y": 50, "color": "#00AA00"}
    with pytest.raises(InvalidInput, match=r"hint 1 at \(10, 50\) is not on panel 1: place it inside"):
        queue(store, page, panel_id=top, hints=[dot])
    with pytest.raises(InvalidInput, match=r"hint 1 at \(150, 5\) is outside the 100x80 page"):
        queue(store, page, hints=[{"x": 150, "y": 5, "color": "#00aa00"}])
    with pytest.raises(InvalidInput, match="hint 0: needs numeric x and y"):
        queue(store, page, hints=[{"y": 5, "color": "#00aa00"}])
    with pytest.raises(InvalidInput, match="hints must be a list"):
        queue(store, page, hints={"x": 1})
    rid = queue(store, page, panel_id=bottom, hints=[dot])
    assert get(store, rid).hints == [{"x": 10.0, "y": 50.0, "color": "#00aa00"}]  # normalised
