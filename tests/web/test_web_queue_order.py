"""Batches are served oldest first: a new batch's pages are sent at its rank (how many older
batches still have pages or archives waiting), a chapter's archive and the pages unpacked from it
at the chapter's, and a retry goes first."""
from __future__ import annotations

from web_helpers import upload

from tests.panelpaint.comic_pages import small_page
from tests.testkit import zip_bytes


def _new_batch(artist, style_id, name, files):  # noqa: ANN001
    response = artist.post_form("/batches", {"name": name, "style_id": str(style_id), "pages": files},
                                content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)[:300]


def test_a_chapter_unpacked_after_a_burst_keeps_the_first_place(app, artist, style_id, queue_calls, worker):
    chapter = zip_bytes({f"{i:02d}.png": small_page(seed=i) for i in range(3)})
    _new_batch(artist, style_id, "chapter", [upload(chapter, "ch1.cbz")])
    for i in range(2):  # the burst arrives while the chapter's archive waits to be unpacked
        _new_batch(artist, style_id, f"burst {i}", [upload(small_page(seed=10 + i), "p.png")])
    burst = list(queue_calls.renders)
    assert list(queue_calls.unpack_ranks.values()) == [0]  # the chapter's archive: nothing older waits
    queue_calls.run_unpacks(app)
    chapter_renders = [r for r in queue_calls.renders if r not in burst]
    # The chapter has nothing older waiting; the burst's batches came after it, and its archive
    # still waiting to be unpacked counts as the chapter's work.
    assert [queue_calls.ranks[r] for r in chapter_renders] == [0, 0, 0]
    assert [queue_calls.ranks[r] for r in burst] == [1, 2]
    # Once a batch has nothing waiting, the younger ones move up.
    for rid in chapter_renders + burst[:1]:
        worker.finish(rid)
    _new_batch(artist, style_id, "later", [upload(small_page(seed=20), "p.png")])
    assert queue_calls.ranks[queue_calls.renders[-1]] == 1  # only "burst 1" is still waiting
