"""Batches, pages and panels, and studio-scoped queries that never leak another studio's rows."""
from __future__ import annotations

import pytest

from panelpaint.store import batches, renders, styles
from panelpaint.store.errors import IllegalTransition, InvalidInput, NotFound
from panelpaint.store.schema import Direction, RunStatus
from tests.testkit import KEY_A


def test_create_batch_and_pages(store, world):
    with store.session() as s:
        b = batches.get_batch(s, world.a.studio, world.a.batch)
        assert (b.name, b.direction, b.options, b.default_style_id) == ("chapter 1", Direction.rtl,
                                                                         {"work_size": 256}, world.a.style)
        pages = b.pages
        assert [(p.position, p.source_name, p.status) for p in pages] == [(0, "p0.png", RunStatus.queued),
                                                                            (1, "p1.png", RunStatus.queued)]
        bad = batches.add_page(s, world.a.batch, "x.psd", None, None, None)
        assert (bad.position, bad.status, bad.error) == (2, RunStatus.failed, batches.UNREADABLE)
        with pytest.raises(InvalidInput):
            batches.add_page(s, world.a.batch, "x.png", "../../etc/passwd", 10, 10)
        with pytest.raises(InvalidInput):
            batches.add_page(s, world.a.batch, "x.png", KEY_A, 0, 10)
        with pytest.raises(NotFound):
            batches.add_page(s, 9999, "x.png", KEY_A, 10, 10)


def test_create_batch_refuses_other_studios_rows(store, world):
    with store.session() as s:
        with pytest.raises(NotFound):
            batches.create_batch(s, world.a.studio, world.b.artist, "x")
        with pytest.raises(NotFound):
            batches.create_batch(s, world.a.studio, world.a.artist, "x", default_style_id=world.b.style)
        with pytest.raises(InvalidInput, match="direction"):
            batches.create_batch(s, world.a.studio, world.a.artist, "x", direction="up")
        with pytest.raises(InvalidInput):
            batches.create_batch(s, world.a.studio, world.a.artist, "")


def test_scoped_queries_never_leak(store, world):
    a, b = world.a, world.b
    with store.session() as s:
        ra = renders.queue_render(s, a.pages[0])
        panel = batches.set_panels(s, a.pages[0], [{"bbox": [0, 0, 5, 5]}])[0]
    with store.session() as s:
        assert [x.id for x in batches.list_batches(s, a.studio)] == [a.batch]
        assert batches.get_batch(s, b.studio, a.batch) is None
        assert batches.get_page(s, b.studio, a.pages[0]) is None
        assert batches.get_page(s, a.studio, a.pages[0]).id == a.pages[0]
        assert batches.get_render(s, b.studio, ra.id) is None
        assert batches.list_renders(s, b.studio, a.pages[0]) == []
        assert [r.id for r in batches.list_renders(s, a.studio, a.pages[0])] == [ra.id]
        assert [r.id for r in batches.list_renders(s, a.studio, a.pages[0], panel_id=panel.id)] == []
        assert [x.id for x in styles.list_styles(s, b.studio)] == [b.style]
        assert styles.get_style(s, b.studio, a.style) is None


def test_styles(store, world):
    with store.session() as s:
        st = styles.get_style(s, world.a.studio, world.a.style)
        assert st.tags == ["hero", "red"]
        styles.add_style_reference(s, world.a.studio, "villain", ["Blue"], KEY_A, 32, 32)
        assert [x.name for x in styles.list_styles(s, world.a.studio)] == ["hero", "villain"]
        assert [x.name for x in styles.list_styles(s, world.a.studio, tag="BLUE")] == ["villain"]
        with pytest.raises(InvalidInput):
            styles.add_style_reference(s, world.a.studio, "bad", [], "/etc/passwd", 32, 32)
        with pytest.raises(InvalidInput):
            styles.add_style_reference(s, world.a.studio, "bad", [], KEY_A, 0, 32)


def test_set_panels(store, world):
    page = world.a.pages[0]
    with store.session() as s:
        made = batches.set_panels(s, page, [
            {"bbox": [50, 0, 50, 40], "order": 1},
            {"bbox": [0, 0, 50, 40], "order": 0, "polygon": [[0, 0], [50, 0], [50, 40]]},
        ])
        assert [(p.position, p.x) for p in made] == [(0, 0), (1, 50)]
        assert made[1].polygon == [[50, 0], [99, 0], [99, 39], [50, 39]]  # its 50 x 40 pixels (panels.rectangle)
        # detection may run again (a redelivered task) while nothing refers to the panels
        again = batches.set_panels(s, page, [{"bbox": [0, 0, 100, 80]}])
        assert len(again) == 1 and batches.get_page(s, world.a.studio, page).panels_total == 1
        for bad in ({"bbox": [0, 0, 0, 5]}, {"bbox": [90, 0, 20, 5]}, {"x": "a"},
                    {"bbox": [0, 0, 5, 5], "polygon": [[0, 0]]}):
            with pytest.raises(InvalidInput):
                batches.set_panels(s, page, [bad])
        with pytest.raises(NotFound):
            batches.set_panels(s, page, [{"bbox": [0, 0, 5, 5], "style_id": world.b.style}])
        renders.queue_render(s, page, again[0].id)
        with pytest.raises(IllegalTransition, match="already have renders"):
            batches.set_panels(s, page, [])


