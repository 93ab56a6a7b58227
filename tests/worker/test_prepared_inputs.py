"""The io worker cuts a page's panel inputs when it detects the panels, so the render worker of a
GPU loads them instead of decoding the page; a cut that no longer matches the page is not used.

The tasks run in this process (`apply`) on a real Redis and job store.
"""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from harness import PAGE_SIZE, stack  # noqa: F401 (the `stack` fixture)
from panelpaint.settings import get_settings
from panelpaint.store import batches, renders
from panelpaint.store.errors import InvalidInput
from panelpaint.store.schema import Page, RunStatus

pytestmark = [pytest.mark.redis]



def render(stack, render_id):
    done = stack.colour_here(render_id)
    assert done.status == RunStatus.succeeded, done.error
    return done


def composite(stack, done):
    with Image.open(io.BytesIO(stack.storage.read_bytes(done.outputs["composite"]))) as img:
        return np.asarray(img.convert("RGB"))


def prepared(stack, page_id):
    with stack.store.session() as s:
        return s.get(Page, page_id).prepared


def rerender(stack, page_id):
    with stack.store.session() as s:
        return renders.rerender(s, page_id).id


def test_ingest_cuts_the_inputs_and_the_render_uses_them_without_decoding(stack):
    _, (first,) = stack.add_batch(["cut.png"], enqueue=False)
    page_id = stack.page_of(first).id
    assert stack.ingest_here(page_id) == {"page_id": page_id, "panels": 4}
    cut = prepared(stack, page_id)
    assert cut["work_size"] == get_settings().effective_work_size() and len(cut["panels"]) == 4
    assert stack.storage.exists(cut["key"])
    assert stack.ingest_here(page_id)["panels"] == "kept"  # a repeat does nothing

    with_cut = render(stack, first)
    assert "cut_load" in with_cut.timings and "decode" not in with_cut.timings

    # The same page cut by the render itself (no inputs recorded) comes out byte-identical.
    with stack.store.session() as s:
        batches.set_prepared(s, page_id, None)
    without = render(stack, rerender(stack, page_id))
    assert "decode" in without.timings and "cut_load" not in without.timings
    assert np.array_equal(composite(stack, with_cut), composite(stack, without))


def test_a_cut_for_other_panels_or_that_cannot_be_read_is_not_used(stack):
    _, (first,) = stack.add_batch(["edited.png"], enqueue=False)
    page_id = stack.page_of(first).id
    stack.ingest_here(page_id)
    w, h = PAGE_SIZE
    with stack.store.session() as s:  # the panels are replaced before the render: one panel, the whole page
        batches.set_panels(s, page_id, [{"bbox": [0, 0, w, h]}])
    done = render(stack, first)
    assert "decode" in done.timings and "cut_load" not in done.timings
    assert len(json.loads(stack.storage.read_bytes(done.outputs["json"]))["panels"]) == 1  # the new panels

    # Cut again for the new panels, then the file goes missing: the render cuts the page itself.
    with stack.store.session() as s:
        batches.set_prepared(s, page_id, None)
    stack.ingest_here(page_id)
    stack.storage.delete(prepared(stack, page_id)["key"])
    again = render(stack, rerender(stack, page_id))
    assert "decode" in again.timings
    assert np.array_equal(composite(stack, done), composite(stack, again))


def test_set_prepared_refuses_a_cut_for_panels_the_page_no_longer_has(stack):
    _, (first,) = stack.add_batch(["race.png"], enqueue=False)
    page_id = stack.page_of(first).id
    key = stack.storage.put_bytes(b"cut", ".npz")
    with stack.store.session() as s:
        batches.set_panels(s, page_id, [{"bbox": [0, 0, 10, 10]}])
    with stack.store.session() as s:
        stale = [{"order": 0, "bbox": [5, 5, 10, 10], "polygon": [[5, 5], [14, 5], [14, 14], [5, 14]]}]
        assert not batches.set_prepared(s, page_id, {"key": key, "work_size": 64, "panels": stale}, panels=stale)
        current = batches.panel_dicts(s.get(Page, page_id))
        assert batches.set_prepared(s, page_id, {"key": key, "work_size": 64, "panels": current}, panels=current)
    assert prepared(stack, page_id)["panels"] == current
    with stack.store.session() as s, pytest.raises(InvalidInput):
        batches.set_prepared(s, page_id, {"key": "../elsewhere", "work_size": 64})


