"""The REST API: bearer tokens, batches with pages, status, review, re-render, downloads, OpenAPI."""
from __future__ import annotations

import io
import re
import zipfile

import pytest
from web_helpers import upload
from tests.panelpaint.comic_pages import small_page


@pytest.fixture
def api(client, api_token):  # noqa: ANN001
    """Call the API as alpha's artist (or another user: api.as_user(studio, role))."""

    class Api:
        def __init__(self, token):  # noqa: ANN001
            self.headers = {"Authorization": f"Bearer {token}"}

        def get(self, url, **kw):  # noqa: ANN001
            return client.get(url, headers=self.headers, **kw)

        def post(self, url, **kw):  # noqa: ANN001
            return client.post(url, headers=self.headers, **kw)

        def put(self, url, **kw):  # noqa: ANN001
            return client.put(url, headers=self.headers, **kw)

        def as_user(self, studio, role):  # noqa: ANN001
            return Api(api_token(studio, role))

    return Api(api_token())


def make_batch(api, style_id, files=None, **fields):  # noqa: ANN001
    files = files if files is not None else [upload(small_page(), "1.png"), upload(b"nope", "2.png")]
    return api.post("/api/v1/batches", data={"name": "API batch", "style_id": str(style_id), "pages": files, **fields},
                    content_type="multipart/form-data")


def test_token_required(client, api_token, app):
    assert client.get("/api/v1/batches").status_code == 401
    for header in ("Bearer", "Bearer nonsense", "Bearer pp_doesnotexist", "Basic dXNlcjpwYXNz", "pp_abc"):
        response = client.get("/api/v1/batches", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.get_json()["message"].startswith("Send a valid API token")
    token = api_token()
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).get_json()["role"] == "artist"


def test_revoked_token_is_refused(artist, client):
    html = artist.post_form("/account/tokens", {"name": "ci"}).get_data(as_text=True)
    token = re.search(r'<code id="new-token">([^<]+)</code>', html).group(1)
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    account = artist.get("/account").get_data(as_text=True)
    assert token not in account  # shown once only
    token_id = re.search(r"/account/tokens/(\d+)/revoke", account).group(1)
    assert artist.post_form(f"/account/tokens/{token_id}/revoke").status_code == 302
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_cannot_revoke_someone_elses_token(app, artist, other_artist):
    html = other_artist.post_form("/account/tokens", {"name": "theirs"}).get_data(as_text=True)
    token_id = re.search(r"/account/tokens/(\d+)/revoke", html).group(1)
    assert artist.post_form(f"/account/tokens/{token_id}/revoke").status_code == 404


def test_api_ignores_the_session_cookie(artist):
    # A logged-in browser session is not an API credential (the API is exempt from CSRF).
    assert artist.get("/api/v1/me").status_code == 401
    assert artist.post("/api/v1/batches", data={"name": "x"}).status_code == 401


def test_create_batch_reports_bad_files_and_queues_good_ones(api, style_id, queue_calls):
    response = make_batch(api, style_id)
    assert response.status_code == 201
    data = response.get_json()
    assert data["name"] == "API batch" and data["total"] == 2
    assert [p["status"] for p in data["pages"]] == ["queued", "failed"]
    assert data["rejected"] == [{"page_id": data["pages"][1]["id"], "name": "2.png",
                                 "error": "2.png: not a recognised image (allowed formats: PNG, JPEG, TIFF, WEBP)"}]
    assert len(queue_calls.renders) == 1


def test_an_archive_is_unpacked_by_a_worker_and_keeps_the_order_of_the_files_sent(app, api, style_id, queue_calls):
    from tests.testkit import zip_bytes

    archive = zip_bytes({"b.png": small_page(), "a.png": small_page()})
    response = make_batch(api, style_id, [upload(small_page(), "cover.png"), upload(archive, "ch.cbz"),
                                          upload(b"not a page", "notes.png")])
    assert response.status_code == 201
    data = response.get_json()
    assert data["state"] == "unpacking" and data["added"] == [] and data["pages"] == []
    (unpacking,) = data["unpacking"]
    assert unpacking["files"] == ["cover.png", "ch.cbz", "notes.png"] and unpacking["pages_expected"] == 4
    # Pages sent to the batch while it unpacks wait their turn behind the archive.
    more = api.post(f"/api/v1/batches/{data['id']}/pages", data={"pages": [upload(small_page(), "last.png")]},
                    content_type="multipart/form-data")
    assert more.status_code == 201 and len(more.get_json()["unpacking"]) == 2
    assert queue_calls.run_unpacks(app) == ["succeeded", "succeeded"]
    batch = api.get(f"/api/v1/batches/{data['id']}").get_json()
    assert [(p["name"], p["status"]) for p in batch["pages"]] == [
        ("cover.png", "queued"), ("ch.cbz/a.png", "queued"), ("ch.cbz/b.png", "queued"), ("notes.png", "failed"),
        ("last.png", "queued")]
    assert batch["unpacking"] == [] and batch["state"] == "queued"
    assert "not a recognised image" in batch["pages"][3]["error"]
    assert len(queue_calls.renders) == 4


