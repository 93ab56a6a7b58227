"""Panel re-renders: a finished one becomes the page's shown result (fenced), and only when that
is still right; a later page render takes the page back; reviews of the other panels are kept."""
from __future__ import annotations

import pytest

from panelpaint.store import batches, renders
from panelpaint.store.errors import StaleAttempt
from panelpaint.store.events import list_events
from panelpaint.store.reviews import review
from panelpaint.store.schema import Page, Panel, Render, ReviewStatus, RunStatus

OUT = {"composite": "c" * 64 + ".png", "flats": "f" * 64 + ".png"}


def finished_page(store, world):
    """Page 0 of studio A with two panels and a succeeded page render: (page, render, [panel ids])."""
    page = world.a.pages[0]
    with store.session() as s:
        panels = [p.id for p in batches.set_panels(s, page, [{"bbox": [0, 0, 50, 80]},
                                                            {"bbox": [50, 0, 50, 80]}])]
        rid = renders.queue_render(s, page).id
    finish(store, rid)
    return page, rid, panels


def finish(store, rid, based_on=None, worker="w1"):
    with store.session() as s:
        c = renders.claim_render(s, rid, worker, 3)
    with store.session() as s:
        renders.complete_render(s, rid, c.attempt, OUT, based_on=based_on)
    return c


def current(store, page):
    with store.session() as s:
        p = s.get(Page, page)
        return p.current_render_id, p.status


def events(store, world, rid, kind):
    with store.session() as s:
        return [e.data for e in list_events(s, world.a.studio, render_id=rid) if e.kind == kind]


def test_a_finished_panel_render_becomes_the_pages_result_and_a_page_render_takes_it_back(store, world):
    page, base, (p1, p2) = finished_page(store, world)
    with store.session() as s:
        review(s, page, p1, world.a.reviewer, "approved")
        review(s, page, p2, world.a.reviewer, "rejected", "wrong colours")
    with store.session() as s:
        panel_render = renders.rerender(s, page, p2, seed=5).id
    assert current(store, page) == (base, RunStatus.succeeded)  # queued: the old result is still shown
    with store.session() as s:
        assert s.get(Panel, p1).review_status == ReviewStatus.approved  # kept
        assert s.get(Panel, p2).review_status == ReviewStatus.pending  # reset for the new colours
    finish(store, panel_render, based_on=base)
    assert current(store, page) == (panel_render, RunStatus.succeeded)
    assert events(store, world, panel_render, "render.current")[0]["replaced"] == base
    with store.session() as s:
        assert s.get(Panel, p1).review_status == ReviewStatus.approved
    # A later page render takes the page back, and then shows its own result.
    with store.session() as s:
        again = renders.rerender(s, page).id
    assert current(store, page) == (again, RunStatus.queued)
    finish(store, again)
    assert current(store, page) == (again, RunStatus.succeeded)


def test_a_fenced_panel_attempt_moves_nothing(store, world):
    page, base, (p1, _) = finished_page(store, world)
    with store.session() as s:
        rid = renders.rerender(s, page, p1).id
    with store.session() as s:
        lost = renders.claim_render(s, rid, "w1", 3)
    with store.session() as s:  # w1 stopped reporting; w2 takes the render over
        renders.claim_render(s, rid, "w2", 3, lease_seconds=0)
    with pytest.raises(StaleAttempt):
        with store.session() as s:
            renders.complete_render(s, rid, lost.attempt, OUT, based_on=base)
    assert current(store, page) == (base, RunStatus.succeeded)
    with store.session() as s:
        winner = s.get(Render, rid).attempt
        renders.complete_render(s, rid, winner, OUT, based_on=base)
    assert current(store, page) == (rid, RunStatus.succeeded)
    with store.session() as s:  # repeating the completion is a no-op
        renders.complete_render(s, rid, winner, OUT, based_on=base)
    assert len(events(store, world, rid, "render.current")) == 1


def test_a_panel_render_never_hides_a_newer_page_result(store, world):
    page, base, (p1, p2) = finished_page(store, world)
    with store.session() as s:
        panel_render = renders.rerender(s, page, p1).id
        page_render = renders.rerender(s, page).id  # queued after the panel re-render
    finish(store, panel_render, based_on=base)  # the page render is queued: the page is not finished
    assert current(store, page) == (page_render, RunStatus.queued)
    assert "page is queued" in events(store, world, panel_render, "render.not_current")[0]["reason"]
    finish(store, page_render)
    # Merged onto an older result than the one now shown: kept in the history, not shown.
    with store.session() as s:
        late = renders.rerender(s, page, p2).id
    finish(store, late, based_on=base)
    assert current(store, page) == (page_render, RunStatus.succeeded)
    assert "changed" in events(store, world, late, "render.not_current")[0]["reason"]


def test_a_panel_rendered_as_a_whole_page_replaces_only_an_older_result(store, world):
    page, base, (p1, _) = finished_page(store, world)
    with store.session() as s:
        rid = renders.rerender(s, page, p1).id
    finish(store, rid, based_on=None)  # the worker found no base flats and coloured the whole page
    assert current(store, page) == (rid, RunStatus.succeeded)


def test_a_panel_decision_is_recorded_against_the_result_the_reviewer_sees(store, world):
    from panelpaint.store.schema import Review

    page, base, (p1, _) = finished_page(store, world)
    with store.session() as s:
        panel_render = renders.rerender(s, page, p1).id
    finish(store, panel_render, based_on=base)
    with store.session() as s:
        assert review(s, page, p1, world.a.reviewer, "rejected").render_id == panel_render
    with store.session() as s:
        again = renders.rerender(s, page).id
    finish(store, again)
    with store.session() as s:  # after a newer page render, the panel is judged on that page's result
        row = review(s, page, p1, world.a.reviewer, "approved")
        assert isinstance(row, Review) and row.render_id == again
