"""Editable panel boxes and the panel check, through the API and the review screen's editor: boxes
checked (a clear 400, never a 500), reading order renumbered, only changed panels re-rendered,
pages held until their boxes are confirmed, confidence shown per box."""
from __future__ import annotations

import re

from test_web_api import api, make_batch  # noqa: F401 - the API client fixture
from web_helpers import upload
from tests.panelpaint.comic_pages import small_page

TOP, BOTTOM = [0, 0, 64, 48], [0, 48, 64, 48]  # the FakeWorker's two stacked panels of a 64x96 page


def finished_page(api, style_id, worker, queue_calls):  # noqa: ANN001
    """A finished page with two stacked panels: (page id, [top id, bottom id])."""
    batch = make_batch(api, style_id, files=[upload(small_page(), "a.png")]).get_json()
    worker.finish(queue_calls.renders[-1])
    page = batch["pages"][0]["id"]
    return page, [p["id"] for p in api.get(f"/api/v1/pages/{page}/panels").get_json()["panels"]]


def test_panels_carry_their_confidence_and_the_pages_check(api, style_id, worker, queue_calls):  # noqa: F811
    page, (top, bottom) = finished_page(api, style_id, worker, queue_calls)
    got = api.get(f"/api/v1/pages/{page}/panels").get_json()
    assert (got["width"], got["height"], got["direction"], got["panel_check"], got["awaiting_check"]) == \
        (64, 96, "ltr", None, False)
    assert [(p["id"], p["order"], p["bbox"], p["confidence"]) for p in got["panels"]] == [
        (top, 0, TOP, 1.0), (bottom, 1, BOTTOM, 1.0)]
    detail = api.get(f"/api/v1/pages/{page}").get_json()
    assert detail["panels"][0]["confidence"] == 1.0 and detail["awaiting_check"] is False


def test_bad_boxes_are_a_clear_400_and_busy_pages_a_409(api, style_id, worker, queue_calls):  # noqa: F811
    page, (top, bottom) = finished_page(api, style_id, worker, queue_calls)
    url = f"/api/v1/pages/{page}/panels"
    for body, says in (({"panels": [{"bbox": [0, 0, 64, 97]}]}, "not inside the 64x96 page"),
                       ({"panels": [{"bbox": [0, 0, 8, 8]}]}, "at least 16x16"),
                       ({"panels": [{"bbox": ["a", 0, 20, 20]}]}, "bbox"),
                       ({"panels": []}, "non-empty list"),
                       ({"panels": "all of them"}, "non-empty list"),
                       ({"panels": [{"bbox": TOP}], "confirm": "perhaps"}, "confirm must be true or false"),
                       ({"panels": [{"id": 10**6, "bbox": TOP}]}, "is not on page"),
                       ([1, 2], "Send a JSON object")):
        response = api.put(url, json=body)
        assert response.status_code == 400, (body, response.get_data(as_text=True))
        assert response.get_json()["error"] == "bad_request" and says in response.get_json()["message"], body
    assert api.put(url, data="{not json", content_type="application/json").status_code == 400
    assert api.put("/api/v1/pages/999999/panels", json={"panels": [{"bbox": TOP}]}).status_code == 404
    other = api.as_user("beta", "artist")
    assert other.get(url).status_code == 404 and other.put(url, json={"panels": [{"bbox": TOP}]}).status_code == 404
    for bad in ({"panel_ids": [top]}, {"panel_ids": "x"}, {}):
        assert api.post(f"{url}/merge", json=bad).status_code == 400
    for bad in ({"panel_id": top, "axis": "diagonal", "at": 30}, {"panel_id": top, "axis": "x", "at": 70},
                {"panel_id": top, "axis": "x"}, {"panel_id": "top", "axis": "x", "at": 30}):
        assert api.post(f"{url}/split", json=bad).status_code == 400, bad
    # One edit queues a panel re-render; the next waits for it.
    assert api.put(url, json={"panels": [{"id": top, "bbox": [0, 0, 64, 40]}, {"id": bottom, "bbox": BOTTOM}]}) \
        .status_code == 200
    busy = api.put(url, json={"panels": [{"id": top, "bbox": TOP}, {"id": bottom, "bbox": BOTTOM}]})
    assert busy.status_code == 409 and "being coloured" in busy.get_json()["message"]
    assert api.post(f"/api/v1/pages/{page}/panels/confirm").status_code == 409  # not held


