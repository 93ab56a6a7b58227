"""Uploads unpacked into pages by an io worker (`panelpaint.unpack`): in order, each entry once
even with two deliveries at once, resumed after a lost worker, one batch's uploads one after the
other, stopped by a cancel; on SQLite and PostgreSQL."""
from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from panelpaint.images import page_file_bytes_limit
from panelpaint.settings import load_settings
from panelpaint.store import batches, uploads
from panelpaint.store.errors import IllegalTransition, InvalidInput, NotFound
from panelpaint.store.schema import Page, Render, RunStatus, Upload
from panelpaint.unpack import unpack_upload
from tests.panelpaint.comic_pages import small_page
from tests.testkit import KEY_A, lie_about_size, race, write_zip, zip_bytes


@pytest.fixture
def settings(tmp_path):
    return load_settings(var_dir=tmp_path / "var", max_archive_entries=50, max_archive_bytes=5_000_000)


@pytest.fixture
def chapter(storage):
    """A CBZ of 6 pages (one broken, one refused), and a loose image: 7 pages-to-be in all."""
    archive = zip_bytes({"p10.png": small_page(seed=10), "p2.png": small_page(seed=2), "p1.png": small_page(seed=1),
                         "p3.png": b"\x89PNG\r\n\x1a\nbroken", "../evil.png": small_page(seed=4),
                         "notes.txt": b"skip me", "p4.png": small_page(seed=5)})
    return [{"name": "ch1.cbz", "key": storage.put_bytes(archive, ".cbz"), "archive": True, "pages": 6},
            {"name": "extra.png", "key": storage.put_bytes(small_page(seed=9), ".png")}]


EXPECTED = [("ch1.cbz/evil.png", "failed"), ("ch1.cbz/p1.png", "queued"), ("ch1.cbz/p2.png", "queued"),
            ("ch1.cbz/p3.png", "failed"), ("ch1.cbz/p4.png", "queued"), ("ch1.cbz/p10.png", "queued"),
            ("extra.png", "queued")]


def make(store, world, files, **kw):
    with store.session() as s:
        return uploads.create_upload(s, world.a.batch, files, **kw).id


def rows(store, batch_id):
    with store.session() as s:
        pages = s.scalars(sa.select(Page).where(Page.batch_id == batch_id).order_by(Page.position))
        return [(p.source_name, p.status.value) for p in pages][2:]  # after the world's own two pages


def upload_row(store, upload_id):
    with store.session() as s:
        return s.get(Upload, upload_id)


def test_pages_in_order_failed_entries_in_place_and_each_page_queued(store, world, storage, settings, chapter):
    uid = make(store, world, chapter, user_id=world.a.artist)
    sent = []
    assert unpack_upload(store, storage, settings, uid, lambda page, render: sent.append((page.id, render))) \
        == "succeeded"
    assert rows(store, world.a.batch) == EXPECTED
    up = upload_row(store, uid)
    assert (up.status, up.pages_added, up.next_file) == (RunStatus.succeeded, 7, 2)
    assert [r is not None for _, r in sent] == [s == "queued" for _, s in EXPECTED]
    with store.session() as s:
        broken = s.scalar(sa.select(Page).where(Page.source_name == "ch1.cbz/p3.png"))
        assert "not a recognised image" in broken.error
        renders = list(s.scalars(sa.select(Render).join(Page, Render.page_id == Page.id)
                                    .where(Page.batch_id == world.a.batch)))
        assert len(renders) == 5 and all(r.status == RunStatus.queued for r in renders)
    assert unpack_upload(store, storage, settings, uid) == "done"  # a late duplicate finds nothing to do
    assert rows(store, world.a.batch) == EXPECTED