def test_create_batch_errors_are_json(api, style_id):
    no_pages = make_batch(api, style_id, files=[])
    assert no_pages.status_code == 400 and "at least one page" in no_pages.get_json()["message"]
    no_style = api.post("/api/v1/batches", data={"name": "x", "pages": upload(small_page(), "a.png")},
                        content_type="multipart/form-data")
    assert no_style.status_code == 400 and "Choose a style" in no_style.get_json()["message"]
    bad_dir = make_batch(api, style_id, direction="up")
    assert bad_dir.status_code == 400 and "Reading direction" in bad_dir.get_json()["message"]


def test_batch_status_and_pages(api, style_id, worker, queue_calls):
    batch = make_batch(api, style_id).get_json()
    worker.finish(queue_calls.renders[0])
    status = api.get(f"/api/v1/batches/{batch['id']}").get_json()
    assert status["state"] == "done" and status["progress"]["succeeded"] == 1 and status["progress"]["failed"] == 1
    page = status["pages"][0]
    assert page["result_url"] == f"/api/v1/pages/{page['id']}/image/result"
    assert api.get(page["result_url"]).mimetype == "image/png"
    detail = api.get(f"/api/v1/pages/{page['id']}").get_json()
    assert len(detail["panels"]) == 2 and detail["downloads"] == {"png": f"/api/v1/pages/{page['id']}/download/png"}
    renders = api.get(f"/api/v1/pages/{page['id']}/renders").get_json()["renders"]
    assert renders[0]["status"] == "succeeded" and renders[0]["model_version"] == "test-model"
    assert api.get(renders[0]["files"]["composite"]).status_code == 200
    assert api.get(f"/api/v1/renders/{renders[0]['id']}").get_json()["version"] == 1
    listing = api.get("/api/v1/batches").get_json()["batches"]
    assert [b["id"] for b in listing] == [batch["id"]]


def test_add_pages_and_cancel(api, style_id, queue_calls):
    batch = make_batch(api, style_id).get_json()
    added = api.post(f"/api/v1/batches/{batch['id']}/pages", data={"pages": [upload(small_page(), "3.png")]},
                     content_type="multipart/form-data")
    assert added.status_code == 201 and added.get_json()["total"] == 3 and len(added.get_json()["added"]) == 1
    cancelled = api.post(f"/api/v1/batches/{batch['id']}/cancel").get_json()
    assert cancelled["state"] == "cancelled" and cancelled["renders_cancelled"] == 2
    assert len(queue_calls.revoked) == 2


def test_retry_review_rerender_and_download(api, style_id, worker, queue_calls):
    batch = make_batch(api, style_id, files=[upload(small_page(), "a.png"), upload(small_page(), "b.png")]).get_json()
    a, b = [p["id"] for p in batch["pages"]]
    worker.finish(queue_calls.renders[0])
    worker.fail(queue_calls.renders[1], "out of memory")
    assert api.get(f"/api/v1/pages/{b}").get_json()["error"] == "out of memory"
    retried = api.post(f"/api/v1/pages/{b}/retry")
    assert retried.status_code == 202 and retried.get_json()["status"] == "queued"
    assert api.post(f"/api/v1/pages/{a}/retry").status_code == 409  # not failed
    # Artists cannot review; reviewers can, by page or panel, with JSON.
    assert api.post(f"/api/v1/pages/{a}/review", json={"decision": "approved"}).status_code == 403
    reviewer = api.as_user("alpha", "reviewer")
    panel = api.get(f"/api/v1/pages/{a}").get_json()["panels"][0]["id"]
    r = reviewer.post(f"/api/v1/pages/{a}/review", json={"decision": "rejected", "panel_id": panel, "comment": "too red"})
    assert r.status_code == 200 and r.get_json()["panels"][0]["review_status"] == "rejected"
    assert r.get_json()["comments"][0]["text"] == "too red"
    assert reviewer.post(f"/api/v1/pages/{a}/review", json={"decision": "nah"}).status_code == 400
    download = api.get(f"/api/v1/batches/{batch['id']}/download?format=cbz")
    assert download.status_code == 409  # nothing approved yet
    # A page with a rejected panel is not approved until that panel's rejection is undone (or re-rendered).
    assert reviewer.post(f"/api/v1/pages/{a}/review", json={"decision": "approved"}).status_code == 409
    assert reviewer.post(f"/api/v1/pages/{a}/review/undo", json={"panel_id": panel}).status_code == 200
    ok = reviewer.post(f"/api/v1/pages/{a}/review", json={"decision": "approved"})
    assert ok.get_json()["review_status"] == "approved"
    cbz = api.get(f"/api/v1/batches/{batch['id']}/download?format=cbz")
    assert cbz.status_code == 200 and cbz.mimetype == "application/vnd.comicbook+zip"
    archive = zipfile.ZipFile(io.BytesIO(cbz.data))
    assert archive.namelist() == ["001-a.png", "ComicInfo.xml"] and archive.read("001-a.png")[:4] == b"\x89PNG"
    assert api.get(f"/api/v1/batches/{batch['id']}/download?format=rar").status_code == 400
    rerender = reviewer.post(f"/api/v1/pages/{a}/rerender", json={"seed": 5, "hints": [{"x": 1, "y": 2, "color": "#00ff00"}]})
    assert rerender.status_code == 202
    assert (rerender.get_json()["version"], rerender.get_json()["seed"]) == (2, 5)
    assert reviewer.post(f"/api/v1/pages/{a}/rerender", json={}).status_code == 409  # already queued
    bad = reviewer.post(f"/api/v1/pages/{b}/rerender", json={"hints": "x"})
    assert bad.status_code in (400, 409)


