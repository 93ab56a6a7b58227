"""Review controls that must each do something: variant seeds in one range, hints placed on a panel
and shown with the result that used them, and variant sets (N renders side by side, one picked),
in the dashboard and the API."""
from __future__ import annotations

import json
import re

import pytest
from web_helpers import upload
from tests.panelpaint.comic_pages import small_page

from panelpaint.limits import SEED_MAX


@pytest.fixture
def finished(app, artist, style_id, worker, queue_calls):  # noqa: ANN001
    """One page rendered with two stacked panels (64x96: panel 1 is y 0..47, panel 2 y 48..95)."""
    response = artist.post_form("/batches", {"name": "Variants", "style_id": style_id,
                                             "pages": [upload(small_page(), "p.png")]},
                                content_type="multipart/form-data")
    batch_id = int(re.search(r"(\d+)$", response.location).group(1))
    worker.finish(queue_calls.renders[0])
    return artist.get(f"/batches/{batch_id}/status.json").get_json()["pages"][0]["id"]


def panels_of(app, page_id):  # noqa: ANN001
    from panelpaint.store.schema import Page

    with app.extensions["panelpaint"].store.session() as s:
        return [p.id for p in s.get(Page, page_id).panels]


def render_row(app, render_id):  # noqa: ANN001
    from panelpaint.store.schema import Render

    with app.extensions["panelpaint"].store.session() as s:
        r = s.get(Render, render_id)
        s.expunge(r)
        return r


def current(app, page_id):  # noqa: ANN001
    from panelpaint.store.schema import Page

    with app.extensions["panelpaint"].store.session() as s:
        return s.get(Page, page_id).current_render_id


@pytest.fixture
def api(client, api_token):  # noqa: ANN001
    def call(method, url, role="reviewer", studio="alpha", **kw):  # noqa: ANN001
        return client.open(url, method=method, headers={"Authorization": f"Bearer {api_token(studio, role)}"}, **kw)

    return call


# --- seeds -------------------------------------------------------------------------------------

def test_the_seed_control_says_what_blank_means_and_uses_the_stores_range(reviewer, artist, finished):
    html = reviewer.get(f"/review/{finished}").get_data(as_text=True)
    assert "Variant seed <span class=\"hint\">(blank = the canonical colouring)</span>" in html
    assert f'name="seed" type="number" min="0" max="{SEED_MAX}"' in html
    assert "version 1 · canonical colouring" in html
    new_batch = artist.get("/batches/new").get_data(as_text=True)
    assert "(blank = the canonical colouring)" in new_batch and f'max="{SEED_MAX}"' in new_batch


@pytest.mark.parametrize("seed", [str(SEED_MAX + 1), "-1", "1.5", "abc"])
def test_seeds_outside_the_range_are_refused_everywhere(app, reviewer, api, style_id, finished, queue_calls, seed):
    before = len(queue_calls.renders)
    html = reviewer.post_form(f"/review/{finished}/rerender", {"seed": seed}, follow_redirects=True)
    assert f"Seed must be a whole number from 0 to {SEED_MAX}" in html.get_data(as_text=True)
    as_json = json.loads(seed) if seed not in ("abc",) else seed
    response = api("POST", f"/api/v1/pages/{finished}/rerender", json={"seed": as_json})
    assert response.status_code == 400 and str(SEED_MAX) in response.get_json()["message"]
    assert len(queue_calls.renders) == before


def test_the_largest_seed_is_accepted_and_a_batch_seed_reaches_its_pages(app, reviewer, artist, style_id, finished,
                                                                         queue_calls):
    reviewer.post_form(f"/review/{finished}/rerender", {"seed": str(SEED_MAX)})
    assert render_row(app, queue_calls.renders[-1]).seed == SEED_MAX
    artist.post_form("/batches", {"name": "Seeded", "style_id": style_id, "seed": "77",
                                  "pages": [upload(small_page(), "s.png")]}, content_type="multipart/form-data")
    assert render_row(app, queue_calls.renders[-1]).seed == 77  # the batch's seed is no dead control


