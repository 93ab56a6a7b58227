"""Hostile input to every id route and every dashboard form: an id past the database's integer is a
404, a malformed field a 400 (a flash in the dashboard) saying which field, never a 500. The
dashboard's forms are fuzzed with hypothesis; the API is fuzzed against its document in
test_web_fuzz.py."""
from __future__ import annotations

import re

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from tests.panelpaint.comic_pages import small_page
from web_helpers import upload

HUGE = "99999999999999999999999"


@pytest.fixture
def page_id(app, artist, style_id, worker, queue_calls) -> int:  # noqa: ANN001
    """A finished page of studio alpha with two panels."""
    response = artist.post_form("/batches", {"name": "Hostile", "style_id": style_id,
                                             "pages": [upload(small_page(), "p.png")]},
                                content_type="multipart/form-data")
    batch_id = int(re.search(r"(\d+)$", response.location).group(1))
    worker.finish(queue_calls.renders[0])
    return artist.get(f"/batches/{batch_id}/status.json").get_json()["pages"][0]["id"]


def id_routes(app) -> list[tuple[str, str]]:  # noqa: ANN001
    """(method, URL) of every route with a row id in its path, each id replaced by HUGE."""
    found = []
    for rule in app.url_map.iter_rules():
        if "id" not in {type(c).__name__.removesuffix("Converter").lower() for c in rule._converters.values()}:
            continue
        url = re.sub(r"<id:[a-z_]+>", HUGE, rule.rule)
        url = re.sub(r"<[^>]+>", "png", url)
        found += [(method, url) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return found


def test_every_id_route_answers_404_for_an_id_past_the_database_integer(app, admin, api_token):  # noqa: ANN001
    routes = id_routes(app)
    assert len(routes) >= 30  # the dashboard's and the API's
    bearer = {"Authorization": f"Bearer {api_token('alpha', 'admin')}"}
    for method, url in routes:
        if url.startswith("/api/"):
            response = admin.open(url, method=method, headers=bearer)
            assert response.get_json()["status"] == 404, (method, url)
        elif method == "POST":
            response = admin.post_form(url)
        else:
            response = admin.open(url, method=method)
        assert response.status_code == 404, (method, url, response.status_code)
    assert admin.get("/api/v1/batches/0", headers=bearer).status_code == 404


@pytest.mark.parametrize(("query", "field"), [(f"offset={HUGE}", "offset"), ("offset=-1", "offset"),
                                              ("offset=abc", "offset"), ("limit=0", "limit"),
                                              (f"limit={HUGE}", "limit")])
def test_list_paging_out_of_range_is_a_400_naming_the_field(app, api_token, query: str, field: str):  # noqa: ANN001
    response = app.test_client().get(f"/api/v1/batches?{query}",
                                     headers={"Authorization": f"Bearer {api_token()}"})
    assert response.status_code == 400
    assert response.get_json()["message"].startswith(f"{field} must be a whole number")


def test_a_style_id_out_of_range_is_a_400_in_batch_creation_and_rerender(app, api_token, page_id, artist):  # noqa: ANN001
    bearer = {"Authorization": f"Bearer {api_token('alpha', 'admin')}"}
    client = app.test_client()
    made = client.post("/api/v1/batches", headers=bearer, content_type="multipart/form-data",
                       data={"name": "x", "style_id": HUGE, "pages": [upload(small_page(), "1.png")]})
    assert made.status_code == 400 and "style_id must be a whole number from 1 to" in made.get_json()["message"]
    for field in ("style_id", "panel_id"):
        again = client.post(f"/api/v1/pages/{page_id}/rerender", headers=bearer, json={field: int(HUGE)})
        assert again.status_code == 400 and again.get_json()["message"].startswith(f"{field} must be")
    form = artist.post_form(f"/review/{page_id}/rerender", {"style_id": HUGE})
    assert form.status_code == 302
    assert "style_id must be a whole number" in artist.get(f"/review/{page_id}").get_data(as_text=True)


def test_a_malformed_panel_id_is_refused_not_read_as_the_whole_page(reviewer, page_id):  # noqa: ANN001
    reviewer.post_form(f"/review/{page_id}/decision", {"decision": "approved", "panel_id": "two"})
    html = reviewer.get(f"/review/{page_id}").get_data(as_text=True)
    assert "panel_id must be a whole number" in html


# --- the dashboard's forms, fuzzed --------------------------------------------------------------

TEXT = st.one_of(st.text(max_size=30), st.integers().map(str), st.sampled_from(["", HUGE, "-1", "0", "1", "1e9"]))
FORMS = {
    "decision": {"decision": TEXT, "panel_id": TEXT, "comment": TEXT},
    "rerender": {"panel_id": TEXT, "style_id": TEXT, "seed": TEXT, "hints": TEXT},
    "variants": {"count": TEXT, "style_id": TEXT},
    "pick": {"render_id": TEXT},
    "comment": {"comment": TEXT},
}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_review_forms_never_answer_a_server_error(admin, page_id, form: str):  # noqa: ANN001
    @given(fields=st.fixed_dictionaries({}, optional=FORMS[form]))
    @settings(max_examples=25, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def answers(fields: dict) -> None:
        response = admin.post_form(f"/review/{page_id}/{form}", fields)
        assert response.status_code in (302, 400, 404, 409), (fields, response.status_code)

    answers()


def test_new_batch_form_never_answers_a_server_error(admin, style_id):  # noqa: ANN001
    fields = {"name": TEXT, "style_id": st.one_of(TEXT, st.just(str(style_id))), "direction": TEXT,
              "work_size": TEXT, "seed": TEXT, "background": TEXT, "layers": TEXT}

    @given(chosen=st.fixed_dictionaries({}, optional=fields))
    @settings(max_examples=25, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def answers(chosen: dict) -> None:
        response = admin.post_form("/batches", {**chosen, "pages": [upload(small_page(), "p.png")]},
                                   content_type="multipart/form-data")
        assert response.status_code in (302, 400), (chosen, response.status_code)

    answers()


# --- pages too small to hold a panel ------------------------------------------------------------

@pytest.mark.parametrize("size", [(1, 1), (1, 500), (500, 1)])
def test_a_one_pixel_page_is_refused_at_upload_naming_the_file_and_the_minimum(app, api_token, style_id, size):  # noqa: ANN001
    from panelpaint.limits import PAGE_SIDE_MIN

    response = app.test_client().post(
        "/api/v1/batches", headers={"Authorization": f"Bearer {api_token()}"}, content_type="multipart/form-data",
        data={"name": "Thin", "style_id": str(style_id),
              "pages": [upload(small_page(size, lines=False), "thin.png"), upload(small_page(), "good.png")]})
    assert response.status_code == 201
    body = response.get_json()
    assert [r["name"] for r in body["rejected"]] == ["thin.png"]
    assert body["rejected"][0]["error"] == (f"thin.png: {size[0]}x{size[1]} pixels is too small for a page: "
                                            f"each side needs at least {PAGE_SIDE_MIN} pixels")
    assert len(body["added"]) == 2 and body["state"] != "failed"


def test_a_one_pixel_archive_entry_fails_as_its_own_page_naming_it(app, artist, style_id, queue_calls):  # noqa: ANN001
    from tests.testkit import zip_bytes

    archive = zip_bytes({"01.png": small_page(), "02.png": small_page((1, 500), lines=False)})
    response = artist.post_form("/batches", {"name": "Zipped", "style_id": style_id,
                                             "pages": [upload(archive, "chapter.zip")]},
                                content_type="multipart/form-data")
    batch_id = int(re.search(r"(\d+)$", response.location).group(1))
    queue_calls.run_unpacks(app)
    pages = artist.get(f"/batches/{batch_id}/status.json").get_json()["pages"]
    assert [p["status"] for p in pages] == ["queued", "failed"]
    assert "02.png: 1x500 pixels is too small for a page" in pages[1]["error"]


# --- caching ------------------------------------------------------------------------------------

def test_private_files_are_private_and_token_pages_no_store(app, artist, page_id, style_id, api_token):  # noqa: ANN001
    urls = [f"/pages/{page_id}/image/source", f"/pages/{page_id}/image/source?size=180",
            f"/pages/{page_id}/image/result", f"/styles/{style_id}/image", f"/api/v1/pages/{page_id}/image/source"]
    bearer = {"Authorization": f"Bearer {api_token()}"}
    for url in urls:
        response = artist.get(url, headers=bearer if url.startswith("/api/") else {})
        assert response.status_code == 200, url
        directives = {d.strip().split("=")[0] for d in response.headers["Cache-Control"].split(",")}
        assert "private" in directives and "public" not in directives, (url, response.headers["Cache-Control"])
    assert artist.get("/account").headers["Cache-Control"] == "no-store"
    made = artist.post_form("/account/tokens", {"name": "laptop"})
    assert "pp_" in made.get_data(as_text=True) and made.headers["Cache-Control"] == "no-store"


# --- the rules of review decisions, layers, tags and hints ----------------------------------------

def test_a_decision_other_than_approved_or_rejected_is_a_400_naming_the_values(app, api_token, page_id):  # noqa: ANN001
    response = app.test_client().post(f"/api/v1/pages/{page_id}/review", json={"decision": "approve"},
                                      headers={"Authorization": f"Bearer {api_token('alpha', 'reviewer')}"})
    assert response.status_code == 400
    assert response.get_json() == {"error": "bad_request", "status": 400,
                                   "message": "decision must be approved or rejected, got 'approve'"}


def test_unknown_layers_are_refused(app, api_token, style_id):  # noqa: ANN001
    response = app.test_client().post(
        "/api/v1/batches", headers={"Authorization": f"Bearer {api_token()}"}, content_type="multipart/form-data",
        data={"name": "Layers", "style_id": str(style_id), "layers": ["psd", "exe"],
              "pages": [upload(small_page(), "1.png")]})
    assert response.status_code == 400 and "Layered files: unknown exe" in response.get_json()["message"]


def test_a_style_takes_at_most_tags_max_tags(app, api_token):  # noqa: ANN001
    from panelpaint.limits import TAGS_MAX

    def create(count: int):  # noqa: ANN202
        tags = ",".join(f"t{i}" for i in range(count))
        return app.test_client().post("/api/v1/styles", headers={"Authorization": f"Bearer {api_token()}"},
                                      content_type="multipart/form-data",
                                      data={"name": "Tagged", "tags": tags, "image": upload(small_page(), "s.png")})

    refused = create(3000)
    assert refused.status_code == 400
    assert refused.get_json()["message"] == f"too many tags (3000): a style has at most {TAGS_MAX}"
    assert create(TAGS_MAX).status_code == 201


@pytest.mark.parametrize(("dot", "message"), [
    ({"x": 99999999, "y": -5}, "is outside the 64x96 page"),
    ({"x": 10, "y": 96}, "is outside the 64x96 page"),
    ({"x": "nan", "y": 5}, "x and y must be finite numbers"),
])
def test_hints_off_the_page_are_refused_even_when_its_panels_are_not_known(app, api_token, style_id, worker,  # noqa: ANN001
                                                                         queue_calls, dot, message):
    bearer = {"Authorization": f"Bearer {api_token()}"}
    client = app.test_client()
    made = client.post("/api/v1/batches", headers=bearer, content_type="multipart/form-data",
                       data={"name": "Hints", "style_id": str(style_id), "pages": [upload(small_page(), "1.png")]})
    page_id = made.get_json()["added"][0]
    worker.fail(queue_calls.renders[0])  # decoded (64x96), failed before its panels were found
    response = client.post(f"/api/v1/pages/{page_id}/rerender", headers=bearer,
                           json={"hints": [{**dot, "color": "#ff0000"}]})
    assert response.status_code == 400 and message in response.get_json()["message"], response.get_json()


def test_at_most_hints_max_hints(app, api_token, page_id):  # noqa: ANN001
    from panelpaint.limits import HINTS_MAX

    dots = [{"x": 5, "y": 5, "color": "#ff0000"}] * (HINTS_MAX + 1)
    response = app.test_client().post(f"/api/v1/pages/{page_id}/rerender", json={"hints": dots},
                                      headers={"Authorization": f"Bearer {api_token()}"})
    assert response.status_code == 400
    assert f"a render takes at most {HINTS_MAX}" in response.get_json()["message"]


# --- thumbnails: the web serves what the workers made ---------------------------------------------

def test_the_web_serves_thumbnails_without_decoding_a_page(app, artist, page_id, monkeypatch):  # noqa: ANN001
    import PIL.Image

    from panelpaint.limits import THUMB_SIZES

    def refuse(*_args, **_kwargs):  # noqa: ANN002, ANN003
        raise AssertionError("the web decoded an image")

    monkeypatch.setattr(PIL.Image, "open", refuse)
    for kind in ("source", "result"):
        for size in THUMB_SIZES:
            response = artist.get(f"/pages/{page_id}/image/{kind}?size={size}")
            assert response.status_code == 200 and response.mimetype == "image/png", (kind, size)
    assert artist.get(f"/pages/{page_id}/image/flats?size=180").status_code == 404  # only source and result


def test_a_thumbnail_the_worker_has_not_made_yet_is_a_404_not_a_decode(app, api_token, style_id, monkeypatch):  # noqa: ANN001
    import PIL.Image

    bearer = {"Authorization": f"Bearer {api_token()}"}
    client = app.test_client()
    made = client.post("/api/v1/batches", headers=bearer, content_type="multipart/form-data",
                       data={"name": "New", "style_id": str(style_id), "pages": [upload(small_page(), "1.png")]})
    page = made.get_json()["pages"][0]
    assert page["thumb_url"] is None  # not ingested yet
    monkeypatch.setattr(PIL.Image, "open", lambda *a, **k: pytest.fail("the web decoded an image"))
    assert client.get(f"/api/v1/pages/{page['id']}/image/source?size=360", headers=bearer).status_code == 404
    assert client.get(f"/api/v1/pages/{page['id']}/image/source", headers=bearer).status_code == 200


def test_pages_not_ingested_yet_show_a_placeholder_not_a_broken_thumbnail(artist, style_id):  # noqa: ANN001
    response = artist.post_form("/batches", {"name": "Fresh", "style_id": style_id,
                                             "pages": [upload(small_page(), "p.png")]},
                                content_type="multipart/form-data")
    batch_id = int(re.search(r"(\d+)$", response.location).group(1))
    page_id = artist.get(f"/batches/{batch_id}/status.json").get_json()["pages"][0]["id"]
    for url in (f"/batches/{batch_id}", f"/review/{page_id}"):
        html = artist.get(url).get_data(as_text=True)
        assert "data-thumb-pending" in html and "image/source?size=" not in html, url
