"""A person's panel edits (boxes checked against the page, reading order renumbered, only changed
panels re-rendered, history kept) and the panel check that holds a page before colouring."""
from __future__ import annotations

import pytest

from panelpaint.store import batches, panel_edits, recovery, renders, work
from panelpaint.store.errors import IllegalTransition, InvalidInput
from panelpaint.store.events import list_events
from panelpaint.store.reviews import review
from panelpaint.store.schema import Page, Panel, PanelCheck, Render, RunStatus
from tests.panelpaint.store.test_panel_renders import finish

# Page 0 of studio A is 100x80 and its batch reads right to left.
LEFT, RIGHT = {"bbox": [0, 0, 50, 80]}, {"bbox": [50, 0, 50, 80]}


def two_panels(store, page):
    """The page's two panels as stored: (left id, right id)."""
    with store.session() as s:
        made = batches.set_panels(s, page, [LEFT, RIGHT])
        return made[0].id, made[1].id


def panels_of(store, page):
    """The page's live panels as (id, position, bbox, confidence), in reading order."""
    with store.session() as s:
        return [(p.id, p.position, [p.x, p.y, p.w, p.h], p.confidence) for p in s.get(Page, page).panels]


@pytest.mark.parametrize("bad, says", [
    ({"bbox": [60, 0, 50, 80]}, "not inside the 100x80 page"),
    ({"bbox": [-1, 0, 20, 20]}, "not inside"),
    ({"bbox": [0, 0, 10, 40]}, "at least 16x16"),
    ({"bbox": [0, 0, 0, 40]}, "positive size"),
    ({"bbox": "0,0,20,20"}, "bbox"),
    ({"bbox": [0, 0, 20]}, "bbox"),
    ({"bbox": [0, 0, 20, 20], "polygon": [[0, 0], [30, 0], [0, 19]]}, "leaves its bbox"),
    ({"bbox": [0, 0, 20, 20], "id": "one"}, "id must be"),
    ({"bbox": [0, 0, 20, 20], "id": 999_999}, "is not on page"),
    ("box", "must be an object"),
])
def test_a_bad_box_is_refused_with_its_reason_and_nothing_changes(store, world, bad, says):
    page = world.a.pages[0]
    left, right = two_panels(store, page)
    before = panels_of(store, page)
    with store.session() as s, pytest.raises(InvalidInput, match=says):
        panel_edits.edit_panels(s, page, [{"id": left, **LEFT}, bad])
    assert panels_of(store, page) == before


def test_an_edit_list_must_hold_between_one_and_the_most_panels(store, world):
    page = world.a.pages[0]
    two_panels(store, page)
    for bad in ([], None, "panels", [{"bbox": [0, 0, 16, 16]}] * 65):
        with store.session() as s, pytest.raises(InvalidInput):
            panel_edits.edit_panels(s, page, bad)
    with store.session() as s, pytest.raises(InvalidInput, match="once"):
        left = s.get(Page, page).panels[0].id
        panel_edits.edit_panels(s, page, [{"id": left, **LEFT}, {"id": left, **RIGHT}])


def test_moving_a_box_renumbers_the_reading_order_for_the_pages_direction(store, world):
    page = world.a.pages[0]  # right to left: the right-hand panel is read first
    left, right = two_panels(store, page)  # stored as given: left first
    assert [(pid, pos) for pid, pos, _, _ in panels_of(store, page)] == [(left, 0), (right, 1)]
    with store.session() as s:
        edit = panel_edits.edit_panels(s, page, [{"id": left, **LEFT}, {"id": right, **RIGHT}])
    assert (edit.kept, edit.changed, edit.renders) == ([left, right], [], [])
    assert [(pid, pos) for pid, pos, _, _ in panels_of(store, page)] == [(right, 0), (left, 1)]
    with store.session() as s:
        # The left panel becomes a full-width top row; the right one moves below it.
        edit = panel_edits.edit_panels(s, page, [{"id": left, "bbox": [0, 0, 100, 40]},
                                                 {"id": right, "bbox": [0, 40, 100, 40]}])
    assert (edit.kept, sorted(edit.changed), edit.added, edit.removed) == ([], sorted([left, right]), [], [])
    assert [(pid, pos, box) for pid, pos, box, _ in panels_of(store, page)] == [
        (left, 0, [0, 0, 100, 40]), (right, 1, [0, 40, 100, 40])]