def test_an_edit_renumbers_and_re_renders_only_the_changed_panels(api, style_id, worker, queue_calls):  # noqa: F811
    page, (top, bottom) = finished_page(api, style_id, worker, queue_calls)
    sent = len(queue_calls.renders)
    # The bottom panel moves to the top left, the top one shrinks to the right: both change.
    response = api.put(f"/api/v1/pages/{page}/panels", json={"panels": [
        {"id": top, "bbox": TOP}, {"id": bottom, "bbox": BOTTOM}, {"bbox": [16, 60, 30, 30]}]})
    assert response.status_code == 200, response.get_data(as_text=True)
    edit = response.get_json()["edit"]
    assert (edit["kept"], edit["changed"], edit["removed"], len(edit["added"])) == ([top, bottom], [], [], 1)
    assert queue_calls.renders[sent:] == edit["rerenders"] and len(edit["rerenders"]) == 1  # the new box only
    renders = api.get(f"/api/v1/pages/{page}/renders").get_json()["renders"]
    assert [(r["panel_id"], r["status"]) for r in renders if r["status"] == "queued"] == [(edit["added"][0], "queued")]
    worker.finish(edit["rerenders"][0])
    # Merging the two stacked panels: one new box over both, the reading order numbered again.
    merged = api.post(f"/api/v1/pages/{page}/panels/merge", json={"panel_ids": [top, bottom]}).get_json()
    assert merged["edit"]["removed"] == [top, bottom] and len(merged["edit"]["rerenders"]) == 1
    assert [(p["order"], p["bbox"]) for p in merged["panels"]] == [(0, [0, 0, 64, 96]), (1, [16, 60, 30, 30])]


def test_check_panels_first_holds_each_page_until_confirmed(api, artist, style_id, queue_calls):  # noqa: F811
    batch = make_batch(api, style_id, files=[upload(small_page(), "a.png")], check_panels="1").get_json()
    assert batch["options"]["check_panels"] is True
    page = batch["pages"][0]
    assert page["panel_check"] == "awaiting" and page["status"] == "queued"
    html = artist.get(f"/batches/{batch['id']}").get_data(as_text=True)
    assert "Check panels (1)" in html and f"/review/{page['id']}#panel-editor" in html
    url = f"/api/v1/pages/{page['id']}/panels"
    # Detection has not run yet: nothing to confirm; a person may draw the boxes meanwhile.
    assert api.post(f"{url}/confirm").status_code == 409
    drawn = api.put(url, json={"panels": [{"bbox": [0, 0, 64, 50]}, {"bbox": [0, 50, 64, 46]}]}).get_json()
    assert drawn["awaiting_check"] and drawn["edit"]["rerenders"] == []  # not coloured yet: nothing to re-render
    split = api.post(f"{url}/split", json={"panel_id": drawn["panels"][0]["id"], "axis": "x", "at": 32}).get_json()
    assert [p["bbox"] for p in split["panels"]] == [[0, 0, 32, 50], [32, 0, 32, 50], [0, 50, 64, 46]]
    sent = len(queue_calls.renders)
    confirmed = api.post(f"{url}/confirm")
    assert confirmed.status_code == 202 and confirmed.get_json()["panel_check"] == "confirmed"
    assert queue_calls.renders[sent:] == [api.get(f"/api/v1/pages/{page['id']}").get_json()["render_id"]]
    assert "Check panels (" not in artist.get(f"/batches/{batch['id']}").get_data(as_text=True)
    assert make_batch(api, style_id, check_panels="maybe").status_code == 400


def test_the_review_screen_edits_boxes_and_shows_their_confidence(app, artist, style_id, worker, queue_calls,  # noqa: F811
                                                                  api):
    page, (top, bottom) = finished_page(api, style_id, worker, queue_calls)
    html = artist.get(f"/review/{page}").get_data(as_text=True)
    assert 'id="panel-editor"' in html and "panel_editor.js" in html
    data = re.search(r'<script type="application/json" id="panel-data">(.*?)</script>', html, re.S).group(1)
    assert '"confidence": 1.0' in data
    token = artist.csrf()
    url = f"/review/{page}/panels"
    bad = artist.post(url, json={"panels": [{"id": top, "bbox": [0, 0, 64, 200]}]}, headers={"X-CSRFToken": token})
    assert bad.status_code == 400 and "not inside" in bad.get_json()["message"]
    assert artist.post(url, json={"panels": [{"bbox": TOP}]}).status_code == 400  # no CSRF token: refused
    ok = artist.post(url, json={"panels": [{"id": top, "bbox": TOP}, {"id": bottom, "bbox": [0, 50, 64, 46]}]},
                     headers={"X-CSRFToken": token})
    assert ok.status_code == 200 and ok.get_json()["edit"]["changed"] == [bottom]
    assert "1 panel re-render(s) queued" in artist.get(f"/review/{page}").get_data(as_text=True)
