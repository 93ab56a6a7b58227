"""The review screen: side-by-side images, per-page and per-panel decisions, comments, re-render with
another style, seed or colour hints, and moving through a batch."""
from __future__ import annotations

import json
import re

import pytest
from web_helpers import upload
from tests.panelpaint.comic_pages import small_page


@pytest.fixture
def finished(app, artist, style_id, worker, queue_calls):  # noqa: ANN001
    """A batch of three pages, all rendered with two panels each: (batch_id, [page ids])."""
    response = artist.post_form("/batches", {"name": "Review me", "style_id": style_id,
                                             "pages": [upload(small_page(), f"{i}.png") for i in (1, 2, 3)]},
                                content_type="multipart/form-data")
    batch_id = int(re.search(r"(\d+)$", response.location).group(1))
    for render_id in list(queue_calls.renders):
        worker.finish(render_id)
    pages = artist.get(f"/batches/{batch_id}/status.json").get_json()["pages"]
    return batch_id, [p["id"] for p in pages]


def panels_of(app, page_id):  # noqa: ANN001
    from panelpaint.store.schema import Page

    with app.extensions["panelpaint"].store.session() as s:
        page = s.get(Page, page_id)
        return [(p.id, p.review_status.value, p.hints) for p in page.panels]


def test_review_page_shows_the_three_images_and_controls(reviewer, finished):
    _batch_id, pages = finished
    html = reviewer.get(f"/review/{pages[1]}").get_data(as_text=True)
    assert f"/pages/{pages[1]}/image/source" in html and f"/pages/{pages[1]}/image/result" in html
    assert "/styles/" in html and "/image" in html  # the style reference
    assert 'class="slider"' in html and 'id="compare"' in html
    assert 'id="approve-button"' in html and 'id="reject-button"' in html
    assert 'id="prev-page"' in html and 'id="next-page"' in html
    assert html.count('class="box pending"') == 2  # the two panels outlined
    assert "page 2 of 3" in html


def test_review_starts_at_the_first_page_awaiting_review(app, reviewer, finished):
    batch_id, pages = finished
    reviewer.post_form(f"/review/{pages[0]}/decision", {"decision": "approved"})
    response = reviewer.get(f"/review/batch/{batch_id}")
    assert response.location == f"/review/{pages[1]}"


def test_approving_moves_to_the_next_page_and_records_the_comment(app, reviewer, finished):
    _batch_id, pages = finished
    response = reviewer.post_form(f"/review/{pages[0]}/decision", {"decision": "approved", "comment": "lovely skies"})
    assert response.location == f"/review/{pages[1]}"
    html = reviewer.get(f"/review/{pages[0]}").get_data(as_text=True)
    assert "lovely skies" in html and 'id="review-status">approved' in html
    # A decision is final until a re-render: the buttons are disabled and a second POST is refused.
    again = reviewer.post_form(f"/review/{pages[0]}/decision", {"decision": "rejected"}, follow_redirects=True)
    assert "cannot go from approved to rejected" in again.get_data(as_text=True)


def test_reject_a_single_panel(app, reviewer, finished):
    _batch_id, pages = finished
    panel_id = panels_of(app, pages[0])[1][0]
    response = reviewer.post_form(f"/review/{pages[0]}/decision", {"decision": "rejected", "panel_id": panel_id})
    assert response.location == f"/review/{pages[0]}"  # stays on the page for the other panels
    assert [p[1] for p in panels_of(app, pages[0])] == ["pending", "rejected"]


def test_panel_of_another_page_is_404(app, reviewer, finished):
    _batch_id, pages = finished
    foreign_panel = panels_of(app, pages[1])[0][0]
    response = reviewer.post_form(f"/review/{pages[0]}/decision", {"decision": "approved", "panel_id": foreign_panel})
    assert response.status_code == 404


def test_artists_cannot_decide(artist, finished):
    _batch_id, pages = finished
    assert artist.post_form(f"/review/{pages[0]}/decision", {"decision": "approved"}).status_code == 403
    assert 'id="approve-button"' not in artist.get(f"/review/{pages[0]}").get_data(as_text=True)


def test_bad_decision_value(reviewer, finished):
    _batch_id, pages = finished
    html = reviewer.post_form(f"/review/{pages[0]}/decision", {"decision": "maybe"}, follow_redirects=True)
    assert "decision must be approved or rejected" in html.get_data(as_text=True)


def test_comments(reviewer, artist, finished):
    _batch_id, pages = finished
    artist.post_form(f"/review/{pages[0]}/comment", {"comment": "check the hair colour"})
    html = reviewer.get(f"/review/{pages[0]}").get_data(as_text=True)
    assert "check the hair colour" in html and "artist@alpha.test" in html
    empty = reviewer.post_form(f"/review/{pages[0]}/comment", {"comment": "  "}, follow_redirects=True)
    assert "Write a comment first" in empty.get_data(as_text=True)


