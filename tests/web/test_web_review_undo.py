"""Reversible review in the dashboard and the API: undo with the history keeping both decisions, a
page that cannot be approved while a panel of it is rejected (and never downloaded as approved),
re-rendering everything rejected in a batch in one action, the page header and Renders table, the
100% view, and download buttons that wait for approved work."""
from __future__ import annotations

import io
import zipfile

from test_web_review import finished, panels_of  # noqa: F401 - the fixture, shared

from panelpaint.store.schema import Page, Render


def page_row(app, page_id):  # noqa: ANN001
    with app.extensions["panelpaint"].store.session() as s:
        page = s.get(Page, page_id)
        return page.review_status.value, page.status.value


def test_undo_a_reject_from_the_next_page_and_the_history_keeps_both(app, reviewer, finished):  # noqa: F811
    _batch_id, pages = finished
    moved = reviewer.post_form(f"/review/{pages[0]}/decision", {"decision": "rejected", "comment": "too grey"})
    assert moved.location == f"/review/{pages[1]}"
    html = reviewer.get(moved.location).get_data(as_text=True)
    assert 'id="undo-last"' in html and f"/review/{pages[0]}/undo" in html  # one click (or u) away
    undone = reviewer.post_form(f"/review/{pages[0]}/undo", {})
    assert undone.location == f"/review/{pages[0]}"
    assert page_row(app, pages[0]) == ("pending", "succeeded")
    html = reviewer.get(f"/review/{pages[0]}").get_data(as_text=True)
    assert 'id="review-status">pending' in html and "too grey" in html and "undone" in html
    assert 'id="undo-last"' not in html  # nothing stands to undo any more
    again = reviewer.post_form(f"/review/{pages[0]}/undo", {}, follow_redirects=True)
    assert "no decision to undo" in again.get_data(as_text=True)
    # A panel decision is undone from the panel list.
    panel = panels_of(app, pages[0])[1][0]
    reviewer.post_form(f"/review/{pages[0]}/decision", {"decision": "approved", "panel_id": panel})
    assert 'aria-label="Undo panel 2"' in reviewer.get(f"/review/{pages[0]}").get_data(as_text=True)
    reviewer.post_form(f"/review/{pages[0]}/undo", {"panel_id": panel})
    assert [p[1] for p in panels_of(app, pages[0])] == ["pending", "pending"]


def test_artists_cannot_undo(artist, reviewer, finished):  # noqa: F811
    _batch_id, pages = finished
    reviewer.post_form(f"/review/{pages[0]}/decision", {"decision": "approved"})
    assert artist.post_form(f"/review/{pages[0]}/undo", {}).status_code == 403


def test_a_page_with_a_rejected_panel_is_not_approved_nor_downloaded(app, reviewer, finished):  # noqa: F811
    batch_id, pages = finished
    panel = panels_of(app, pages[0])[0][0]
    reviewer.post_form(f"/review/{pages[0]}/decision", {"decision": "rejected", "panel_id": panel})
    html = reviewer.get(f"/review/{pages[0]}").get_data(as_text=True)
    assert 'id="approve-blocked"' in html and "Panel 1 rejected" in html
    refused = reviewer.post_form(f"/review/{pages[0]}/decision", {"decision": "approved"}, follow_redirects=True)
    assert "panel 1 of this page is rejected" in refused.get_data(as_text=True)
    assert page_row(app, pages[0])[0] == "pending"
    batch = reviewer.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert 'id="download-zip" disabled' in batch  # nothing approved: the buttons say so
    reviewer.post_form(f"/review/{pages[1]}/decision", {"decision": "approved"})
    batch = reviewer.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert 'id="download-zip" href=' in batch
    archive = zipfile.ZipFile(io.BytesIO(reviewer.get(f"/batches/{batch_id}/download.zip").data))
    assert archive.namelist() == ["002-2.png"]