def test_a_render_that_got_there_first_keeps_its_cut_for_the_ingest_behind_it(stack):
    _, (first,) = stack.add_batch(["first.png"], enqueue=False)
    page_id = stack.page_of(first).id
    stack.render_here(first)  # before the page's ingest
    assert len(stack.panels(page_id)) == 4 and prepared(stack, page_id)["work_size"] == get_settings().effective_work_size()
    assert stack.ingest_here(page_id)["panels"] == "kept"  # nothing to do again
    stack.finish_here()
    assert "cut_load" in render(stack, rerender(stack, page_id)).timings  # the next render loads the cut


def test_a_page_whose_recorded_size_is_wrong_is_still_coloured(stack):
    from harness import draw_page

    big = Image.open(io.BytesIO(draw_page(3))).resize((PAGE_SIZE[0] * 2, PAGE_SIZE[1] * 2))
    buf = io.BytesIO()
    big.save(buf, "PNG")
    _, (first,) = stack.add_batch(["odd.png"], {"odd.png": buf.getvalue()}, enqueue=False)  # recorded at half size
    page_id = stack.page_of(first).id
    stack.ingest_here(page_id)  # its panels cannot be kept: logged, no crash
    assert stack.panels(page_id) == []
    assert prepared(stack, page_id) is None  # and no cut without panels
    done = render(stack, first)
    assert "decode" in done.timings
    with Image.open(io.BytesIO(stack.storage.read_bytes(done.outputs["flats"]))) as img:
        flats = np.asarray(img.convert("RGB"))
    assert flats.shape[1::-1] == big.size
    # The panels the render found were coloured (their drawings; a paper background stays white).
    assert (flats != 255).any(axis=2).mean() > 0.02


def test_a_page_coloured_before_its_ingest_gets_its_thumbnails_from_finishing(stack, monkeypatch):
    """A chapter's pages reach the render workers before their ingest (finishing goes first on the
    io queue): the finishing makes the line art's thumbnails from the page it decoded anyway, and
    the late ingest then decodes nothing. An ingest that made them meanwhile keeps its own."""
    from worker import ingest

    _, (first, second) = stack.add_batch(["early.png", "raced.png"], enqueue=False)
    done = render(stack, first)  # no ingest ran
    page_id = stack.page_of(first).id
    with stack.store.session() as s:
        thumbs = dict(s.get(Page, page_id).thumbnails)
    assert thumbs and all(stack.storage.exists(key) for key in thumbs.values())
    assert set(thumbs).isdisjoint(done.outputs.values())

    def no_decoding(*_args, **_kwargs):  # noqa: ANN002, ANN003
        raise AssertionError("the ingest decoded a page that has its cut and thumbnails")

    monkeypatch.setattr(ingest, "open_stored", no_decoding)
    assert stack.ingest_here(page_id)["panels"] == "kept"
    monkeypatch.undo()

    # The second page's ingest makes its thumbnails while the page is being coloured.
    other = stack.page_of(second).id
    stack.render_here(second)
    stack.ingest_here(other)
    with stack.store.session() as s:
        ingest_thumbs = dict(s.get(Page, other).thumbnails)
    stack.finish_here()
    with stack.store.session() as s:
        assert dict(s.get(Page, other).thumbnails) == ingest_thumbs
    assert all(stack.storage.exists(key) for key in ingest_thumbs.values())


def test_the_workers_make_the_thumbnails_the_web_serves(stack):
    from panelpaint.limits import THUMB_SIZES
    from panelpaint.thumbnails import thumbnail_kind

    _, (first,) = stack.add_batch(["thumbs.png"], enqueue=False)
    page_id = stack.page_of(first).id
    stack.ingest_here(page_id)
    with stack.store.session() as s:
        source_thumbs = dict(s.get(Page, page_id).thumbnails)
    done = render(stack, first)
    for size in THUMB_SIZES:
        for key in (source_thumbs[thumbnail_kind(size)], done.outputs[thumbnail_kind(size)]):
            with Image.open(io.BytesIO(stack.storage.read_bytes(key))) as thumb:
                assert thumb.format == "PNG"
                scale = min(1, size / PAGE_SIZE[0], 2 * size / PAGE_SIZE[1])  # at most size wide, 2 x size tall
                assert abs(thumb.width - PAGE_SIZE[0] * scale) <= 1 and abs(thumb.height - PAGE_SIZE[1] * scale) <= 1
