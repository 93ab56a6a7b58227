"""A style's colour key in the dashboard and the API: extracted at upload (from a shrunk copy),
shown as swatches with their shares, edited (a swatch's colour, add, remove, re-extract, snapping,
background) with CSRF, refused with clear 400s, studio-scoped; and the batch's background option."""
from __future__ import annotations

import io
import re

import pytest
from PIL import Image, ImageDraw
from web_helpers import upload

RED, BLUE = (220, 40, 40), (30, 80, 200)


def two_colour_png(size=(60, 40)) -> bytes:
    """A painting of two colour fields: red (two thirds) and blue."""
    img = Image.new("RGB", size, RED)
    ImageDraw.Draw(img).rectangle([size[0] * 2 // 3, 0, size[0], size[1]], fill=BLUE)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def add_style(client, png=None, name="Key"):  # noqa: ANN001
    response = client.post_form("/styles", {"name": name, "image": upload(png or two_colour_png(), "k.png")},
                                content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return int(re.search(r"/styles/(\d+)$", response.location).group(1))


def stored(app, style_id):  # noqa: ANN001
    from panelpaint.store.schema import StyleReference

    with app.extensions["panelpaint"].store.session() as s:
        row = s.get(StyleReference, style_id)
        return row.palette, row.snap_palette, row.background.value


def swatch_fields(html: str) -> tuple[list[str], list[str]]:
    colours = re.findall(r'<input type="color" id="swatch-\d+" name="color" value="(#[0-9a-f]{6})"', html)
    shares = re.findall(r'<input type="hidden" name="share" value="([^"]+)"', html)
    return colours, shares


def test_an_uploaded_style_gets_its_colour_key_shown_in_the_library(app, artist):
    style_id = add_style(artist)
    palette, snap, background = stored(app, style_id)
    assert len(palette) == 2 and (snap, background) == (True, "paper")  # the defaults
    red, blue = palette
    assert red["share"] == pytest.approx(2 / 3, abs=0.03) and blue["share"] == pytest.approx(1 / 3, abs=0.03)
    assert Image.new("RGB", (1, 1), red["color"]).getpixel((0, 0))[0] > 180  # the red field comes first
    library = artist.get("/styles").get_data(as_text=True)
    assert f'fill="{red["color"]}"' in library and f'fill="{blue["color"]}"' in library
    html = artist.get(f"/styles/{style_id}").get_data(as_text=True)
    colours, shares = swatch_fields(html)
    assert colours == [red["color"], blue["color"]] and len(shares) == 2
    assert 'id="snap-palette" name="snap_palette" value="1" checked' in html
    assert '<option value="paper" selected>' in html


def test_extraction_runs_on_a_copy_at_most_512_px(app, artist, monkeypatch):
    from panelpaint.store import styles

    seen = []
    real = styles.extract_palette
    monkeypatch.setattr(styles, "extract_palette", lambda rgb, k=8: seen.append((rgb.shape, k)) or real(rgb, k))
    style_id = add_style(artist, two_colour_png((1500, 900)))
    assert seen == [((307, 512, 3), 8)]
    assert artist.get(f"/styles/{style_id}").status_code == 200


def test_edit_a_swatch_add_one_remove_one_and_the_options(app, artist):
    style_id = add_style(artist)
    colours, shares = swatch_fields(artist.get(f"/styles/{style_id}").get_data(as_text=True))
    form = {"color": ["#00aa00", colours[1]], "share": shares, "snap_palette": "1", "background": "paper",
            "action": "save"}
    response = artist.post_form(f"/styles/{style_id}/key", form)
    assert response.status_code == 302 and response.location.endswith("#colour-key")
    palette, _, _ = stored(app, style_id)
    assert [s["color"] for s in palette] == ["#00aa00", colours[1]]
    assert palette[0]["share"] == pytest.approx(float(shares[0]))  # an edited swatch keeps its share
    # Add a swatch and remove the first, unticking snapping and colouring the background.
    artist.post_form(f"/styles/{style_id}/key", {**form, "remove": "0", "new_color": "#ffcc00", "action": "add",
                                                 "snap_palette": "", "background": "coloured"})
    assert stored(app, style_id) == ([{"color": colours[1], "share": pytest.approx(float(shares[1]))},
                                      {"color": "#ffcc00", "share": 0.0}], False, "coloured")
    html = artist.get(f"/styles/{style_id}").get_data(as_text=True)
    assert "Colour key saved" in html and swatch_fields(html)[0] == [colours[1], "#ffcc00"]
    assert 'name="snap_palette" value="1" >' in html and '<option value="coloured" selected>' in html
    from panelpaint.store.events import list_events
    from panelpaint.store.schema import StyleReference

    with app.extensions["panelpaint"].store.session() as s:
        studio = s.get(StyleReference, style_id).studio_id
        assert [e.data["style_id"] for e in list_events(s, studio, kind="style.updated")] == [style_id, style_id]


@pytest.mark.parametrize("change,message", [
    ({"color": ["red", "#000000"]}, "swatch 0: color must look like #rrggbb"),
    ({"remove": ["0", "1"]}, "a palette has 1 to 32 swatches, got 0"),
    ({"background": "sky"}, "background must be &#39;paper&#39; or &#39;coloured&#39;"),
    ({"share": ["0.5"]}, "the colour key form is incomplete"),
    ({"share": ["lots", "0.1"]}, "swatch 1: share must be a number"),
])
def test_bad_colour_key_edits_are_400s_that_say_why(app, artist, change, message):
    style_id = add_style(artist)
    before = stored(app, style_id)
    form = {"color": ["#111111", "#222222"], "share": ["0.5", "0.5"], "snap_palette": "1", "background": "paper",
            "action": "save", **change}
    response = artist.post_form(f"/styles/{style_id}/key", form)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert stored(app, style_id) == before


def test_re_extract_from_the_image(app, artist):
    style_id = add_style(artist)
    artist.post_form(f"/styles/{style_id}/key", {"color": ["#123456"], "share": ["1"], "snap_palette": "1",
                                                 "background": "paper", "action": "save"})
    assert len(stored(app, style_id)[0]) == 1
    response = artist.post_form(f"/styles/{style_id}/key/extract", {"k": "8"}, follow_redirects=True)
    assert "extracted from the image again (2 colours)" in response.get_data(as_text=True)
    assert len(stored(app, style_id)[0]) == 2
    artist.post_form(f"/styles/{style_id}/key/extract", {"k": "1"})
    assert len(stored(app, style_id)[0]) == 1
    for k, message in (("0", "1 to 32 colours"), ("40", "1 to 32 colours"), ("many", "must be a whole number")):
        bad = artist.post_form(f"/styles/{style_id}/key/extract", {"k": k})
        assert bad.status_code == 400 and message in bad.get_data(as_text=True), k


def test_the_colour_key_forms_need_csrf_a_submitting_role_and_the_studio(app, artist, reviewer, other_artist):
    style_id = add_style(artist)
    no_token = artist.post(f"/styles/{style_id}/key", data={"color": "#000000", "share": "1"})
    assert no_token.status_code == 400 and "Form expired" in no_token.get_data(as_text=True)
    assert reviewer.post_form(f"/styles/{style_id}/key", {"color": "#000000", "share": "1"}).status_code == 403
    assert reviewer.post_form(f"/styles/{style_id}/key/extract", {}).status_code == 403
    html = reviewer.get(f"/styles/{style_id}").get_data(as_text=True)
    assert 'id="key-form"' not in html and "Flats snap to the palette" in html  # shown, read only
    assert other_artist.post_form(f"/styles/{style_id}/key", {"color": "#000000", "share": "1"}).status_code == 404
    assert len(stored(app, style_id)[0]) == 2


@pytest.fixture
def api(client, api_token):  # noqa: ANN001
    def call(method, url, role="artist", studio="alpha", **kw):  # noqa: ANN001
        return client.open(url, method=method, headers={"Authorization": f"Bearer {api_token(studio, role)}"}, **kw)

    return call


def test_api_style_carries_and_edits_its_colour_key(app, api):
    created = api("POST", "/api/v1/styles", data={"name": "Two", "image": upload(two_colour_png(), "t.png")},
                  content_type="multipart/form-data").get_json()
    assert len(created["palette"]) == 2 and created["snap_palette"] is True and created["background"] == "paper"
    url = f"/api/v1/styles/{created['id']}"
    new_key = [{"color": "#FF0000", "share": 0.7}, {"color": "00ff00"}, {"color": "#0000ff", "share": 0.1}]
    changed = api("PATCH", url, json={"palette": new_key, "snap_palette": False, "background": "coloured"})
    assert changed.status_code == 200
    assert changed.get_json()["palette"] == [{"color": "#ff0000", "share": 0.7}, {"color": "#00ff00", "share": 0.0},
                                             {"color": "#0000ff", "share": 0.1}]
    assert api("GET", url).get_json()["snap_palette"] is False
    assert api("PATCH", url, json={"background": "paper"}).get_json()["palette"][0]["color"] == "#ff0000"
    extracted = api("POST", f"{url}/palette/extract", json={"k": 1})
    assert extracted.status_code == 200 and len(extracted.get_json()["palette"]) == 1
    assert len(api("POST", f"{url}/palette/extract").get_json()["palette"]) == 2  # k = 8 by default


@pytest.mark.parametrize("body,message", [
    ({"palette": []}, "palette: a palette has 1 to 32 swatches, got 0"),
    ({"palette": [{"color": "#abc"}]}, "swatch 0: color must look like #rrggbb, got '#abc'"),
    ({"palette": [{"color": "#aabbcc", "share": -1}]}, "swatch 0: share must be a number from 0 to 1"),
    ({"palette": {"color": "#aabbcc"}}, "a palette must be a list of swatches"),
    ({"snap_palette": "false"}, "snap_palette must be true or false"),
    ({"background": "black"}, "background must be 'paper' or 'coloured'"),
    ({"name": "renamed"}, "Unknown field(s) name"),
    ({}, "Send a JSON object"),
    ([1, 2], "Send a JSON object"),
])
def test_api_refuses_bad_colour_keys_with_a_400_that_says_why(app, api, style_id, body, message):
    response = api("PATCH", f"/api/v1/styles/{style_id}", json=body)
    assert response.status_code == 400 and message in response.get_json()["message"]
    assert api("GET", f"/api/v1/styles/{style_id}").get_json()["palette"] is None


def test_api_colour_key_roles_and_studios(api, style_id):
    url = f"/api/v1/styles/{style_id}"
    assert api("PATCH", url, role="reviewer", json={"snap_palette": False}).status_code == 403
    assert api("PATCH", url, studio="beta", role="admin", json={"snap_palette": False}).status_code == 404
    assert api("POST", f"{url}/palette/extract", studio="beta", role="admin").status_code == 404
    bad_k = api("POST", f"{url}/palette/extract", json={"k": 99})
    assert bad_k.status_code == 400 and "1 to 32 colours" in bad_k.get_json()["message"]


def test_a_batch_may_set_the_background_of_every_page(app, artist, api, style_id, queue_calls):
    page = [upload(two_colour_png(), "p.png")]
    response = artist.post_form("/batches", {"name": "Bg", "style_id": style_id, "pages": page,
                                             "background": "coloured"}, content_type="multipart/form-data")
    batch_id = int(response.location.rsplit("/", 1)[1])
    options = artist.get(f"/batches/{batch_id}/status.json").get_json()["options"]
    assert options == {"background": "coloured", "formats": ["png", "json", "preview"]}  # no layered files asked
    form = artist.get("/batches/new").get_data(as_text=True)
    assert '<option value="">Each style\'s own</option>' in form and 'value="coloured"' in form
    bad = artist.post_form("/batches", {"name": "Bg", "style_id": style_id, "background": "grey",
                                        "pages": [upload(two_colour_png(), "p.png")]},
                           content_type="multipart/form-data")
    assert bad.status_code == 400 and "Background must be paper or coloured" in bad.get_data(as_text=True)
    via_api = api("POST", "/api/v1/batches", data={"name": "Bg", "style_id": str(style_id), "background": "paper",
                                                   "pages": [upload(two_colour_png(), "p.png")]},
                  content_type="multipart/form-data")
    assert via_api.status_code == 201
    assert via_api.get_json()["options"] == {"background": "paper", "formats": ["png", "json", "preview"]}
