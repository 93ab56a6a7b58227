"""Re-rendering everything rejected in a batch in one action (`panelpaint.store.rework`)."""
from __future__ import annotations

import pytest

from panelpaint.store import batches, renders, styles
from panelpaint.store.errors import IllegalTransition, InvalidInput, NotFound
from panelpaint.store.events import list_events
from panelpaint.store.reviews import review
from panelpaint.store.rework import rejected_count, rerender_rejected
from panelpaint.store.schema import Batch, Page, Render, ReviewStatus, RunStatus
from tests.testkit import KEY_A, KEY_B

OUT = {"png": KEY_A}


def finish(store, rid):
    with store.session() as s:
        c = renders.claim_render(s, rid, "w", 3)
    with store.session() as s:
        renders.complete_render(s, rid, c.attempt, OUT)


def finished_batch(store, world):
    """Studio A's two pages with two panels each, finished; page 0 coloured with a hint."""
    ids = []
    for i, page in enumerate(world.a.pages):
        with store.session() as s:
            panels = batches.set_panels(s, page, [{"bbox": [0, 0, 50, 80]}, {"bbox": [50, 0, 50, 80]}])
            hints = [{"x": 10, "y": 10, "color": "#ff0000"}] if i == 0 else None
            rid = renders.queue_render(s, page, hints=hints).id
            ids.append([p.id for p in panels])
        finish(store, rid)
    return ids


def test_rejected_pages_and_panels_are_rendered_again_in_one_action(store, world):
    (a1, a2), (b1, b2) = finished_batch(store, world)
    page_a, page_b = world.a.pages
    with store.session() as s:
        other = styles.add_style_reference(s, world.a.studio, "night", [], KEY_B, 64, 64, world.a.admin).id
        with pytest.raises(IllegalTransition, match="nothing in batch"):
            rerender_rejected(s, world.a.studio, world.a.batch)
        review(s, page_a, None, world.a.reviewer, "rejected")
        review(s, page_b, b1, world.a.reviewer, "approved")
        review(s, page_b, b2, world.a.reviewer, "rejected")
    with store.session() as s:
        assert rejected_count(s.get(Batch, world.a.batch)) == 2
        with pytest.raises(NotFound):
            rerender_rejected(s, world.b.studio, world.a.batch)  # another studio's batch
        with pytest.raises(NotFound):
            rerender_rejected(s, world.a.studio, world.a.batch, style_id=world.b.style)
        with pytest.raises(InvalidInput):
            rerender_rejected(s, world.a.studio, world.a.batch, seed=-1)
    with store.session() as s:
        done = rerender_rejected(s, world.a.studio, world.a.batch, other, seed=7, user_id=world.a.reviewer)
        made = [(r.page_id, r.panel_id, r.style_id, r.seed, r.hints) for r in done.renders]
        assert made == [(page_a, None, other, 7, [{"x": 10.0, "y": 10.0, "color": "#ff0000"}]),
                        (page_b, b2, other, 7, [])]
        assert done.skipped == []
    with store.session() as s:
        a, b = s.get(Page, page_a), s.get(Page, page_b)
        assert (a.status, a.review_status) == (RunStatus.queued, ReviewStatus.pending)
        assert [p.review_status for p in b.panels] == [ReviewStatus.approved, ReviewStatus.pending]
        assert rejected_count(s.get(Batch, world.a.batch)) == 0
        event = list_events(s, world.a.studio, kind="batch.rerender_rejected")[0]
        assert event.data["renders"] == [r.id for r in done.renders] and event.data["style_id"] == other


def test_hints_can_be_cleared_and_busy_work_is_passed_by(store, world):
    _, (b1, _) = finished_batch(store, world)
    page_a, page_b = world.a.pages
    with store.session() as s:
        review(s, page_a, None, world.a.reviewer, "rejected")
    with store.session() as s:
        busy = renders.rerender(s, page_b, b1).id  # panel 1 of page b is being coloured again...
    with store.session() as s:
        review(s, page_b, b1, world.a.reviewer, "rejected")  # ...and its old colours rejected meanwhile
    with store.session() as s:
        done = rerender_rejected(s, world.a.studio, world.a.batch, hints="clear")
        assert [(r.page_id, r.panel_id, r.hints) for r in done.renders] == [(page_a, None, [])]
        assert [(p.id, panel.id) for p, panel, _ in done.skipped] == [(page_b, b1)]
        assert f"render {busy} of this panel is still queued" in done.skipped[0][2]
    with store.session() as s:
        with pytest.raises(InvalidInput, match="hints must be keep or clear"):
            rerender_rejected(s, world.a.studio, world.a.batch, hints="smudge")


def test_a_cancelled_batch_is_refused(store, world):
    finished_batch(store, world)
    with store.session() as s:
        review(s, world.a.pages[0], None, world.a.reviewer, "rejected")
        batches.cancel_batch(s, world.a.batch)
    with store.session() as s:
        with pytest.raises(IllegalTransition, match="cancelled"):
            rerender_rejected(s, world.a.studio, world.a.batch)
