"""The dashboard and API on PostgreSQL (migrated by the job store's migrations): a smoke test of the
store-backed paths, including studio isolation and a full submit -> render -> review -> download."""
from __future__ import annotations

import io
import zipfile

import pytest
from web_helpers import Client, FakeWorker, build_app, make_database, upload, web_settings
from tests.panelpaint.comic_pages import small_page

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_app(postgres_url, tmp_path, queue_calls):  # noqa: ANN001
    make_database(postgres_url)
    app = build_app(web_settings(tmp_path, postgres_url))
    yield app
    app.extensions["panelpaint"].store.dispose()


def test_dashboard_and_api_on_postgres(pg_app, queue_calls):
    assert pg_app.extensions["panelpaint"].store.dialect == "postgresql"
    artist = Client(pg_app.test_client())
    assert artist.login("alpha", "artist").status_code == 302
    style = artist.post_form("/styles", {"name": "PG", "image": upload(small_page((30, 30), lines=False), "s.png")},
                             content_type="multipart/form-data")
    style_id = int(style.location.rsplit("/", 1)[1])
    created = artist.post_form("/batches", {"name": "On PG", "style_id": style_id,
                                            "pages": [upload(small_page(), "a.png"), upload(b"bad", "b.png")]},
                               content_type="multipart/form-data")
    batch_id = int(created.location.rsplit("/", 1)[1])
    status = artist.get(f"/batches/{batch_id}/status.json").get_json()
    assert [p["status"] for p in status["pages"]] == ["queued", "failed"]
    FakeWorker(pg_app).finish(queue_calls.renders[-1])  # the page's render (the first is the style's preview)

    reviewer = Client(pg_app.test_client())
    reviewer.login("alpha", "reviewer")
    page_id = status["pages"][0]["id"]
    assert reviewer.post_form(f"/review/{page_id}/decision", {"decision": "approved"}).status_code == 302
    download = artist.get(f"/batches/{batch_id}/download.zip")
    assert zipfile.ZipFile(io.BytesIO(download.data)).namelist() == ["001-a.png"]

    # The colour key (JSON on PostgreSQL) and a variant set with a pick.
    html = artist.get(f"/styles/{style_id}").get_data(as_text=True)
    assert 'id="swatch-1"' in html
    assert artist.post_form(f"/styles/{style_id}/key", {"color": "#00aa00", "share": "1", "snap_palette": "1",
                                                        "background": "coloured", "action": "save"}).status_code == 302
    assert '<option value="coloured" selected>' in artist.get(f"/styles/{style_id}").get_data(as_text=True)
    before = len(queue_calls.renders)
    assert reviewer.post_form(f"/review/{page_id}/variants", {"count": "2"}).status_code == 302
    variants = queue_calls.renders[before:]
    for render_id in variants:
        FakeWorker(pg_app).finish(render_id)
    assert reviewer.post_form(f"/review/{page_id}/pick", {"render_id": variants[1]}).status_code == 302
    assert artist.get(f"/batches/{batch_id}/status.json").get_json()["pages"][0]["render_id"] == variants[1]

    outsider = Client(pg_app.test_client())
    outsider.login("beta", "admin")
    for url in (f"/batches/{batch_id}", f"/review/{page_id}", f"/styles/{style_id}", f"/batches/{batch_id}/download.zip"):
        assert outsider.get(url).status_code == 404, url
    assert outsider.post_form(f"/batches/{batch_id}/cancel").status_code == 404
