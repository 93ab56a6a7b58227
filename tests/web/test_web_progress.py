"""A page's stage and bar as it goes (queued, colouring, finishing panel by panel, done) and the
batch's ETA from the rate its own renders were measured at."""
from __future__ import annotations

import datetime as dt

from web_helpers import upload

from tests.panelpaint.comic_pages import small_page
from test_web_batches import batch_id_of, create


def in_store(app, fn):  # noqa: ANN001
    with app.extensions["panelpaint"].store.session() as s:
        return fn(s)


def backdate(app, render_id: int, started: float, finished: float | None = None) -> None:
    """Say the render started `started` seconds ago (and finished `finished` seconds ago)."""
    from panelpaint.store.schema import Render

    def change(s):  # noqa: ANN001
        render, now = s.get(Render, render_id), dt.datetime.now(dt.timezone.utc)
        render.started_at = now - dt.timedelta(seconds=started)
        if finished is not None:
            render.finished_at = now - dt.timedelta(seconds=finished)

    in_store(app, change)


def pages(artist, batch_id):  # noqa: ANN001
    status = artist.get(f"/batches/{batch_id}/status.json").get_json()
    return status, {p["name"]: p for p in status["pages"]}


def test_stages_move_the_bar_and_the_eta_follows_the_measured_rate(app, artist, style_id, worker, queue_calls):
    from panelpaint.store import renders

    batch_id = batch_id_of(create(artist, style_id, [upload(small_page(seed=i), f"p{i}.png") for i in range(4)]))
    first, second = queue_calls.renders[:2]
    status, by_name = pages(artist, batch_id)
    assert by_name["p0.png"]["stage"] == "queued" and by_name["p0.png"]["progress"] == 0
    assert status["eta_seconds"] is None and "known once the first page is done" in status["eta"]

    # One page done in 40 s of wall time: the rate of this batch.
    worker.finish(first)
    backdate(app, first, started=50, finished=10)
    status, by_name = pages(artist, batch_id)
    assert status["rate"] == {"pages": 1, "seconds_per_page": 40.0, "page_seconds": 40.0}
    assert status["eta_seconds"] == 3 * 40 and "about 2 min left (3 page(s) at 40 s a page" in status["eta"]
    assert by_name["p0.png"]["stage"] == "done" and by_name["p0.png"]["progress"] == 1

    # The next page colours: its bar moves with its time against the batch's colouring time.
    claim = in_store(app, lambda s: renders.claim_render(s, second, "w1", 3))
    backdate(app, second, started=10)
    _, by_name = pages(artist, batch_id)
    colouring = by_name["p1.png"]
    assert colouring["stage"] == "colouring" and colouring["stage_label"] == "colouring"
    assert 0.05 < colouring["progress"] < 0.5
    # Handed off, then finished panel by panel.
    in_store(app, lambda s: renders.hand_off(s, second, claim.attempt, "k" * 64 + ".npz", 4, together=[second],
                                             panels=4))
    waiting = pages(artist, batch_id)[1]["p1.png"]
    assert waiting["stage"] == "finishing" and waiting["progress"] == 0.5
    in_store(app, lambda s: renders.start_finishing(s, second, claim.attempt))
    in_store(app, lambda s: renders.set_progress(s, second, claim.attempt, 3, 4))
    finishing = pages(artist, batch_id)[1]["p1.png"]
    assert finishing["stage_label"] == "finishing: panel 3 of 4" and finishing["progress"] == 0.875
    html = artist.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert "finishing: panel 3 of 4" in html and 'data-page-progress max="100" value="88"' in html
    assert "about 2 min left" in html


def test_a_finished_or_cancelled_batch_has_no_eta(app, artist, style_id, worker, queue_calls):
    batch_id = batch_id_of(create(artist, style_id, [upload(small_page(), "a.png"), upload(small_page(seed=1), "b.png")]))
    worker.finish(queue_calls.renders[0])
    artist.post_form(f"/batches/{batch_id}/cancel")
    status = pages(artist, batch_id)[0]
    assert status["eta_seconds"] is None and status["eta"] == ""


def test_pages_still_in_an_archive_show_as_unpacking(artist, style_id):
    from tests.testkit import zip_bytes

    archive = zip_bytes({f"{i}.png": small_page(seed=i) for i in range(3)})
    batch_id = batch_id_of(create(artist, style_id, [upload(archive, "ch1.cbz")]))
    status = artist.get(f"/batches/{batch_id}/status.json").get_json()
    assert status["state"] == "unpacking" and status["unpacking"][0]["pages_expected"] == 3
    assert "known once the first page is done" in status["eta"]  # three pages to come, no rate yet
    html = artist.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert html.count("data-unpacking-page") == 3 and "still in ch1.cbz" in html