def test_drawing_deleting_merging_and_splitting(store, world):
    page = world.a.pages[0]
    left, right = two_panels(store, page)
    with store.session() as s:
        edit = panel_edits.edit_panels(s, page, [{"id": right, **RIGHT}, {"bbox": [0, 0, 50, 40]},
                                                 {"bbox": [0, 40, 50, 40]}])
    assert edit.kept == [right] and edit.removed == [left] and len(edit.added) == 2
    top, bottom = edit.added
    # Right to left, rows first inside the left column: right, then top-left, then bottom-left.
    assert [pid for pid, *_ in panels_of(store, page)] == [right, top, bottom]
    with store.session() as s:
        assert s.get(Panel, left) is None  # no render or review referred to it: deleted
        merged = panel_edits.merge_panels(s, page, [top, bottom])
    assert merged.removed == [top, bottom] and merged.kept == [right]
    assert [box for _, _, box, _ in panels_of(store, page)] == [RIGHT["bbox"], [0, 0, 50, 80]]
    with store.session() as s:
        split = panel_edits.split_panel(s, page, merged.added[0], "y", 30)
    assert [box for _, _, box, _ in panels_of(store, page)] == [RIGHT["bbox"], [0, 0, 50, 30], [0, 30, 50, 50]]
    assert split.kept == [right] and len(split.added) == 2
    with store.session() as s:
        for args, says in (((right, "z", 10), "axis"), ((right, "x", 55), "at least 16"),
                           ((right, "x", 10.5), "whole"), ((10**6, "x", 60), "not on page")):
            with pytest.raises(InvalidInput, match=says):
                panel_edits.split_panel(s, page, *args)
        for ids in ([right], [right, 10**6], "ab"):
            with pytest.raises(InvalidInput):
                panel_edits.merge_panels(s, page, ids)


def test_an_unchanged_box_keeps_its_detection_confidence_and_a_moved_one_is_a_persons(store, world):
    page = world.a.pages[0]
    with store.session() as s:
        work.keep_detected_panels(s, page, [{**LEFT, "order": 1, "confidence": 0.55},
                                            {**RIGHT, "order": 0, "confidence": 0.92}])
    (right, _, _, c_right), (left, _, _, c_left) = panels_of(store, page)
    assert (c_right, c_left) == (0.92, 0.55)
    with store.session() as s:
        panel_edits.edit_panels(s, page, [{"id": left, "bbox": [0, 0, 48, 80]}, {"id": right, "bbox": RIGHT["bbox"]}])
    assert [c for *_, c in panels_of(store, page)] == [0.92, 1.0]


def test_on_a_finished_page_only_the_changed_panels_are_coloured_again(store, world):
    page = world.a.pages[0]
    left, right = two_panels(store, page)
    with store.session() as s:
        rid = renders.queue_render(s, page).id
    finish(store, rid)
    with store.session() as s:
        review(s, page, right, world.a.reviewer, "approved")
        edit = panel_edits.edit_panels(s, page, [{"id": right, **RIGHT}, {"id": left, "bbox": [0, 0, 45, 80]}],
                                       user_id=world.a.reviewer)
    assert edit.kept == [right] and edit.changed == [left]
    with store.session() as s:
        queued = s.query(Render).filter(Render.page_id == page, Render.status == RunStatus.queued).all()
        assert [(r.panel_id, r.id) for r in queued] == [(left, edit.renders[0].id)]
        assert s.get(Panel, right).review_status.value == "approved"  # the unchanged panel keeps its review
        assert s.get(Page, page).current_render_id == rid  # the page shows its result meanwhile
        logged = [e.data for e in list_events(s, world.a.studio, page_id=page) if e.kind == "page.panels_edited"]
        assert logged[-1]["changed"] == [left] and logged[-1]["rerenders"] == [edit.renders[0].id]
    # While that panel is being coloured, the boxes wait.
    with store.session() as s, pytest.raises(IllegalTransition, match="being coloured"):
        panel_edits.edit_panels(s, page, [{"id": right, **RIGHT}])