def test_rerender_a_page_with_another_style_seed_and_hints(app, reviewer, finished, queue_calls):
    _batch_id, pages = finished
    from panelpaint.store import accounts, styles
    from panelpaint.store.schema import Render

    services = app.extensions["panelpaint"]
    key = services.storage.put_bytes(small_page((32, 32), (10, 200, 10), lines=False), ".png")
    with services.store.session() as s:
        studio = accounts.get_studio_by_name(s, "Alpha")
        other_style = styles.add_style_reference(s, studio.id, "Green", [], key, 32, 32).id
    before = len(queue_calls.renders)
    hints = [{"x": 10, "y": 20, "color": "#FF0000"}]
    response = reviewer.post_form(f"/review/{pages[0]}/rerender",
                                  {"style_id": other_style, "seed": "42", "hints": json.dumps(hints)})
    assert response.status_code == 302
    assert len(queue_calls.renders) == before + 1
    with services.store.session() as s:
        render = s.get(Render, queue_calls.renders[-1])
        assert (render.style_id, render.seed, render.version) == (other_style, 42, 2)
        assert render.hints == [{"x": 10.0, "y": 20.0, "color": "#ff0000"}]
    html = reviewer.get(f"/review/{pages[0]}").get_data(as_text=True)
    assert "Re-render queued (version 2)" in html


def test_rerender_one_panel(app, artist, finished, queue_calls, worker):
    _batch_id, pages = finished
    panel_id = panels_of(app, pages[2])[0][0]
    artist.post_form(f"/review/{pages[2]}/rerender", {"panel_id": panel_id, "seed": "3"})
    from panelpaint.store.schema import Render

    with app.extensions["panelpaint"].store.session() as s:
        render = s.get(Render, queue_calls.renders[-1])
        assert render.panel_id == panel_id and render.seed == 3
    before = artist.get(f"/pages/{pages[2]}/image/result").get_data()
    assert "re-rendered" not in artist.get(f"/review/{pages[2]}").get_data(as_text=True)
    worker.finish(queue_calls.renders[-1], color=(250, 20, 20))  # the worker's merged page
    html = artist.get(f"/review/{pages[2]}").get_data(as_text=True)
    assert f"/renders/{queue_calls.renders[-1]}/files/composite" in html and "re-render v1 (shown)" in html
    # The page's result is now the panel render's merged page (the panel's review reset, the other's kept).
    assert "Shows panel 1 re-rendered (v1), merged into the page." in html
    after = artist.get(f"/pages/{pages[2]}/image/result").get_data()
    assert after != before
    with app.extensions["panelpaint"].store.session() as s:
        assert s.get(Render, queue_calls.renders[-1]).page.current_render_id == queue_calls.renders[-1]


@pytest.mark.parametrize("hints,message", [
    ("not json", "Bad colour hints"),
    (json.dumps([{"x": 1, "y": 2, "color": "red"}]), "#rrggbb"),
    (json.dumps({"x": 1}), "list"),
])
def test_rerender_rejects_bad_hints(reviewer, finished, queue_calls, hints, message):
    _batch_id, pages = finished
    before = len(queue_calls.renders)
    html = reviewer.post_form(f"/review/{pages[0]}/rerender", {"hints": hints}, follow_redirects=True)
    assert message in html.get_data(as_text=True)
    assert len(queue_calls.renders) == before


def test_rerender_with_another_studios_style_is_refused(app, reviewer, finished, queue_calls):
    _batch_id, pages = finished
    from panelpaint.store import accounts, styles

    services = app.extensions["panelpaint"]
    key = services.storage.put_bytes(small_page((32, 32), lines=False), ".png")
    with services.store.session() as s:
        beta = accounts.get_studio_by_name(s, "Beta")
        foreign = styles.add_style_reference(s, beta.id, "Theirs", [], key, 32, 32).id
    before = len(queue_calls.renders)
    html = reviewer.post_form(f"/review/{pages[0]}/rerender", {"style_id": foreign}, follow_redirects=True)
    assert "does not exist" in html.get_data(as_text=True)
    assert len(queue_calls.renders) == before


def test_rerender_while_queued_is_refused(reviewer, finished, queue_calls):
    _batch_id, pages = finished
    reviewer.post_form(f"/review/{pages[0]}/rerender", {})
    html = reviewer.post_form(f"/review/{pages[0]}/rerender", {}, follow_redirects=True).get_data(as_text=True)
    assert "still queued or running" in html


def test_review_of_a_failed_page_shows_its_error(app, artist, style_id, worker, queue_calls):
    response = artist.post_form("/batches", {"name": "x", "style_id": style_id, "pages": upload(b"junk", "j.png")},
                                content_type="multipart/form-data")
    page = artist.get(response.location.replace("/batches/", "/batches/") + "/status.json").get_json()["pages"][0]
    html = artist.get(f"/review/{page['id']}").get_data(as_text=True)
    assert "not a recognised image" in html and "could not be read" in html