def test_the_openapi_document_states_the_same_limits(api):
    from panelpaint.limits import SWATCHES_MAX, VARIANTS_MAX, VARIANTS_MIN

    doc = api("GET", "/api/openapi.json").get_json()
    paths, schemas = doc["paths"], doc["components"]["schemas"]
    rerender = paths["/api/v1/pages/{page_id}/rerender"]["post"]["requestBody"]["content"]["application/json"]
    assert rerender["schema"]["properties"]["seed"]["maximum"] == SEED_MAX
    assert schemas["Render"]["properties"]["seed"]["maximum"] == SEED_MAX
    variants = paths["/api/v1/pages/{page_id}/variants"]["post"]["requestBody"]["content"]["application/json"]
    count = variants["schema"]["properties"]["count"]
    assert (count["minimum"], count["maximum"], count["default"]) == (VARIANTS_MIN, VARIANTS_MAX, 4)
    assert (schemas["Palette"]["minItems"], schemas["Palette"]["maxItems"]) == (1, SWATCHES_MAX)
    assert re.fullmatch(schemas["Swatch"]["properties"]["color"]["pattern"], "#a1B2c3")
    assert not re.fullmatch(schemas["Swatch"]["properties"]["color"]["pattern"], "#a1B2c")
    assert schemas["Style"]["properties"]["background"]["enum"] == ["paper", "coloured"]
    assert schemas["StylePatch"]["additionalProperties"] is False


# --- hints on panels ---------------------------------------------------------------------------

def test_the_review_screen_knows_the_panels_a_hint_can_be_placed_on(app, reviewer, finished):
    html = reviewer.get(f"/review/{finished}").get_data(as_text=True)
    top, bottom = panels_of(app, finished)
    assert f'data-panel="{top}" data-position="1" data-x="0" data-y="0" data-w="64" data-h="48"' in html
    assert f'data-panel="{bottom}" data-position="2"' in html
    assert "This result used no colour hints." in html


def test_a_hint_off_the_panel_re_rendered_is_refused(app, reviewer, finished, queue_calls):
    top, _ = panels_of(app, finished)
    before = len(queue_calls.renders)
    hints = json.dumps([{"x": 10, "y": 70, "color": "#00ff00"}])  # on panel 2
    html = reviewer.post_form(f"/review/{finished}/rerender", {"panel_id": top, "hints": hints}, follow_redirects=True)
    assert "hint 1 at (10, 70) is not on panel 1" in html.get_data(as_text=True)
    assert len(queue_calls.renders) == before


def test_the_page_shows_the_hints_its_result_used(app, reviewer, finished, queue_calls, worker):
    _, bottom = panels_of(app, finished)
    hints = [{"x": 10, "y": 70, "color": "#12AB34"}]
    reviewer.post_form(f"/review/{finished}/rerender", {"panel_id": bottom, "hints": json.dumps(hints)})
    html = reviewer.get(f"/review/{finished}").get_data(as_text=True)
    assert "This result used no colour hints." in html  # the queued re-render is not shown yet
    worker.finish(queue_calls.renders[-1])
    html = reviewer.get(f"/review/{finished}").get_data(as_text=True)
    assert 'class="dot used" data-x="10.0" data-y="70.0" data-color="#12ab34"' in html
    assert "This result (v1) used 1 colour hint(s)" in html and "<code>#12ab34</code> at (10, 70) on panel 2" in html


# --- variants ----------------------------------------------------------------------------------