def test_a_removed_panel_with_history_is_retired_not_deleted(store, world):
    page = world.a.pages[0]
    left, right = two_panels(store, page)
    with store.session() as s:
        rid = renders.queue_render(s, page).id
    finish(store, rid)
    with store.session() as s:
        panel_render = renders.rerender(s, page, left, seed=3).id
    finish(store, panel_render, based_on=rid)
    with store.session() as s:
        edit = panel_edits.merge_panels(s, page, [left, right])
    with store.session() as s:
        old = s.get(Panel, left)
        assert old is not None and old.retired_at is not None and old.position < 0
        assert s.get(Render, panel_render).status == RunStatus.succeeded  # its render stays in the history
        assert s.get(Page, page).current_render_id == panel_render
        assert [p.id for p in s.get(Page, page).panels] == edit.added
        assert s.get(Page, page).panels_total == 1


def test_edits_wait_while_the_page_is_being_coloured(store, world):
    page = world.a.pages[0]
    left, _ = two_panels(store, page)
    with store.session() as s:
        rid = renders.queue_render(s, page).id
    with store.session() as s:  # queued, not claimed: the render reads the boxes when it starts
        panel_edits.edit_panels(s, page, [{"id": left, **LEFT}])
    with store.session() as s:
        renders.claim_render(s, rid, "w1", 3)
    with store.session() as s, pytest.raises(IllegalTransition, match="being coloured"):
        panel_edits.edit_panels(s, page, [{"id": left, "bbox": [0, 0, 40, 80]}])


def add_held_page(store, world, options=None):
    """A new page of a new batch of studio A (`options` the batch's), and its queued render."""
    with store.session() as s:
        batch = batches.create_batch(s, world.a.studio, world.a.artist, "held", world.a.style, "ltr", options or {})
        page = batches.add_page(s, batch.id, "p.png", "a" * 64 + ".png", 100, 80).id
        rid = renders.queue_new_page(s, page).id
    return page, rid


def test_check_panels_first_holds_the_render_until_the_boxes_are_confirmed(store, world):
    page, rid = add_held_page(store, world, {batches.CHECK_PANELS: True})
    with store.session() as s:
        assert s.get(Page, page).panel_check == PanelCheck.awaiting
        assert renders.claim_render(s, rid, "w1", 3) is None  # held: not claimed, still queued
        assert s.get(Render, rid).status == RunStatus.queued and s.get(Render, rid).attempt == 0
        # The janitor does not send a held page's render again and again.
        assert rid not in [x.render_id for x in recovery.suspects(s, lease=0, grace=-1)]
        with pytest.raises(IllegalTransition, match="still being detected"):
            panel_edits.confirm_panels(s, page)
    with store.session() as s:
        work.keep_detected_panels(s, page, [{**LEFT, "confidence": 0.95}, {**RIGHT, "confidence": 0.9}],
                                  check_below=0.6)
        assert s.get(Page, page).panel_check == PanelCheck.awaiting  # sure, but the batch asked
        assert s.get(Page, page).layout_confidence == 0.9
    with store.session() as s:
        released = panel_edits.confirm_panels(s, page, user_id=world.a.reviewer)
        assert released.id == rid
    with store.session() as s:
        assert renders.claim_render(s, rid, "w1", 3).attempt == 1
        with pytest.raises(IllegalTransition, match="not waiting"):
            panel_edits.confirm_panels(s, page)