def test_a_lost_worker_is_resumed_at_the_first_entry_it_did_not_add(store, world, storage, settings, chapter):
    uid = make(store, world, chapter)

    def dies_at_the_third_page(page, render):  # noqa: ANN001
        if len(rows(store, world.a.batch)) == 3:
            raise SystemExit("killed")

    with pytest.raises(SystemExit):
        unpack_upload(store, storage, settings, uid, dies_at_the_third_page)
    assert upload_row(store, uid).next_entry == 3
    assert unpack_upload(store, storage, settings, uid) == "succeeded"
    assert rows(store, world.a.batch) == EXPECTED


def test_two_deliveries_at_once_add_each_entry_once(store, world, storage, settings, chapter):
    uid = make(store, world, chapter)
    outcomes, errors = race(2, lambda i: unpack_upload(store, storage, settings, uid))
    assert errors == [] and "succeeded" in outcomes
    assert rows(store, world.a.batch) == EXPECTED


def test_uploads_of_one_batch_take_turns_and_a_deadline_hands_on(store, world, storage, settings, chapter):
    first, second = make(store, world, chapter), make(store, world, [{"name": "late.png",
                                                                     "key": storage.put_bytes(small_page(seed=7), ".png")}])
    assert unpack_upload(store, storage, settings, second) == "waiting"  # behind the first
    assert unpack_upload(store, storage, settings, first, deadline=time.monotonic() - 1) == "more"
    assert len(rows(store, world.a.batch)) == 1
    assert unpack_upload(store, storage, settings, second) == "waiting"
    assert unpack_upload(store, storage, settings, first) == "succeeded"
    assert unpack_upload(store, storage, settings, second) == "succeeded"
    assert rows(store, world.a.batch) == EXPECTED + [("late.png", "queued")]


def test_cancelling_the_batch_stops_the_unpacking(store, world, storage, settings, chapter):
    uid = make(store, world, chapter)

    def cancel_after_two(page, render):  # noqa: ANN001
        if len(rows(store, world.a.batch)) == 2:
            with store.session() as s:
                batches.cancel_batch(s, world.a.batch)

    assert unpack_upload(store, storage, settings, uid, cancel_after_two) == "done"
    assert len(rows(store, world.a.batch)) == 2
    assert upload_row(store, uid).status == RunStatus.cancelled
    with store.session() as s, pytest.raises(IllegalTransition):
        uploads.create_upload(s, world.a.batch, chapter)


def test_an_archive_the_worker_refuses_is_one_failed_page(store, world, storage, settings):
    big = zip_bytes({f"p{i}.png": small_page(seed=i) for i in range(3)})
    uid = make(store, world, [{"name": "big.cbz", "key": storage.put_bytes(big, ".cbz"), "archive": True, "pages": 3}])
    # The dashboard checked the directory; the workers run with a lower limit (settings differ).
    tight = settings.model_copy(update={"max_archive_entries": 2})
    assert unpack_upload(store, storage, tight, uid) == "succeeded"
    with store.session() as s:
        (page,) = list(s.scalars(sa.select(Page).where(Page.batch_id == world.a.batch)))[2:]
    assert (page.source_name, page.status) == ("big.cbz", RunStatus.failed) and "limit of 2" in page.error