def test_variants_side_by_side_as_they_finish_and_a_pick(app, reviewer, finished, worker, queue_calls):
    before = len(queue_calls.renders)
    shown = reviewer.get(f"/pages/{finished}/image/result").get_data()
    response = reviewer.post_form(f"/review/{finished}/variants", {"count": "3"})
    assert response.status_code == 302 and response.location.endswith("#variants")
    ids = queue_calls.renders[before:]
    assert len(ids) == 3 and len({render_row(app, r).seed for r in ids}) == 3
    html = reviewer.get(f"/review/{finished}").get_data(as_text=True)
    assert "3 variants queued (versions 2–4)" in html
    assert html.count('class="variant" data-render=') == 3 and html.count("colouring…") == 3
    status = reviewer.get(f"/review/{finished}/variants.json").get_json()["variant_set"]
    assert status["active"] and [r["status"] for r in status["renders"]] == ["queued"] * 3
    worker.finish(ids[1], color=(250, 10, 10))
    status = reviewer.get(f"/review/{finished}/variants.json").get_json()["variant_set"]
    assert [bool(r["thumb_url"]) for r in status["renders"]] == [False, True, False]
    assert current(app, finished) != ids[1]  # a finished variant is not the page's result by itself
    worker.finish(ids[0], color=(10, 250, 10))
    worker.finish(ids[2], color=(10, 10, 250))
    status = reviewer.get(f"/review/{finished}/variants.json").get_json()["variant_set"]
    assert not status["active"] and all(r["thumb_url"] for r in status["renders"])
    assert reviewer.get(f"/pages/{finished}/image/result").get_data() == shown
    html = reviewer.get(f"/review/{finished}").get_data(as_text=True)
    assert html.count("Pick v") == 3 and f"/renders/{ids[2]}/files/composite?size=360" in html
    picked = reviewer.post_form(f"/review/{finished}/pick", {"render_id": ids[2]}, follow_redirects=True)
    text = picked.get_data(as_text=True)
    assert f"Variant v4 (seed {render_row(app, ids[2]).seed}) is now this page&#39;s result" in text
    assert current(app, finished) == ids[2]
    assert reviewer.get(f"/pages/{finished}/image/result").get_data() != shown
    assert 'id="review-status">pending' in text and "the page's result</span>" in text


def test_variant_requests_and_picks_that_cannot_be(app, reviewer, artist, style_id, finished, queue_calls, worker):
    before = len(queue_calls.renders)
    for count, message in (("1", "from 2 to 8"), ("9", "from 2 to 8"), ("four", "from 2 to 8")):
        html = reviewer.post_form(f"/review/{finished}/variants", {"count": count}, follow_redirects=True)
        assert message in html.get_data(as_text=True), count
    assert len(queue_calls.renders) == before
    reviewer.post_form(f"/review/{finished}/variants", {})  # the default: 4
    ids = queue_calls.renders[before:]
    assert len(ids) == 4
    again = reviewer.post_form(f"/review/{finished}/variants", {}, follow_redirects=True).get_data(as_text=True)
    assert "are still being made" in again
    early = reviewer.post_form(f"/review/{finished}/pick", {"render_id": ids[0]}, follow_redirects=True)
    assert "is queued: only a finished one can be picked" in early.get_data(as_text=True)
    first = render_row(app, current(app, finished))
    not_variant = reviewer.post_form(f"/review/{finished}/pick", {"render_id": first.id}, follow_redirects=True)
    assert "is not a variant: only a variant can be picked" in not_variant.get_data(as_text=True)
    assert current(app, finished) == first.id
    # Another page's render through this page's form, and another studio: 404.
    other = artist.post_form("/batches", {"name": "Other", "style_id": style_id,
                                          "pages": [upload(small_page(), "o.png")]}, content_type="multipart/form-data")
    other_render = queue_calls.renders[-1]
    assert other.status_code == 302
    assert reviewer.post_form(f"/review/{finished}/pick", {"render_id": other_render}).status_code == 404
    assert reviewer.post_form(f"/review/{finished}/pick", {}).status_code == 400


def test_variants_of_a_page_without_a_result_are_refused(app, artist, style_id, queue_calls):
    response = artist.post_form("/batches", {"name": "Queued", "style_id": style_id,
                                             "pages": [upload(small_page(), "q.png")]},
                                content_type="multipart/form-data")
    page_id = artist.get(response.location + "/status.json").get_json()["pages"][0]["id"]
    html = artist.post_form(f"/review/{page_id}/variants", {"count": "2"}, follow_redirects=True)
    assert "variants are made of a finished page" in html.get_data(as_text=True)
    assert 'id="variants-button" disabled' in html.get_data(as_text=True)


