"""The style library (upload, tags, preview on a sample sketch) and the workers screen."""
from __future__ import annotations

import io
import re

from PIL import Image
from web_helpers import upload
from tests.panelpaint.comic_pages import small_page


def test_upload_a_style_with_tags(app, artist):
    response = artist.post_form("/styles", {"name": "Heroine", "tags": "Hero, day, hero",
                                            "image": upload(small_page((50, 40), (220, 60, 60), lines=False), "h.webp")},
                                content_type="multipart/form-data")
    assert response.status_code == 302
    style_id = int(re.search(r"/styles/(\d+)$", response.location).group(1))
    html = artist.get(response.location).get_data(as_text=True)
    assert "Heroine" in html and "50×40" in html
    assert artist.get("/styles?tag=hero").get_data(as_text=True).count("Heroine") >= 1
    assert "Heroine" not in artist.get("/styles?tag=night").get_data(as_text=True)
    image = artist.get(f"/styles/{style_id}/image")
    assert image.mimetype == "image/png" and image.headers["X-Content-Type-Options"] == "nosniff"
    # Stored as a clean PNG re-encoded by the server, whatever was uploaded.
    assert Image.open(io.BytesIO(image.data)).format == "PNG"


def test_bad_style_uploads_say_why(artist):
    cases = [
        ({"name": "x", "image": upload(b"GIF89a....", "x.gif")}, "x.gif: not a recognised image"),
        ({"name": "x", "image": upload(small_page()[:50], "t.png")}, "t.png: corrupt or truncated"),
        ({"name": "", "image": upload(small_page(), "ok.png")}, "style name must have"),
        ({"name": "x"}, "choose an image file"),
    ]
    for data, message in cases:
        response = artist.post_form("/styles", data, content_type="multipart/form-data")
        assert response.status_code == 400
        assert message in response.get_data(as_text=True), message


def test_style_preview_colours_the_sample_sketch(app, artist, style_id, worker, queue_calls):
    html = artist.get(f"/styles/{style_id}").get_data(as_text=True)
    assert "No preview yet" in html and "Preview this style" in html
    response = artist.post_form(f"/styles/{style_id}/preview")
    assert response.status_code == 302 and len(queue_calls.renders) == 1
    html = artist.get(f"/styles/{style_id}").get_data(as_text=True)
    assert "Preview queued" in html and "data-poll=" in html
    # The preview batch is not mixed into the studio's batches.
    assert artist.get("/batches/status.json").get_json()["batches"] == []
    worker.finish(queue_calls.renders[0])
    html = artist.get(f"/styles/{style_id}").get_data(as_text=True)
    assert "image/result?size=720" in html and "Preview again" in html
    assert "preview ready" in artist.get("/styles").get_data(as_text=True)


def test_preview_uses_the_configured_sample_sketch(app, artist, style_id, tmp_path, queue_calls):
    sketch = tmp_path / "sketch.png"
    sketch.write_bytes(small_page((30, 44)))
    app.config["SAMPLE_SKETCH"] = str(sketch)
    artist.post_form(f"/styles/{style_id}/preview")
    from panelpaint.store.schema import Render

    with app.extensions["panelpaint"].store.session() as s:
        page = s.get(Render, queue_calls.renders[0]).page
        assert (page.width, page.height, page.source_name) == (30, 44, "sketch.png")


def test_a_new_style_starts_its_preview_on_the_shipped_sketch(app, artist, queue_calls):
    response = artist.post_form("/styles", {"name": "Dusk", "image": upload(small_page((40, 40), (90, 60, 160),
                                                                                       lines=False), "d.png")},
                                content_type="multipart/form-data")
    html = artist.get(response.location).get_data(as_text=True)
    assert "Preview queued" in html and "data-poll=" in html and len(queue_calls.renders) == 1
    from panelpaint.store.schema import Render

    with app.extensions["panelpaint"].store.session() as s:
        page = s.get(Render, queue_calls.renders[0]).page
        # The README's sample figure (closed regions), not a page that is mostly paper.
        assert (page.source_name, page.width, page.height) == ("sample-sketch.png", 247, 256)
    shipped = Image.open(io.BytesIO(artist.get("/static/sample-sketch.png").data)).convert("L")
    assert shipped.size == (247, 256) and shipped.getextrema()[0] < 64


def test_reviewers_cannot_upload_or_preview(reviewer, style_id):
    assert reviewer.post_form(f"/styles/{style_id}/preview").status_code == 403
    assert "Upload style" not in reviewer.get("/styles").get_data(as_text=True)


def test_workers_screen_lists_workers_and_queues(app, artist, monkeypatch):
    from panelpaint import queue

    monkeypatch.setattr(queue, "queue_lengths", lambda settings: {"render": 3, "io": 0})
    asked = []
    monkeypatch.setattr(queue, "live_workers", lambda settings, timeout=1.0: asked.append(timeout) or [
        {"name": "render-1@box", "queues": ["render"], "active": 1, "concurrency": 1, "pid": 4242, "device": "cpu"}])
    html = artist.get("/workers").get_data(as_text=True)
    # The page is drawn without waiting for the workers; its script asks for them at once.
    assert asked == [] and "Asking the workers" in html and "<strong data-length>3</strong>" in html
    assert "on the GPU" not in html and "Colours on" in html
    assert app.extensions["panelpaint"].settings.flower_url in html
    data = artist.get("/workers/status.json").get_json()
    assert data["queues"] == {"render": 3, "io": 0} and data["workers"][0]["active"] == 1
    assert data["workers"][0]["device"] == "cpu" and asked == [1.0]


def test_workers_screen_reports_an_unreachable_broker(artist):
    # The test settings point at a closed port: the page still renders, with the reason.
    response = artist.get("/workers")
    assert response.status_code == 200
    assert "cannot be reached" in response.get_data(as_text=True)