def test_styles_api(api):
    created = api.post("/api/v1/styles", data={"name": "Night", "tags": "dark, blue",
                                               "image": upload(small_page((20, 30), (10, 10, 80), lines=False), "n.png")},
                       content_type="multipart/form-data")
    assert created.status_code == 201
    style = created.get_json()
    assert style["tags"] == ["dark", "blue"] and (style["width"], style["height"]) == (20, 30)
    assert api.get(style["image_url"]).mimetype == "image/png"
    assert api.get("/api/v1/styles?tag=blue").get_json()["styles"][0]["id"] == style["id"]
    bad = api.post("/api/v1/styles", data={"name": "x", "image": upload(b"zz", "x.png")}, content_type="multipart/form-data")
    assert bad.status_code == 400 and "x.png: not a recognised image" in bad.get_json()["message"]


def test_another_studio_gets_404_everywhere(api, style_id, worker, queue_calls):
    batch = make_batch(api, style_id).get_json()
    page_id = batch["pages"][0]["id"]
    worker.finish(queue_calls.renders[0])
    render_id = queue_calls.renders[0]
    outsider = api.as_user("beta", "admin")
    for url in (f"/api/v1/batches/{batch['id']}", f"/api/v1/batches/{batch['id']}/download?scope=all",
                f"/api/v1/pages/{page_id}", f"/api/v1/pages/{page_id}/renders", f"/api/v1/pages/{page_id}/image/source",
                f"/api/v1/pages/{page_id}/download/png", f"/api/v1/renders/{render_id}",
                f"/api/v1/renders/{render_id}/files/composite", f"/api/v1/styles/{style_id}",
                f"/api/v1/styles/{style_id}/image"):
        assert api.get(url).status_code == 200, url
        response = outsider.get(url)
        assert response.status_code == 404 and response.is_json, url
    for url, kwargs in ((f"/api/v1/batches/{batch['id']}/cancel", {}),
                        (f"/api/v1/batches/{batch['id']}/pages", {"data": {"pages": upload(small_page(), "x.png")}}),
                        (f"/api/v1/pages/{page_id}/retry", {}),
                        (f"/api/v1/pages/{page_id}/review", {"json": {"decision": "approved"}}),
                        (f"/api/v1/pages/{page_id}/rerender", {"json": {}})):
        assert outsider.post(url, **kwargs).status_code == 404, url
    assert api.get(f"/api/v1/batches/{batch['id']}").get_json()["state"] != "cancelled"
    assert outsider.get("/api/v1/batches").get_json()["batches"] == []


def test_openapi_document_matches_the_routes(app, api):
    doc = api.get("/api/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    described = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    routed = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api.") and rule.endpoint != "api.openapi":
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                routed.add((path, method.lower()))
    assert described == routed
    # Every $ref resolves.
    text = str(doc)
    for ref in set(re.findall(r"#/components/(\w+)/(\w+)", text)):
        assert ref[1] in doc["components"][ref[0]], ref


def test_openapi_document_is_readable_from_a_browser_session(artist, client):
    assert artist.get("/api/openapi.json").status_code == 200
    assert client.get("/api/openapi.json").status_code == 401


def test_curl_examples_in_docs_use_real_routes(app):
    """Every URL in docs/api.md's curl examples is an API route (so the docs cannot rot silently)."""
    from pathlib import Path

    from werkzeug.exceptions import MethodNotAllowed, NotFound

    text = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    urls = re.findall(r"\$PP(/api/[^\s\"'?]+)", text)
    assert len(urls) > 15
    adapter = app.url_map.bind("localhost")
    for url in urls:
        endpoint = None
        for method in ("GET", "POST", "PATCH", "DELETE"):
            try:
                endpoint, _args = adapter.match(url, method=method)
                break
            except MethodNotAllowed:
                continue
            except NotFound:
                raise AssertionError(f"docs/api.md mentions {url}, which is not a route") from None
        assert endpoint is not None and endpoint.startswith("api."), url
