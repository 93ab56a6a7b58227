"""Variant sets: N renders of a finished page with distinct random seeds that run beside the page's
result without touching it, and a pick that makes one the page's result; on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest

from panelpaint import limits
from panelpaint.store import batches, renders, reviews, styles, variants
from panelpaint.store.errors import IllegalTransition, InvalidInput, NotFound
from panelpaint.store.events import list_events
from panelpaint.store.schema import Page, Render, ReviewStatus, RunStatus, VariantSet
from panelpaint.store.states import check_page
from test_renders import OUT, claim, get, page_of
from tests.testkit import KEY_B

PANELS = [{"bbox": [0, 0, 100, 40]}, {"bbox": [0, 40, 100, 40]}]


def finish(store, render_id, outputs=None):
    c = claim(store, render_id)
    with store.session() as s:
        renders.complete_render(s, render_id, c.attempt, outputs or OUT)
    return c


@pytest.fixture
def page(store, world):
    """World A's first page: two panels, rendered once (v1, with a hint), approved."""
    page_id = world.a.pages[0]
    with store.session() as s:
        batches.set_panels(s, page_id, PANELS)
        first = renders.queue_render(s, page_id, hints=[{"x": 5, "y": 5, "color": "#ff0000"}]).id
    finish(store, first)
    with store.session() as s:
        reviews.review(s, page_id, None, world.a.reviewer, "approved")
    return page_id


def ask(store, page_id, count=4, **kw):
    with store.session() as s:
        vset = variants.queue_variants(s, page_id, count, **kw)
        return vset.id, [r.id for r in vset.renders]


def test_a_set_is_n_queued_page_renders_with_distinct_seeds_beside_the_result(store, world, page):
    before = page_of(store, page)
    set_id, ids = ask(store, page, 5)
    rows = [get(store, r) for r in ids]
    assert [r.version for r in rows] == [2, 3, 4, 5, 6]
    assert all(r.status == RunStatus.queued and r.panel_id is None and r.variant_set_id == set_id for r in rows)
    seeds = [r.seed for r in rows]
    assert len(set(seeds)) == 5 and all(0 <= s <= limits.SEED_MAX for s in seeds)
    # The style and hints of the result they vary; the page itself is untouched.
    assert {r.style_id for r in rows} == {world.a.style}
    assert all(r.hints == [{"x": 5.0, "y": 5.0, "color": "#ff0000"}] for r in rows)
    after = page_of(store, page)
    assert (after.current_render_id, after.status, after.review_status) == (
        before.current_render_id, RunStatus.succeeded, ReviewStatus.approved)
    with store.session() as s:
        queued = list_events(s, world.a.studio, page_id=page, kind="variants.queued")
        assert [e.data["render_ids"] for e in queued] == [ids]
        assert len(list_events(s, world.a.studio, page_id=page, kind="render.variant")) == 5


def test_variants_run_and_finish_without_becoming_the_result(store, page):
    _, ids = ask(store, page, 2)
    current = page_of(store, page).current_render_id
    first = claim(store, ids[0])
    second = claim(store, ids[1])  # a set runs on as many workers as there are
    assert page_of(store, page).status == RunStatus.succeeded
    with store.session() as s:
        renders.set_progress(s, ids[0], first.attempt, 1, 2)
        renders.complete_render(s, ids[0], first.attempt, OUT)
        renders.fail_render(s, ids[1], second.attempt, "boom")
    p = page_of(store, page)
    assert (p.current_render_id, p.status, p.error) == (current, RunStatus.succeeded, None)
    assert get(store, ids[0]).status == RunStatus.succeeded and get(store, ids[1]).status == RunStatus.failed


def test_a_pick_makes_the_variant_the_pages_result_and_reviews_start_again(store, world, page):
    set_id, ids = ask(store, page, 3)
    for rid in ids:
        finish(store, rid)
    old = page_of(store, page).current_render_id
    with store.session() as s:
        picked = variants.pick_variant(s, world.a.studio, ids[1], user_id=world.a.reviewer)
        assert picked.id == ids[1]
    p = page_of(store, page)
    assert (p.current_render_id, p.status, p.review_status) == (ids[1], RunStatus.succeeded, ReviewStatus.pending)
    with store.session() as s:
        assert all(panel.review_status == ReviewStatus.pending for panel in s.get(Page, page).panels)
        vset = s.get(VariantSet, set_id)
        assert (vset.picked_render_id, vset.picked_by_id) == (ids[1], world.a.reviewer) and vset.picked_at
        (event,) = list_events(s, world.a.studio, page_id=page, kind="render.picked")
        assert (event.render_id, event.data["replaced"]) == (ids[1], old)
        # The others stay in the history, finished; picking the result again changes nothing.
        assert variants.pick_variant(s, world.a.studio, ids[1]).id == ids[1]
        assert len(list_events(s, world.a.studio, page_id=page, kind="render.picked")) == 1
        variants.pick_variant(s, world.a.studio, ids[2])  # a reviewer may change their mind
    assert page_of(store, page).current_render_id == ids[2]
    assert [get(store, r).status for r in ids] == [RunStatus.succeeded] * 3