def test_api_variants_and_pick(app, api, finished, worker, queue_calls):
    made = api("POST", f"/api/v1/pages/{finished}/variants", json={"count": 2})
    assert made.status_code == 202
    vset = made.get_json()
    assert vset["size"] == 2 and vset["picked_render_id"] is None
    ids = [r["id"] for r in vset["renders"]]
    assert queue_calls.renders[-2:] == ids
    assert all(r["variant_set_id"] == vset["id"] and r["status"] == "queued" for r in vset["renders"])
    assert vset["renders"][0]["seed"] != vset["renders"][1]["seed"]
    assert api("POST", f"/api/v1/pages/{finished}/variants", json={}).status_code == 409  # one set at a time
    early = api("POST", f"/api/v1/renders/{ids[0]}/pick")
    assert early.status_code == 409 and "only a finished one can be picked" in early.get_json()["message"]
    for rid in ids:
        worker.finish(rid)
    picked = api("POST", f"/api/v1/renders/{ids[1]}/pick")
    assert picked.status_code == 200 and picked.get_json()["render_id"] == ids[1]
    listed = api("GET", f"/api/v1/pages/{finished}/variants").get_json()["variant_sets"]
    assert [v["picked_render_id"] for v in listed] == [ids[1]]
    assert api("GET", f"/api/v1/renders/{ids[0]}").get_json()["variant_set_id"] == vset["id"]
    not_variant = api("POST", f"/api/v1/renders/{listed[0]['renders'][0]['id'] - 1}/pick")
    assert not_variant.status_code == 409 and "not a variant" in not_variant.get_json()["message"]


@pytest.mark.parametrize("body,message", [
    ({"count": 1}, "from 2 to 8"), ({"count": "x"}, "from 2 to 8"), ({"count": True}, "from 2 to 8"),
    ({"style_id": "abc"}, "style_id must be a whole number"),
    ({"hints": [{"x": 500, "y": 5, "color": "#00ff00"}]}, "is outside the 64x96 page"),
    ({"hints": "dots"}, "Bad colour hints"),
])
def test_api_variant_requests_are_checked(api, finished, queue_calls, body, message):
    before = len(queue_calls.renders)
    response = api("POST", f"/api/v1/pages/{finished}/variants", json=body)
    assert response.status_code == 400 and message in response.get_json()["message"]
    assert len(queue_calls.renders) == before


def test_api_variants_are_studio_scoped(api, finished, worker, queue_calls):
    ids = [r["id"] for r in api("POST", f"/api/v1/pages/{finished}/variants", json={"count": 2}).get_json()["renders"]]
    worker.finish(ids[0])
    assert api("POST", f"/api/v1/pages/{finished}/variants", studio="beta", role="admin", json={}).status_code == 404
    assert api("GET", f"/api/v1/pages/{finished}/variants", studio="beta", role="admin").status_code == 404
    assert api("POST", f"/api/v1/renders/{ids[0]}/pick", studio="beta", role="admin").status_code == 404


def test_a_pages_result_is_asked_for_again_while_render_files_and_sources_are_cached(
        app, reviewer, api, finished, worker, queue_calls):
    """The page's result URL stays the same when a re-render or a pick changes the file behind it:
    browsers must revalidate it (a 304 while unchanged), or the review screen shows the old result."""
    result = reviewer.get(f"/pages/{finished}/image/result?size=720")
    assert result.cache_control.no_cache and result.cache_control.max_age is None
    again = reviewer.get(f"/pages/{finished}/image/result?size=720", headers={"If-None-Match": result.headers["ETag"]})
    assert again.status_code == 304
    for url in (f"/pages/{finished}/image/result", f"/pages/{finished}/download.png",
                f"/api/v1/pages/{finished}/image/result", f"/api/v1/pages/{finished}/download/png"):
        response = api("GET", url) if url.startswith("/api/") else reviewer.get(url)
        assert response.status_code == 200 and response.cache_control.no_cache, url
    source = reviewer.get(f"/pages/{finished}/image/source?size=360")
    render_file = reviewer.get(f"/renders/{queue_calls.renders[0]}/files/composite")
    assert source.cache_control.max_age == render_file.cache_control.max_age == 3600
    assert not source.cache_control.no_cache and not render_file.cache_control.no_cache
    reviewer.post_form(f"/review/{finished}/rerender", {"seed": "5"})
    worker.finish(queue_calls.renders[-1], color=(5, 5, 5))
    changed = reviewer.get(f"/pages/{finished}/image/result?size=720",
                           headers={"If-None-Match": result.headers["ETag"]})
    assert changed.status_code == 200 and changed.data != result.data
