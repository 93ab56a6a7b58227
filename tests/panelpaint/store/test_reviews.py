"""Reviews: who may decide, what can be reviewed, and the pending -> decision rule."""
from __future__ import annotations

import pytest

from panelpaint.store import batches, renders
from panelpaint.store.errors import Forbidden, IllegalTransition, InvalidInput, NotFound
from panelpaint.store.reviews import list_reviews, review
from panelpaint.store.schema import ReviewStatus
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
        row = review(s, page, None, world.a.reviewer, ReviewStatus.approved, "lovely")
        assert (row.render_id, row.decision, row.comment) == (rid, ReviewStatus.approved, "lovely")
        review(s, page, panel, world.a.admin, "rejected", "hair colour")
    with store.session() as s:
        p = batches.get_page(s, world.a.studio, page)
        assert p.review_status == ReviewStatus.approved and p.panels[0].review_status == ReviewStatus.rejected
        with pytest.raises(IllegalTransition):  # approved -> rejected needs a re-render first
            review(s, page, None, world.a.reviewer, "rejected")
        assert [r.decision for r in list_reviews(s, world.a.studio, page)] == [ReviewStatus.rejected,
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