def test_rerender_everything_rejected_from_the_batch_page(app, reviewer, finished, queue_calls, style_id):  # noqa: F811
    batch_id, pages = finished
    assert 'id="rerender-rejected"' not in reviewer.get(f"/batches/{batch_id}").get_data(as_text=True)
    nothing = reviewer.post_form(f"/review/batch/{batch_id}/rerender-rejected", {}, follow_redirects=True)
    assert "nothing in batch" in nothing.get_data(as_text=True)
    panel = panels_of(app, pages[2])[1][0]
    reviewer.post_form(f"/review/{pages[0]}/decision", {"decision": "rejected"})
    reviewer.post_form(f"/review/{pages[1]}/decision", {"decision": "approved"})
    reviewer.post_form(f"/review/{pages[2]}/decision", {"decision": "rejected", "panel_id": panel})
    html = reviewer.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert 'id="rerender-rejected"' in html and "2 rejected" in html
    before = len(queue_calls.renders)
    done = reviewer.post_form(f"/review/batch/{batch_id}/rerender-rejected",
                              {"style_id": style_id, "seed": "11", "hints": "clear"}, follow_redirects=True)
    assert "2 rejected page(s) or panel(s) queued again" in done.get_data(as_text=True)
    sent = queue_calls.renders[before:]
    with app.extensions["panelpaint"].store.session() as s:
        made = [(r.page_id, r.panel_id, r.seed, r.style_id) for r in (s.get(Render, i) for i in sent)]
    assert made == [(pages[0], None, 11, style_id), (pages[2], panel, 11, style_id)]
    assert page_row(app, pages[1]) == ("approved", "succeeded")  # approved work untouched
    bad = reviewer.post_form(f"/review/batch/{batch_id}/rerender-rejected", {"seed": "-4"}, follow_redirects=True)
    assert "Seed must be a whole number" in bad.get_data(as_text=True)


def test_header_renders_table_and_zoom_after_a_panel_rerender(app, reviewer, finished, worker, queue_calls):  # noqa: F811
    _batch_id, pages = finished
    panel = panels_of(app, pages[0])[1][0]
    reviewer.post_form(f"/review/{pages[0]}/rerender", {"panel_id": panel, "seed": "77"})
    worker.finish(queue_calls.renders[-1])
    html = reviewer.get(f"/review/{pages[0]}").get_data(as_text=True)
    # The page is still version 1 (canonical); the panel's own version and seed are said as the panel's.
    assert 'id="page-version">version 1 · canonical colouring' in html
    assert 'id="panel-version">panel 2 re-rendered (v1, seed 77)' in html
    assert 'class="table-scroll" id="renders-table"' in html and "<td>panel 2" in html
    # The 100% view: the result at native size beside the line art or the earlier result.
    assert 'id="zoom"' in html and 'id="zoom-open"' in html
    assert f'data-src="/pages/{pages[0]}/image/result"' in html and f'value="/pages/{pages[0]}/image/source"' in html
    assert "Earlier result: page v1 (canonical)" in html


def test_api_undo_and_rerender_rejected(app, client, api_token, finished, queue_calls):  # noqa: F811
    batch_id, pages = finished
    headers = {"Authorization": f"Bearer {api_token('alpha', 'reviewer')}"}
    post = lambda url, **kw: client.post(url, headers=headers, **kw)  # noqa: E731
    assert post(f"/api/v1/pages/{pages[0]}/review/undo", json={}).status_code == 409  # nothing to undo
    post(f"/api/v1/pages/{pages[0]}/review", json={"decision": "rejected"})
    undone = post(f"/api/v1/pages/{pages[0]}/review/undo", json={})
    assert undone.status_code == 200 and undone.get_json()["review_status"] == "pending"
    assert [c["undone"] for c in undone.get_json()["comments"]] == [True]
    assert post(f"/api/v1/pages/{pages[0]}/review/undo", json={"panel_id": 99999}).status_code == 404
    artist = {"Authorization": f"Bearer {api_token('alpha', 'artist')}"}
    assert client.post(f"/api/v1/pages/{pages[0]}/review/undo", headers=artist, json={}).status_code == 403
    assert post(f"/api/v1/batches/{batch_id}/rerender-rejected", json={}).status_code == 409  # nothing rejected
    post(f"/api/v1/pages/{pages[1]}/review", json={"decision": "rejected"})
    assert post(f"/api/v1/batches/{batch_id}/rerender-rejected", json={"hints": "smudge"}).status_code == 400
    assert post(f"/api/v1/batches/{batch_id}/rerender-rejected", json={"style_id": 99999}).status_code == 400
    queued = post(f"/api/v1/batches/{batch_id}/rerender-rejected", json={"seed": 5})
    assert queued.status_code == 202
    body = queued.get_json()
    assert [(r["page_id"], r["panel_id"], r["seed"], r["status"]) for r in body["renders"]] == [
        (pages[1], None, 5, "queued")]
    assert body["skipped"] == [] and queue_calls.renders[-1] == body["renders"][0]["id"]
    other = {"Authorization": f"Bearer {api_token('beta', 'reviewer')}"}
    assert client.post(f"/api/v1/batches/{batch_id}/rerender-rejected", headers=other, json={}).status_code == 404



def test_a_last_decision_on_a_page_that_is_not_there_offers_nothing(reviewer, finished):  # noqa: F811
    _batch_id, pages = finished
    with reviewer.session_transaction() as sess:  # e.g. another studio's page, after another login
        sess["last_decision"] = {"page_id": 99999, "panel_id": None}
    response = reviewer.get(f"/review/{pages[1]}")
    assert response.status_code == 200 and 'id="undo-last"' not in response.get_data(as_text=True)