def test_batch_progress(store, world):
    p0, p1 = world.a.pages
    with store.session() as s:
        batches.add_page(s, world.a.batch, "bad.png", None, None, None)
        r0 = renders.queue_render(s, p0)
    with store.session() as s:
        c = renders.claim_render(s, r0.id, "w", 3)
        renders.set_progress(s, r0.id, c.attempt, 2, 4)
    with store.session() as s:
        prog = batches.batch_progress(s, world.a.batch)
    assert (prog.total, prog.queued, prog.running, prog.failed, prog.succeeded) == (3, 1, 1, 1, 0)
    assert (prog.panels_done, prog.panels_total, prog.finished) == (2, 4, False)
    with store.session() as s:
        renders.complete_render(s, r0.id, c.attempt, {"png": KEY_A})
        prog = batches.batch_progress(s, world.a.batch)
    assert (prog.succeeded, prog.review_pending, prog.panels_done) == (1, 1, 4)
    assert prog.as_dict()["fraction"] == round(2 / 3, 4)
    with store.session() as s:
        empty = batches.create_batch(s, world.a.studio, None, "empty")
        assert batches.batch_progress(s, empty.id).finished


def test_batch_progress_many(store, world):
    with store.session() as s:
        r = renders.queue_render(s, world.b.pages[0])
        renders.claim_render(s, r.id, "w", 3)
    with store.session() as s:
        many = batches.batch_progress_many(s, [world.a.batch, world.b.batch, world.a.batch])
    assert list(many) == [world.a.batch, world.b.batch]
    assert (many[world.a.batch].queued, many[world.a.batch].running) == (2, 0)
    assert (many[world.b.batch].queued, many[world.b.batch].running) == (1, 1)
    with store.session() as s:
        assert batches.batch_progress_many(s, []) == {}


def test_queue_rank_counts_older_batches_with_pages_waiting(store, world):
    """A new page's tasks go at its batch's rank: how many older batches (of any studio) still have
    pages waiting, so the queues serve batches oldest first."""
    from panelpaint.store import renders

    with store.session() as s:
        # world.a's and world.b's batches each hold two queued pages; b's is the younger.
        assert batches.queue_rank(s, world.a.batch) == 0
        assert batches.queue_rank(s, world.b.batch) == 1
        burst = [batches.create_batch(s, world.b.studio, world.b.artist, f"burst {i}", world.b.style).id
                 for i in range(3)]
        for bid in burst:
            batches.add_page(s, bid, "x.png", KEY_A, 10, 10)
        assert [batches.queue_rank(s, bid) for bid in burst] == [2, 3, 4]
        # Once the oldest batch has nothing waiting, everyone moves up a step.
        for pid in world.a.pages:
            rid = renders.queue_render(s, pid).id
            claim = renders.claim_render(s, rid, "w", 3)
            renders.fail_render(s, rid, claim.attempt, "boom")
    with store.session() as s:
        assert [batches.queue_rank(s, bid) for bid in burst] == [1, 2, 3]
        assert batches.queue_rank(s, world.a.batch) == 0


def test_queue_rank_counts_an_archive_not_yet_unpacked_as_work_waiting(store, world):
    """A chapter sent as one ZIP has no pages until an io worker unpacks it: its upload counts, so
    a burst of batches sent after it ranks behind it."""
    from panelpaint.store import uploads
    from panelpaint.store.schema import RunStatus

    with store.session() as s:
        chapter = batches.create_batch(s, world.b.studio, world.b.artist, "chapter", world.b.style).id
        upload = uploads.create_upload(s, chapter, [{"name": "chapter.zip", "key": KEY_A}], user_id=world.b.artist)
        burst = batches.create_batch(s, world.b.studio, world.b.artist, "burst", world.b.style).id
        batches.add_page(s, burst, "x.png", KEY_A, 10, 10)
        assert batches.queue_rank(s, burst) == 3  # world.a's, world.b's and the chapter
        uploads.finish_upload(s, upload.id, RunStatus.succeeded, None)
    with store.session() as s:
        assert batches.queue_rank(s, burst) == 2
