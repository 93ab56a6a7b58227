"""Reviews: who may decide, what can be reviewed, and the pending -> decision rule."""
from __future__ import annotations

import pytest

from panelpaint.store import batches, renders
from panelpaint.store.errors import Forbidden, IllegalTransition, InvalidInput, NotFound
from panelpaint.store.events import list_events
from panelpaint.store.reviews import list_reviews, review, undo_review
from panelpaint.store.schema import Page, Panel, ReviewStatus
from tests.testkit import KEY_A


def finish(store, page_id):
    with store.session() as s:
        r = renders.queue_render(s, page_id)
    with store.session() as s:
        c = renders.claim_render(s, r.id, "w", 3)
        renders.complete_render(s, r.id, c.attempt, {"png": KEY_A})
    return r.id


def test_review_page_and_panel(store, world):
    page = world.a.pages[0]
    with store.session() as s:
        panel = batches.set_panels(s, page, [{"bbox": [0, 0, 5, 5]}])[0].id
        with pytest.raises(IllegalTransition, match="no finished render"):
            review(s, page, None, world.a.reviewer, "approved")
    rid = finish(store, page)
    with store.session() as s:
        review(s, page, panel, world.a.admin, "approved", "hair colour is right")
        row = review(s, page, None, world.a.reviewer, ReviewStatus.approved, "lovely")
        assert (row.render_id, row.decision, row.comment) == (rid, ReviewStatus.approved, "lovely")
    with store.session() as s:
        p = batches.get_page(s, world.a.studio, page)
        assert p.review_status == ReviewStatus.approved and p.panels[0].review_status == ReviewStatus.approved
        with pytest.raises(IllegalTransition):  # approved -> rejected: undo or re-render first
            review(s, page, None, world.a.reviewer, "rejected")
        assert [r.decision for r in list_reviews(s, world.a.studio, page)] == [ReviewStatus.approved,
                                                                              ReviewStatus.approved]
        assert list_reviews(s, world.b.studio, page) == []


def test_review_permissions_and_input(store, world):
    page = world.a.pages[0]
    finish(store, page)
    with store.session() as s:
        with pytest.raises(Forbidden):
            review(s, page, None, world.a.artist, "approved")
        with pytest.raises(NotFound):
            review(s, page, None, world.b.reviewer, "approved")  # another studio's reviewer
        with pytest.raises(InvalidInput):
            review(s, page, None, world.a.reviewer, "pending")
        with pytest.raises(InvalidInput):
            review(s, page, None, world.a.reviewer, "maybe")
        with pytest.raises(NotFound):
            review(s, page, 99999, world.a.reviewer, "approved")


def two_panel_page(store, world):
    page = world.a.pages[0]
    with store.session() as s:
        panels = [p.id for p in batches.set_panels(s, page, [{"bbox": [0, 0, 50, 80]}, {"bbox": [50, 0, 50, 80]}])]
    return page, finish(store, page), panels


def statuses(store, page):
    with store.session() as s:
        p = s.get(Page, page)
        return p.review_status.value, [panel.review_status.value for panel in p.panels]


def test_undo_takes_a_decision_back_and_the_log_keeps_both(store, world):
    page, rid, (p1, _) = two_panel_page(store, world)
    with store.session() as s:
        with pytest.raises(IllegalTransition, match="no decision to undo"):
            undo_review(s, page, None, world.a.reviewer)
        first = review(s, page, None, world.a.reviewer, "rejected", "too dark").id
        review(s, page, p1, world.a.reviewer, "approved")
    with store.session() as s:
        with pytest.raises(Forbidden):
            undo_review(s, page, None, world.a.artist)
        with pytest.raises(NotFound):
            undo_review(s, page, None, world.b.reviewer)
        undone = undo_review(s, page, None, world.a.admin)  # another reviewer of the studio may undo
        assert (undone.id, undone.undone_by_id) == (first, world.a.admin) and undone.undone_at is not None
    assert statuses(store, page) == ("pending", ["approved", "pending"])
    with store.session() as s:
        again = review(s, page, None, world.a.reviewer, "approved")  # decided afresh after the undo
        assert again.render_id == rid
        history = list_reviews(s, world.a.studio, page)
        assert [(r.decision.value, r.undone_at is not None) for r in history] == [
            ("approved", False), ("approved", False), ("rejected", True)]
        kinds = [(e.kind, e.data.get("review_id")) for e in list_events(s, world.a.studio, page_id=page)
                 if e.kind.startswith("review.")]
        assert kinds == [("review.rejected", first), ("review.approved", kinds[1][1]), ("review.undone", first),
                         ("review.approved", again.id)]
        undo_review(s, page, p1, world.a.reviewer)  # a panel's decision is undone on its own
    assert statuses(store, page) == ("approved", ["pending", "pending"])


def test_a_page_and_its_panels_never_contradict_each_other(store, world):
    page, _, (p1, p2) = two_panel_page(store, world)
    with store.session() as s:
        review(s, page, p2, world.a.reviewer, "rejected", "hair")
    with store.session() as s:
        with pytest.raises(IllegalTransition, match="panel 2 of this page is rejected"):
            review(s, page, None, world.a.reviewer, "approved")
    assert statuses(store, page) == ("pending", ["pending", "rejected"])
    with store.session() as s:
        undo_review(s, page, p2, world.a.reviewer)
        review(s, page, None, world.a.reviewer, "approved")
    with store.session() as s:
        with pytest.raises(IllegalTransition, match="undo its approval"):
            review(s, page, p1, world.a.reviewer, "rejected")
        review(s, page, p1, world.a.reviewer, "approved")  # agreeing with the page is fine
    # A panel re-render changes the page's result: the page's approval no longer holds.
    with store.session() as s:
        renders.rerender(s, page, p2, seed=3)
    assert statuses(store, page) == ("pending", ["approved", "pending"])
