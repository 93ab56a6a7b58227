"""What the janitor may do to a render (`panelpaint.store.recovery`), on SQLite and PostgreSQL:
waiting is never lost, each lost render is sent again by exactly one guarded change, a stalled
finishing is taken over without colouring the page again, and a fenced attempt writes nothing."""
from __future__ import annotations

import datetime as dt

import pytest

from panelpaint.store import recovery, renders
from panelpaint.store.errors import StaleAttempt
from panelpaint.store.events import list_events
from panelpaint.store.recovery import Lapse
from panelpaint.store.schema import Render, RenderStage, RunStatus

from test_renders import claim, get, page_of, queue

LEASE, GRACE, MAX = 20.0, 5.0, 3
KEY = "handoff-key.npz"


def age(store, render_id, seconds, *fields):
    """Move the render's timestamps `seconds` into the past (as if that much time had gone by)."""
    with store.session() as s:
        r = s.get(Render, render_id)
        for name in fields or ("heartbeat_at", "started_at", "queued_at", "sent_at"):
            if getattr(r, name) is not None:
                setattr(r, name, getattr(r, name) - dt.timedelta(seconds=seconds))


def hand_off(store, render_id, attempt, key=KEY):
    with store.session() as s:
        renders.hand_off(s, render_id, attempt, key, 4, together=[render_id], panels=4)


def suspects(store, **kw):
    with store.session() as s:
        return recovery.suspects(s, lease=LEASE, grace=GRACE, **kw)


def recover(store, suspect):
    with store.session() as s:
        return recovery.recover(s, suspect, lease=LEASE, grace=GRACE, max_attempts=MAX)


def kinds(store, batch_id, render_id):
    with store.session() as s:
        return [e.kind for e in list_events(s, batch_id) if e.render_id == render_id]


def test_a_coloured_page_waiting_for_finishing_is_never_lost_nor_taken_over(store, world):
    rid = queue(store, world.a.pages[0])
    c = claim(store, rid, lease_seconds=LEASE)
    hand_off(store, rid, c.attempt)
    r = get(store, rid)
    assert (r.status, r.stage, r.handoff_key, r.attempt) == (RunStatus.running, RenderStage.waiting, KEY, 1)
    assert page_of(store, world.a.pages[0]).panels_total == 4
    age(store, rid, 3600)  # an hour in the io queue
    assert suspects(store, unsent=False) == []  # not silent: waiting
    # A late or duplicate render message finds nothing to redo: no takeover, no attempt spent.
    assert claim(store, rid, lease_seconds=LEASE) is None
    assert get(store, rid).attempt == 1
    # Only the broker can say whether it is lost: a candidate of the full sweep, checked there.
    (suspect,) = suspects(store, unsent=True)
    assert (suspect.lapse, suspect.checks_broker, suspect.handoff_key) == (Lapse.UNSENT_FINISHING, True, KEY)


def test_hand_off_is_fenced_and_repeatable(store, world):
    rid = queue(store, world.a.pages[0])
    c = claim(store, rid)
    hand_off(store, rid, c.attempt)
    hand_off(store, rid, c.attempt)  # a commit retried after its answer was lost: a no-op
    assert kinds(store, world.a.batch, rid).count("render.coloured") == 1
    with pytest.raises(StaleAttempt):
        hand_off(store, rid, c.attempt, "another-key.npz")
    with pytest.raises(StaleAttempt):
        hand_off(store, rid, c.attempt + 1)


def test_start_finishing_only_for_the_handed_off_attempt(store, world):
    rid = queue(store, world.a.pages[0])
    c = claim(store, rid)
    with pytest.raises(StaleAttempt):  # still colouring: nothing to finish yet
        with store.session() as s:
            renders.start_finishing(s, rid, c.attempt)
    hand_off(store, rid, c.attempt)
    for _ in range(2):  # a redelivered finishing goes on with it
        with store.session() as s:
            assert renders.start_finishing(s, rid, c.attempt).stage == RenderStage.finishing
    with pytest.raises(StaleAttempt):
        with store.session() as s:
            renders.start_finishing(s, rid, c.attempt + 1)


def test_a_silent_colouring_is_sent_again_once_and_the_claim_takes_it_over(store, world):
    rid = queue(store, world.a.pages[0])
    claim(store, rid, lease_seconds=LEASE)
    age(store, rid, LEASE - 1)
    assert suspects(store, unsent=False) == []  # within its lease
    age(store, rid, 2)
    (suspect,) = suspects(store, unsent=False)
    assert (suspect.lapse, suspect.checks_broker) == (Lapse.SILENT_COLOURING, False)
    # Two janitors saw it; one guarded change decides which sends.
    first, second = recover(store, suspect), recover(store, suspect)
    assert first is not None and second is None
    assert (first.render_id, first.attempt, first.task_id) == (rid, 1, get(store, rid).task_id)
    assert kinds(store, world.a.batch, rid).count("render.resent") == 1
    assert get(store, rid).status == RunStatus.running  # not requeued: the next claim decides
    # Sent once since its claim: the next sweep sends again only if the broker lost that too.
    age(store, rid, LEASE + 1, "sent_at")
    (again,) = suspects(store, unsent=False)
    assert again.checks_broker is True
    taken = claim(store, rid, lease_seconds=LEASE)
    assert taken.attempt == 2 and taken.takeover is True
    assert get(store, rid).sent_at is None
    with pytest.raises(StaleAttempt):  # the silent attempt, waking up, writes nothing
        hand_off(store, rid, 1)


