"""The workers' reads and writes (`panelpaint.store.work`): plain data out, the store's rules kept."""
from __future__ import annotations

import dataclasses

import pytest

from panelpaint.store import batches, renders, work
from panelpaint.store.errors import InvalidInput
from panelpaint.store.schema import Page, Render, RunStatus


def test_a_page_is_plain_data_with_its_batchs_settings_and_panels_in_order(store, world):
    a = world.a
    with store.session() as s:
        batches.set_panels(s, a.pages[0], [{"bbox": [50, 0, 50, 80], "order": 1, "hints": [{"x": 60}]},
                                           {"bbox": [0, 0, 50, 80], "order": 0}])
        page = work.page(s, a.pages[0])
        assert work.page(s, 10_000) is None
    assert dataclasses.is_dataclass(page) and page.name == "p0.png" and page.direction == "rtl"
    assert page.default_style_id == a.style and page.options == {"work_size": 256}
    assert [(p.order, p.panel.bbox) for p in page.panels] == [(0, (0, 0, 50, 80)), (1, (50, 0, 50, 80))]
    assert page.panels[1].hints == [{"x": 60}]
    with store.session() as s:
        assert page.panel_dicts() == batches.panel_dicts(s.get(Page, a.pages[0]))


def test_a_cut_is_current_only_for_the_same_panels_and_work_size(store, world):
    page_id = world.a.pages[0]
    with store.session() as s:
        stored = work.keep_detected_panels(s, page_id, [{"order": 0, "bbox": [0, 0, 100, 80],
                                                         "polygon": [[0, 0], [99, 0], [99, 79], [0, 79]]}])
        assert work.record_cut(s, page_id, "c" * 64 + ".npz", 256, stored)
        page = work.page(s, page_id)
    assert page.current_cut(256)["key"] == "c" * 64 + ".npz"
    assert page.current_cut(512) is None
    with store.session() as s:  # detected panels never replace panels the page has
        assert work.keep_detected_panels(s, page_id, [{"order": 0, "bbox": [0, 0, 10, 10], "polygon": []}]) == stored
    with store.session() as s, pytest.raises(InvalidInput):  # outside the page: nothing stored
        work.keep_detected_panels(s, world.a.pages[1], [{"order": 0, "bbox": [0, 0, 500, 80], "polygon": []}])
    with store.session() as s:
        assert work.page(s, world.a.pages[1]).panels == ()


def test_running_attempt_failures_and_finished_results(store, world):
    page_id = world.a.pages[0]
    with store.session() as s:
        render_id = renders.queue_render(s, page_id).id
        claim = renders.claim_render(s, render_id, "w@test", max_attempts=2)
        assert work.running_attempt(s, render_id, claim.attempt).page_id == page_id
        assert work.running_attempt(s, render_id, claim.attempt + 1) is None
        assert work.fail_attempt(s, render_id, claim.attempt, "transient", True, max_attempts=2)  # requeued
        claim = renders.claim_render(s, render_id, "w@test", max_attempts=2)
        assert not work.fail_attempt(s, render_id, claim.attempt, "again", True, max_attempts=2)  # gave up
        assert work.finished_result(s, render_id) is None
        render_id = renders.retry_page(s, page_id).id
        claim = renders.claim_render(s, render_id, "w@test", max_attempts=2)
        renders.complete_render(s, render_id, claim.attempt, {"flats": "f" * 64 + ".png"})
        assert work.finished_result(s, render_id) == work.FinishedResult(render_id, "f" * 64 + ".png", None)
        assert s.get(Render, render_id).status == RunStatus.succeeded


def test_styles_are_plain_data(store, world):
    with store.session() as s:
        got = work.styles(s, [world.a.style, 10_000])
    assert list(got) == [world.a.style] and got[world.a.style].image_key == "b" * 64 + ".png"
    assert got[world.a.style].snap is True