def test_an_entry_larger_than_a_page_fails_alone_and_nothing_of_it_is_kept(store, world, storage, settings,
                                                                           tmp_path):
    # 100,000 pixels a page: no page file can be over 800,000 bytes + 16 MiB of headers, so a 20 MB
    # entry is refused, from its header when honest and while inflating when its header lies.
    tight = settings.model_copy(update={"max_image_pixels": 100_000, "max_archive_bytes": 200_000_000})
    cap = page_file_bytes_limit(100_000)
    zeros = cap + 3_000_000
    path = write_zip(tmp_path / "bad.cbz", {"p1.png": small_page(seed=1), "p2.png": zeros, "p3.png": zeros,
                                            "p4.png": small_page(seed=4)})
    key = storage.put_file(lie_about_size(path, "p3.png", 1000), ".cbz")
    uid = make(store, world, [{"name": "bad.cbz", "key": key, "archive": True, "pages": 4}])
    assert unpack_upload(store, storage, tight, uid) == "succeeded"
    with store.session() as s:
        pages = list(s.scalars(sa.select(Page).where(Page.batch_id == world.a.batch).order_by(Page.position)))[2:]
        got = [(p.source_name, p.status.value, p.error) for p in pages]
    assert [g[:2] for g in got] == [("bad.cbz/p1.png", "queued"), ("bad.cbz/p2.png", "failed"),
                                    ("bad.cbz/p3.png", "failed"), ("bad.cbz/p4.png", "queued")]
    assert got[1][2] == (f"bad.cbz: p2.png: unpacks to {zeros:,} bytes, more than the {cap:,} a page of "
                         "at most 100,000 pixels may take (PANELPAINT_MAX_IMAGE_PIXELS)")
    assert got[2][2].startswith("bad.cbz: p3.png: cannot read entry")  # stopped at the 1,000 bytes it claimed
    stored = [p for p in storage.root.rglob("*") if p.is_file() and p.name != key]
    assert max(p.stat().st_size for p in stored) < cap and not list((storage.root / ".staging").iterdir())


def test_an_archive_going_over_its_total_while_inflating_is_one_failed_page_after_its_pages(
        store, world, storage, settings, monkeypatch):
    from panelpaint import archives

    spend = archives._Budget.spend

    def over_at_the_third_entry(budget, n):  # noqa: ANN001 - as if a directory had lied about sizes
        spend(budget, n)
        if budget.total > 2 * len(small_page(seed=0)) + 1000:
            raise archives.ArchiveError(f"{budget.label}: archive expands past the limit (possible zip bomb)")

    monkeypatch.setattr(archives._Budget, "spend", over_at_the_third_entry)
    archive = zip_bytes({f"p{i}.png": small_page(seed=i) + b"\0" * 400 for i in range(1, 5)})
    uid = make(store, world, [{"name": "sum.cbz", "key": storage.put_bytes(archive, ".cbz"), "archive": True,
                               "pages": 4}, {"name": "extra.png", "key": storage.put_bytes(small_page(seed=9), ".png")}])
    assert unpack_upload(store, storage, settings, uid) == "succeeded"
    assert rows(store, world.a.batch) == [("sum.cbz/p1.png", "queued"), ("sum.cbz/p2.png", "queued"),
                                          ("sum.cbz", "failed"), ("extra.png", "queued")]
    assert upload_row(store, uid).pages_added == 4


def test_bad_uploads_and_stalled_ones(store, world, storage, settings):
    with store.session() as s, pytest.raises(InvalidInput):
        uploads.create_upload(s, world.a.batch, [{"name": "x", "key": "../etc"}])
    with store.session() as s, pytest.raises(InvalidInput):
        uploads.create_upload(s, world.a.batch, [])
    with store.session() as s, pytest.raises(NotFound):
        uploads.create_upload(s, world.a.batch, [{"name": "x", "key": KEY_A}], style_id=world.b.style)
    uid = make(store, world, [{"name": "gone.png", "key": KEY_A}, {"name": "bad.zip", "error": "bad.zip: unreadable"}])
    with store.session() as s:
        assert [u.id for u in uploads.stalled(s, 0)] == [uid]
        assert uploads.stalled(s, 3600) == []
        assert [u.id for u in uploads.unfinished(s, world.a.batch)] == [uid]
    assert unpack_upload(store, storage, settings, uid) == "succeeded"
    with store.session() as s:
        failed = list(s.scalars(sa.select(Page).where(Page.batch_id == world.a.batch).order_by(Page.position)))[2:]
    assert [(p.source_name, p.status) for p in failed] == [("gone.png", RunStatus.failed),
                                                           ("bad.zip", RunStatus.failed)]
    assert "missing" in failed[0].error and failed[1].error == "bad.zip: unreadable"