def test_what_cannot_be_picked(store, world, page):
    _, ids = ask(store, page, 2)
    with store.session() as s, pytest.raises(IllegalTransition, match="v2 is queued: only a finished one"):
        variants.pick_variant(s, world.a.studio, ids[0])
    with store.session() as s, pytest.raises(IllegalTransition, match="is not a variant"):
        variants.pick_variant(s, world.a.studio, page_of(store, page).current_render_id)
    with store.session() as s, pytest.raises(NotFound):
        variants.pick_variant(s, world.b.studio, ids[0])  # another studio's render
    finish(store, ids[0])
    # A re-render that drives the page is queued: a pick would hide its result, so it waits.
    with store.session() as s:
        renders.rerender(s, page)
    with store.session() as s, pytest.raises(IllegalTransition, match="is queued: pick a variant once"):
        variants.pick_variant(s, world.a.studio, ids[0])


def test_a_page_whose_re_render_failed_may_take_a_finished_variant(store, world, page):
    _, ids = ask(store, page, 2)
    finish(store, ids[0])
    with store.session() as s:
        again = renders.rerender(s, page).id
    c = claim(store, again)
    with store.session() as s:
        renders.fail_render(s, again, c.attempt, "out of memory")
    assert page_of(store, page).status == RunStatus.failed
    check_page(RunStatus.failed, RunStatus.succeeded)
    with store.session() as s:
        variants.pick_variant(s, world.a.studio, ids[0])
    p = page_of(store, page)
    assert (p.status, p.error, p.current_render_id) == (RunStatus.succeeded, None, ids[0])


def test_one_set_at_a_time_of_a_finished_page_only(store, world, page):
    ask(store, page, 2)
    with pytest.raises(IllegalTransition, match="still being made"):
        ask(store, page, 2)
    with pytest.raises(IllegalTransition, match="is queued: variants are made of a finished page"):
        ask(store, world.a.pages[1])  # never rendered: nothing to vary
    # A re-render that drives the page is not held up by a set that is running.
    with store.session() as s:
        assert renders.rerender(s, page).version == 4


@pytest.mark.parametrize("count", [1, 9, 0, -3, "4", 2.5, True, None])
def test_the_count_is_two_to_eight(store, page, count):
    with pytest.raises(InvalidInput, match="ask for 2 to 8"):
        ask(store, page, count)


def test_style_hints_and_refusals(store, world, page):
    with pytest.raises(NotFound):
        ask(store, page, 2, style_id=world.b.style)  # another studio's style
    with pytest.raises(InvalidInput, match="hint 1 at \\(500, 5\\) is outside the 100x80 page"):
        ask(store, page, 2, hints=[{"x": 500, "y": 5, "color": "#00ff00"}])
    with pytest.raises(InvalidInput, match="#rrggbb"):
        ask(store, page, 2, hints=[{"x": 5, "y": 5, "color": "green"}])
    _, ids = ask(store, page, 2, hints=[])  # no hints: an explicit empty list
    assert get(store, ids[0]).hints == []


def test_a_cancelled_batch_cancels_its_variants_and_takes_no_more(store, world, page):
    _, ids = ask(store, page, 3)
    running = claim(store, ids[0])
    with store.session() as s:
        batches.cancel_batch(s, world.a.batch)
    assert [get(store, r).status for r in ids] == [RunStatus.running, RunStatus.cancelled, RunStatus.cancelled]
    with store.session() as s:
        renders.acknowledge_cancel(s, ids[0], running.attempt)
    assert page_of(store, page).status == RunStatus.succeeded  # the result stays
    with pytest.raises(IllegalTransition, match="cancelled"):
        ask(store, page, 2)


def test_sets_are_listed_newest_first_per_studio(store, world, page):
    first, ids = ask(store, page, 2)
    for rid in ids:
        finish(store, rid)
    second, _ = ask(store, page, 3)
    with store.session() as s:
        assert [v.id for v in variants.list_variant_sets(s, world.a.studio, page)] == [second, first]
        assert variants.list_variant_sets(s, world.b.studio, page) == []
        assert s.get(VariantSet, first).size == 2
        assert [r.id for r in s.get(VariantSet, first).renders] == ids
        assert s.get(Render, ids[0]).variant_set_id == first


def test_variants_of_a_panel_re_render_keep_its_hints_and_the_pages_style(store, world, page):
    with store.session() as s:
        panel = s.get(Page, page).panels[1]
        other = styles.add_style_reference(s, world.a.studio, "panel style", [], KEY_B, 8, 8).id
        pr = renders.rerender(s, page, panel.id, style_id=other, hints=[{"x": 50, "y": 60, "color": "#0000ff"}]).id
    c = claim(store, pr)
    with store.session() as s:
        renders.complete_render(s, pr, c.attempt, OUT, based_on=page_of(store, page).current_render_id)
    assert page_of(store, page).current_render_id == pr
    _, ids = ask(store, page, 2)
    row = get(store, ids[0])
    assert row.hints == [{"x": 50.0, "y": 60.0, "color": "#0000ff"}]  # the dot stays on its panel
    assert row.style_id == world.a.style  # a panel's style override is that panel's, not the page's