def test_a_page_detection_was_unsure_of_is_held_even_when_the_batch_did_not_ask(store, world):
    unsure, unsure_rid = add_held_page(store, world)
    sure, sure_rid = add_held_page(store, world)
    with store.session() as s:
        work.keep_detected_panels(s, unsure, [{**LEFT, "confidence": 0.45}, RIGHT], check_below=0.6)
        work.keep_detected_panels(s, sure, [{**LEFT, "confidence": 0.7}, RIGHT], check_below=0.6)
    with store.session() as s:
        assert (s.get(Page, unsure).panel_check, s.get(Page, unsure).layout_confidence) == (PanelCheck.awaiting, 0.45)
        assert s.get(Page, sure).panel_check is None
        assert renders.claim_render(s, unsure_rid, "w1", 3) is None
        assert renders.claim_render(s, sure_rid, "w1", 3) is not None
        held = [e.data for e in list_events(s, world.a.studio, page_id=unsure) if e.kind == "page.panel_check"]
        assert held == [{"reason": "low confidence", "layout_confidence": 0.45, "below": 0.6}]
    # Saving the checked boxes with confirm releases the page.
    with store.session() as s:
        ids = [p.id for p in s.get(Page, unsure).panels]
        edit = panel_edits.edit_panels(s, unsure, [{"id": ids[0], "bbox": [0, 0, 100, 80]}], confirm=True)
        assert edit.released.id == unsure_rid and edit.renders == []  # not coloured yet: nothing to re-render
        assert s.get(Page, unsure).panel_check == PanelCheck.confirmed


def test_a_render_that_detected_an_unsure_layout_itself_goes_back_to_wait(store, world):
    page, rid = add_held_page(store, world)
    with store.session() as s:
        claim = renders.claim_render(s, rid, "w1", 3)
        # The render worker got to the page before its ingest and found the layout unsure.
        work.keep_detected_panels(s, page, [{**LEFT, "confidence": 0.3}], check_below=0.6)
        assert work.held(s, page)
    with store.session() as s:
        renders.hold_render(s, rid, claim.attempt)
        renders.hold_render(s, rid, claim.attempt)  # repeated: a no-op
    with store.session() as s:
        assert s.get(Render, rid).status == RunStatus.queued and s.get(Page, page).status == RunStatus.queued
        assert renders.claim_render(s, rid, "w1", 3) is None
    with store.session() as s:
        panel_edits.confirm_panels(s, page)
    with store.session() as s:
        assert renders.claim_render(s, rid, "w1", 3).attempt == 2


def test_claim_following_passes_held_pages_by(store, world):
    with store.session() as s:
        batch = batches.create_batch(s, world.a.studio, world.a.artist, "b", world.a.style, "ltr", {})
        pages = [batches.add_page(s, batch.id, f"{i}.png", "a" * 64 + ".png", 100, 80).id for i in range(3)]
        rids = [renders.queue_new_page(s, p).id for p in pages]
        s.get(Page, pages[1]).panel_check = PanelCheck.awaiting
    with store.session() as s:
        claim = renders.claim_render(s, rids[0], "w1", 3)
        taken = renders.claim_following(s, claim, "w1", 3, limit=4)
    assert [c.render_id for c in taken] == [rids[2]]


def test_a_batch_that_says_no_check_is_never_held(store, world):
    page, rid = add_held_page(store, world, {batches.CHECK_PANELS: False})  # e.g. a style preview
    with store.session() as s:
        work.keep_detected_panels(s, page, [{**LEFT, "confidence": 0.3}], check_below=0.6)
        assert s.get(Page, page).panel_check is None and s.get(Page, page).layout_confidence == 0.3
        assert renders.claim_render(s, rid, "w1", 3) is not None