def test_a_late_worker_beats_the_janitor(store, world):
    rid = queue(store, world.a.pages[0])
    c = claim(store, rid, lease_seconds=LEASE)
    age(store, rid, LEASE + 1)
    (suspect,) = suspects(store, unsent=False)
    hand_off(store, rid, c.attempt)  # the worker reported before the janitor's change
    assert recover(store, suspect) is None
    assert "render.resent" not in kinds(store, world.a.batch, rid)


def test_a_stalled_finishing_is_taken_over_without_colouring_again(store, world):
    rid = queue(store, world.a.pages[0])
    c = claim(store, rid)
    hand_off(store, rid, c.attempt)
    with store.session() as s:
        renders.start_finishing(s, rid, c.attempt)
    age(store, rid, LEASE + 1)
    (suspect,) = suspects(store, unsent=False)
    assert (suspect.lapse, suspect.checks_broker) == (Lapse.STALLED_FINISHING, False)
    resend = recover(store, suspect)
    assert recover(store, suspect) is None  # once
    assert (resend.attempt, resend.handoff_key, resend.lapse.sends_finishing) == (2, KEY, True)
    r = get(store, rid)
    assert (r.status, r.stage, r.attempt, r.handoff_key) == (RunStatus.running, RenderStage.waiting, 2, KEY)
    # The frozen finisher wakes: every write of its attempt is refused.
    with pytest.raises(StaleAttempt):
        with store.session() as s:
            renders.set_progress(s, rid, 1, 2, 4)
    with pytest.raises(StaleAttempt):
        with store.session() as s:
            renders.complete_render(s, rid, 1, {"png": "x.png"})
    with store.session() as s:  # the finishing sent again completes it
        renders.start_finishing(s, rid, 2)
        renders.complete_render(s, rid, 2, {"png": "x.png"})
    assert kinds(store, world.a.batch, rid).count("render.coloured") == 1
    assert kinds(store, world.a.batch, rid).count("render.claimed") == 1


def test_a_finishing_that_stalls_every_time_gives_up(store, world):
    rid = queue(store, world.a.pages[0])
    c = claim(store, rid)
    hand_off(store, rid, c.attempt)
    for attempt in range(1, MAX + 1):
        with store.session() as s:
            renders.start_finishing(s, rid, attempt)
        age(store, rid, LEASE + 1)
        (suspect,) = suspects(store, unsent=False)
        resend = recover(store, suspect)
        assert (resend is None) == (attempt == MAX)
    r = get(store, rid)
    assert r.status == RunStatus.failed and r.error == f"gave up after {MAX} attempts: finishing stalled"
    assert page_of(store, world.a.pages[0]).status == RunStatus.failed


def test_queued_renders_the_broker_may_lack_are_candidates_once_past_the_grace(store, world):
    rid = queue(store, world.a.pages[0])
    assert suspects(store, unsent=True) == []  # just queued: its message may still be on its way
    age(store, rid, GRACE + 1)
    (suspect,) = suspects(store, unsent=True)
    assert (suspect.lapse, suspect.checks_broker, suspect.task_id) == (Lapse.UNSENT, True, get(store, rid).task_id)
    assert recover(store, suspect) is not None and recover(store, suspect) is None
    assert suspects(store, unsent=True) == []  # just sent again


def test_a_fenced_failure_is_stale_not_requeued(store, world):
    """A failure written by an attempt the janitor or a takeover moved on from is refused, even
    under the same attempt number (the render went back to the queue meanwhile)."""
    rid = queue(store, world.a.pages[0])
    c = claim(store, rid)
    with store.session() as s:
        renders.fail_render(s, rid, c.attempt, "worker lost", retryable=True, max_attempts=MAX)
        renders.fail_render(s, rid, c.attempt, "worker lost", retryable=True, max_attempts=MAX)  # repeated: a no-op
    with pytest.raises(StaleAttempt):
        with store.session() as s:
            renders.fail_render(s, rid, c.attempt, "took longer than 8 s", retryable=True, max_attempts=MAX)
    r = get(store, rid)
    assert (r.status, r.stage, r.sent_at is not None) == (RunStatus.queued, None, True)
