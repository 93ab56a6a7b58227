"""Pages that arrive already coloured: skipped before any worker claims them (never after), counted
as finished, coloured anyway on request; on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest

from panelpaint.store import batches, renders
from panelpaint.store.errors import IllegalTransition
from panelpaint.store.events import list_events
from panelpaint.store.schema import Page, Render, RunStatus


def first_render(store, page_id):
    with store.session() as s:
        return renders.queue_new_page(s, page_id).id


def statuses(store, page_id, render_id):
    with store.session() as s:
        return s.get(Page, page_id).status, s.get(Render, render_id).status


def test_a_queued_page_is_skipped_and_counted_finished(store, world):
    page = world.a.pages[0]
    rid = first_render(store, page)
    with store.session() as s:
        assert renders.skip_coloured(s, page, 0.4).id == rid
    assert statuses(store, page, rid) == (RunStatus.skipped, RunStatus.skipped)
    with store.session() as s:
        # A second ingest of the same page, and the render's own message, change nothing.
        assert renders.skip_coloured(s, page, 0.4) is None
        assert renders.claim_render(s, rid, "w1", 3) is None
        progress = batches.batch_progress(s, world.a.batch)
        events = [e for e in list_events(s, world.a.studio, batch_id=world.a.batch) if e.kind == "render.skipped"]
    assert statuses(store, page, rid) == (RunStatus.skipped, RunStatus.skipped)
    assert (progress.skipped, progress.queued, progress.total) == (1, 1, 2)  # the other page waits
    assert len(events) == 1 and events[0].data["coloured_share"] == 0.4


def test_a_claimed_page_is_coloured_after_all(store, world):
    page = world.a.pages[0]
    rid = first_render(store, page)
    with store.session() as s:
        assert renders.claim_render(s, rid, "w1", 3) is not None
    with store.session() as s:
        assert renders.skip_coloured(s, page, 0.9) is None
    assert statuses(store, page, rid) == (RunStatus.running, RunStatus.running)


def test_colour_anyway_queues_a_new_render(store, world):
    page = world.a.pages[0]
    rid = first_render(store, page)
    with store.session() as s:
        renders.skip_coloured(s, page, 0.5)
    with store.session() as s:
        again = renders.colour_anyway(s, page)
        assert (again.version, again.status) == (2, RunStatus.queued)
        again_id = again.id
    assert statuses(store, page, again_id) == (RunStatus.queued, RunStatus.queued)
    with store.session() as s:
        assert s.get(Render, rid).status == RunStatus.skipped  # history kept
        with pytest.raises(IllegalTransition, match="not skipped as already coloured"):
            renders.colour_anyway(s, page)
        with pytest.raises(IllegalTransition, match="not skipped as already coloured"):
            renders.colour_anyway(s, world.a.pages[1])  # never queued at all
