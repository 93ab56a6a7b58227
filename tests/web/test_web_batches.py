"""Batches through the dashboard: uploads (good and bad), progress, retry, cancel, images, downloads,
and studio isolation by guessed ids."""
from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib

import pytest
from web_helpers import upload
from tests.panelpaint.comic_pages import small_page
from tests.testkit import zip_bytes


def page_rows(app, batch_id: int):
    from panelpaint.store.schema import Page

    with app.extensions["panelpaint"].store.session() as s:
        import sqlalchemy as sa

        return [(p.source_name, p.status.value, p.error, p.id)
                for p in s.scalars(sa.select(Page).where(Page.batch_id == batch_id).order_by(Page.position))]


def render_task_ids(app, render_ids) -> dict:
    from panelpaint.store.schema import Render

    with app.extensions["panelpaint"].store.session() as s:
        return {r: s.get(Render, r).task_id for r in render_ids}


def create(client, style_id, files, **fields):  # noqa: ANN001
    data = {"name": "Chapter 1", "style_id": style_id, "direction": "ltr", "pages": files, **fields}
    return client.post_form("/batches", data, content_type="multipart/form-data")


def batch_id_of(response) -> int:  # noqa: ANN001
    return int(re.search(r"/batches/(\d+)$", response.location).group(1))


def pixel_bomb_png(width: int = 5000, height: int = 5000) -> bytes:
    """A valid tiny PNG header claiming a huge size (the body is tiny, the pixel count is not)."""
    raw = b"".join(b"\x00" + b"\x00" * width for _ in range(height))
    data = zlib.compress(raw, 9)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def test_new_batch_form(artist, style_id):
    html = artist.get("/batches/new").get_data(as_text=True)
    assert 'name="pages"' in html and "multiple" in html and ".cbz" in html
    assert "Warm" in html  # the library's style
    assert 'value="rtl"' in html


def test_create_batch_queues_good_pages_and_keeps_bad_ones_as_failed(app, artist, style_id, queue_calls):
    files = [
        upload(small_page(), "001.png"),
        upload(b"this is not an image at all", "002.png"),  # a renamed text file
        upload(small_page()[:60], "003.png"),  # truncated
        upload(pixel_bomb_png(), "004.png"),  # 25 Mpx over the test limit of 4 Mpx
        upload(b"<svg xmlns='http://www.w3.org/2000/svg'/>", "005.svg"),
        upload(small_page((80, 120)), "006.png"),
    ]
    response = create(artist, style_id, files)
    assert response.status_code == 302
    batch_id = batch_id_of(response)
    rows = page_rows(app, batch_id)
    assert [r[0] for r in rows] == ["001.png", "002.png", "003.png", "004.png", "005.svg", "006.png"]
    assert [r[1] for r in rows] == ["queued", "failed", "failed", "failed", "failed", "queued"]
    assert "not a recognised image" in rows[1][2]
    assert "corrupt or truncated" in rows[2][2]
    assert rows[3][2] == ("004.png: 25,000,000 pixels is too large: this service accepts at most 4,000,000 pixels "
                          "an image (PANELPAINT_MAX_IMAGE_PIXELS)")
    assert "not a recognised image" in rows[4][2]
    # Only the good pages were enqueued, after the commit (their renders exist in the database).
    assert len(queue_calls.renders) == 2
    page = artist.get(response.location).get_data(as_text=True)
    for _name, _status, error, _id in rows:
        if error:
            assert error.split(":")[1].strip()[:20] in page  # each message is shown on its page card
    flashes = artist.get("/batches").get_data(as_text=True)
    assert "Chapter 1" in flashes


def test_create_batch_shows_flash_messages_for_bad_files(artist, style_id):
    response = create(artist, style_id, [upload(small_page(), "ok.png"), upload(b"junk", "bad.jpg")])
    html = artist.get(response.location).get_data(as_text=True)
    assert "1 page(s) queued" in html
    assert "Not queued: bad.jpg: not a recognised image" in html


def test_zip_and_cbz_archives_become_pages_in_natural_order(app, artist, style_id, queue_calls):
    archive = zip_bytes({
        "ch1/page10.png": small_page(),
        "ch1/page2.png": small_page(),
        "ch1/page1.png": small_page(),
        "ch1/broken.png": b"\x89PNG\r\n\x1a\nnope",
        "../escape.png": small_page(),
        "__MACOSX/ch1/._page1.png": b"junk",
        "notes.txt": b"hello",
    })
    response = create(artist, style_id, [upload(archive, "chapter.cbz")])
    batch_id = batch_id_of(response)
    # The request only checks and stores the archive; an io worker unpacks it.
    assert page_rows(app, batch_id) == [] and len(queue_calls.unpacks) == 1
    html = artist.get(response.location).get_data(as_text=True)
    assert "chapter.cbz: unpacking 5 page(s)" in html
    status = artist.get(f"/batches/{batch_id}/status.json").get_json()
    assert status["state"] == "unpacking" and status["unpacking"][0]["files"] == ["chapter.cbz"]
    assert queue_calls.run_unpacks(app) == ["succeeded"]
    assert artist.get(f"/batches/{batch_id}/status.json").get_json()["unpacking"] == []
    rows = page_rows(app, batch_id)
    names = [r[0] for r in rows]
    good = [r for r in rows if r[1] == "queued"]
    assert [r[0] for r in good] == ["chapter.cbz/page1.png", "chapter.cbz/page2.png", "chapter.cbz/page10.png"]
    bad = {r[0]: r[2] for r in rows if r[1] == "failed"}
    assert any("path traversal" in e for e in bad.values())
    assert any("broken.png" in n and "broken.png: not a recognised image" in e for n, e in bad.items())
    assert not any("MACOSX" in n or "notes" in n for n in names)
    assert len(queue_calls.renders) == 3 and len(queue_calls.ingested) == 3


def test_unreadable_archive_is_one_failed_page_and_others_proceed(app, artist, style_id, queue_calls):
    response = create(artist, style_id, [upload(b"PK\x03\x04garbage", "bad.zip"), upload(small_page(), "fine.png")])
    html = artist.get(response.location).get_data(as_text=True)
    assert "Not queued: bad.zip: not a readable ZIP/CBZ" in html  # known at once, before any unpacking
    queue_calls.run_unpacks(app)
    rows = page_rows(app, batch_id_of(response))
    assert rows[0][1] == "failed" and "not a readable ZIP/CBZ" in rows[0][2]
    assert rows[1][:2] == ("fine.png", "queued")


def test_archive_with_too_many_entries_is_refused_with_a_message(app, artist, style_id, queue_calls):
    archive = zip_bytes({f"{i}.png": small_page((8, 8), lines=False) for i in range(25)})  # the test limit is 20 entries
    response = create(artist, style_id, [upload(archive, "big.zip")])
    queue_calls.run_unpacks(app)
    rows = page_rows(app, batch_id_of(response))
    assert len(rows) == 1 and rows[0][1] == "failed" and "limit of 20" in rows[0][2]


def test_client_filename_never_becomes_a_storage_path(app, artist, style_id):
    response = create(artist, style_id, [upload(small_page(), "../../../../etc/passwd.png")])
    from panelpaint.store.schema import Page

    with app.extensions["panelpaint"].store.session() as s:
        page = s.get(Page, page_rows(app, batch_id_of(response))[0][3])
        assert page.source_name == "passwd.png"
        assert re.fullmatch(r"[0-9a-f]{64}\.png", page.source_key)


def test_batch_form_errors_are_shown_and_keep_input(artist, style_id):
    response = create(artist, style_id, [], name="Keep me")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Choose at least one page" in html and 'value="Keep me"' in html
    no_style = artist.post_form("/batches", {"name": "x", "pages": upload(small_page(), "a.png")},
                                content_type="multipart/form-data")
    assert no_style.status_code == 400 and "Choose a style" in no_style.get_data(as_text=True)
    bad_seed = create(artist, style_id, [upload(small_page(), "a.png")], seed="abc")
    assert bad_seed.status_code == 400 and "Seed must be a whole number" in bad_seed.get_data(as_text=True)


def test_batch_with_an_uploaded_style(app, artist, queue_calls):
    data = {"name": "With style", "direction": "rtl", "style_name": "Sunset", "style_tags": "warm, evening",
            "style_image": upload(small_page((40, 40), (250, 120, 30), lines=False), "sunset.jpg"),
            "pages": [upload(small_page(), "p.png")], "layers": ["psd", "ora"], "work_size": "256", "seed": "7"}
    response = artist.post_form("/batches", data, content_type="multipart/form-data")
    assert response.status_code == 302
    batch_id = batch_id_of(response)
    status = artist.get(f"/batches/{batch_id}/status.json").get_json()
    assert status["direction"] == "rtl"
    assert status["options"] == {"work_size": 256, "seed": 7, "formats": ["png", "json", "preview", "psd", "ora"]}
    styles = artist.get("/styles").get_data(as_text=True)
    assert "Sunset" in styles and "evening" in styles


def test_bad_style_upload_keeps_no_batch(app, artist):
    data = {"name": "x", "style_image": upload(b"not an image", "s.png"), "pages": [upload(small_page(), "p.png")]}
    response = artist.post_form("/batches", data, content_type="multipart/form-data")
    assert response.status_code == 400
    assert "s.png: not a recognised image" in response.get_data(as_text=True)
    assert artist.get("/batches/status.json").get_json()["batches"] == []


def test_progress_json_and_list(app, artist, style_id, worker, queue_calls):
    response = create(artist, style_id, [upload(small_page(), "a.png"), upload(small_page(), "b.png")])
    batch_id = batch_id_of(response)
    status = artist.get(f"/batches/{batch_id}/status.json").get_json()
    assert status["state"] == "queued" and status["total"] == 2 and status["finished"] == 0
    worker.finish(queue_calls.renders[0])
    status = artist.get(f"/batches/{batch_id}/status.json").get_json()
    assert status["state"] == "queued" and status["finished"] == 1
    assert status["summary"].startswith("1/2 done")
    assert status["pages"][0]["status"] == "succeeded" and status["pages"][0]["thumb_url"].endswith("/image/result?size=360")
    worker.fail(queue_calls.renders[1], "model exploded")
    listing = artist.get("/batches/status.json").get_json()["batches"]
    assert listing[0]["id"] == batch_id and listing[0]["state"] == "done"
    assert "1 failed" in listing[0]["summary"]
    html = artist.get("/batches").get_data(as_text=True)
    assert "<progress" in html and 'data-poll="/batches/status.json"' in html
    detail = artist.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert "model exploded" in detail and "Retry" in detail


def test_retry_failed_page(app, artist, style_id, worker, queue_calls):
    response = create(artist, style_id, [upload(small_page(), "a.png")])
    batch_id = batch_id_of(response)
    worker.fail(queue_calls.renders[0])
    page_id = page_rows(app, batch_id)[0][3]
    assert artist.post_form(f"/pages/{page_id}/retry").status_code == 302
    assert page_rows(app, batch_id)[0][1] == "queued"
    assert len(queue_calls.renders) == 2 and queue_calls.renders[1] != queue_calls.renders[0]
    # Retrying a page that is not failed says so instead of failing.
    again = artist.post_form(f"/pages/{page_id}/retry", follow_redirects=True)
    assert "not failed" in again.get_data(as_text=True)


def test_retry_all_failed_skips_unreadable_uploads(app, artist, style_id, worker, queue_calls):
    response = create(artist, style_id, [upload(small_page(), "a.png"), upload(b"junk", "b.png")])
    batch_id = batch_id_of(response)
    worker.fail(queue_calls.renders[0])
    html = artist.post_form(f"/batches/{batch_id}/retry-failed", follow_redirects=True).get_data(as_text=True)
    assert "1 failed page(s) queued again" in html and "upload them again: b.png" in html


def test_cancel_revokes_queued_tasks(app, artist, style_id, queue_calls):
    response = create(artist, style_id, [upload(small_page(), "a.png"), upload(small_page(), "b.png")])
    batch_id = batch_id_of(response)
    assert "Cancel batch" in artist.get(f"/batches/{batch_id}").get_data(as_text=True)
    html = artist.post_form(f"/batches/{batch_id}/cancel", follow_redirects=True).get_data(as_text=True)
    assert "Batch cancelled: 2 queued page(s) dropped" in html
    assert "Cancel batch" not in html and "Add pages" not in html
    # Each render was sent under the task id the job store made for it, and cancel revokes those ids.
    stored = render_task_ids(app, queue_calls.renders)
    assert all(stored.values()) and queue_calls.task_ids == stored
    assert sorted(queue_calls.revoked) == sorted(stored.values())
    assert [r[1] for r in page_rows(app, batch_id)] == ["cancelled", "cancelled"]
    assert artist.get(f"/batches/{batch_id}/status.json").get_json()["state"] == "cancelled"
    add = artist.post_form(f"/batches/{batch_id}/pages", {"pages": upload(small_page(), "c.png")},
                           content_type="multipart/form-data", follow_redirects=True)
    assert "cancelled" in add.get_data(as_text=True)


def test_renders_are_sent_under_the_stored_task_id_without_another_commit(app, artist, style_id, queue_calls):
    create(artist, style_id, [upload(small_page(), "a.png")])
    (render_id,) = queue_calls.renders
    stored = render_task_ids(app, [render_id])[render_id]
    assert stored and queue_calls.task_ids == {render_id: stored}


def test_add_pages_to_a_batch(app, artist, style_id, queue_calls):
    batch_id = batch_id_of(create(artist, style_id, [upload(small_page(), "a.png")]))
    artist.post_form(f"/batches/{batch_id}/pages", {"pages": [upload(small_page(), "b.png"), upload(b"x", "c.png")]},
                     content_type="multipart/form-data")
    assert [r[:2] for r in page_rows(app, batch_id)] == [("a.png", "queued"), ("b.png", "queued"), ("c.png", "failed")]
    assert len(queue_calls.renders) == 2


def test_page_images_and_thumbnails(app, artist, style_id, worker, queue_calls):
    batch_id = batch_id_of(create(artist, style_id, [upload(small_page((64, 96)), "a.png")]))
    page_id = page_rows(app, batch_id)[0][3]
    source = artist.get(f"/pages/{page_id}/image/source")
    assert source.status_code == 200 and source.mimetype == "image/png"
    assert source.headers["X-Content-Type-Options"] == "nosniff"
    assert artist.get(f"/pages/{page_id}/image/result").status_code == 404  # not rendered yet
    worker.finish(queue_calls.renders[0])
    thumb = artist.get(f"/pages/{page_id}/image/result?size=180")
    assert thumb.status_code == 200 and thumb.mimetype == "image/png"
    from PIL import Image

    assert Image.open(io.BytesIO(thumb.data)).size == (64, 96)  # never upscaled
    assert artist.get(f"/pages/{page_id}/image/result?size=17").status_code == 404


def approve(app, page_id):  # noqa: ANN001
    from panelpaint.store import accounts, reviews

    with app.extensions["panelpaint"].store.session() as s:
        reviewer = accounts.get_user_by_email(s, "reviewer@alpha.test")
        reviews.review(s, page_id, None, reviewer.id, "approved")


@pytest.mark.parametrize("fmt", ["zip", "cbz"])
def test_download_approved_pages(app, artist, style_id, worker, queue_calls, fmt):
    batch_id = batch_id_of(create(artist, style_id, [upload(small_page(), "first.png"), upload(small_page(), "second.png"),
                                                     upload(small_page(), "third.png")]))
    nothing = artist.get(f"/batches/{batch_id}/download.{fmt}", follow_redirects=True)
    assert "Nothing to download yet" in nothing.get_data(as_text=True)
    for render_id in queue_calls.renders:
        worker.finish(render_id)
    rows = page_rows(app, batch_id)
    approve(app, rows[0][3])
    approve(app, rows[2][3])
    response = artist.get(f"/batches/{batch_id}/download.{fmt}")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].endswith(f'Chapter_1.{fmt}')
    names = zipfile.ZipFile(io.BytesIO(response.data)).namelist()
    metadata = ["ComicInfo.xml"] if fmt == "cbz" else []  # what comic readers read; docs/api.md
    assert names == ["001-first.png", "003-third.png", *metadata]
    everything = artist.get(f"/batches/{batch_id}/download.{fmt}?scope=all")
    assert len(zipfile.ZipFile(io.BytesIO(everything.data)).namelist()) == 3 + len(metadata)
    assert artist.get(f"/batches/{batch_id}/download.rar").status_code == 404


def test_layered_page_downloads(app, artist, style_id, worker, queue_calls):
    batch_id = batch_id_of(create(artist, style_id, [upload(small_page(), "a.png")]))
    storage = app.extensions["panelpaint"].storage
    outputs = {"composite": storage.put_bytes(small_page(), ".png"), "psd": storage.put_bytes(b"8BPS fake psd", ".psd")}
    worker.finish(queue_calls.renders[0], outputs=outputs)
    page_id = page_rows(app, batch_id)[0][3]
    psd = artist.get(f"/pages/{page_id}/download.psd")
    assert psd.status_code == 200 and psd.data == b"8BPS fake psd"
    assert psd.headers["Content-Disposition"].startswith("attachment") and "001-a.psd" in psd.headers["Content-Disposition"]
    assert artist.get(f"/pages/{page_id}/download.ora").status_code == 404
    review = artist.get(f"/review/{page_id}").get_data(as_text=True)
    assert f"/pages/{page_id}/download.psd" in review and f"/pages/{page_id}/download.png" in review
    assert f"/pages/{page_id}/download.ora" not in review


def test_another_studio_cannot_reach_anything_by_id(app, artist, other_artist, style_id, worker, queue_calls):
    batch_id = batch_id_of(create(artist, style_id, [upload(small_page(), "a.png"), upload(small_page(), "b.png")]))
    worker.finish(queue_calls.renders[0])
    worker.fail(queue_calls.renders[1])
    page_id, failed_page_id = page_rows(app, batch_id)[0][3], page_rows(app, batch_id)[1][3]
    render_id = queue_calls.renders[0]
    gets = [
        f"/batches/{batch_id}", f"/batches/{batch_id}/status.json", f"/batches/{batch_id}/download.zip",
        f"/pages/{page_id}/image/source", f"/pages/{page_id}/image/result", f"/pages/{page_id}/download.png",
        f"/renders/{render_id}/files/composite", f"/review/{page_id}", f"/review/batch/{batch_id}",
        f"/styles/{style_id}", f"/styles/{style_id}/image",
    ]
    for url in gets:
        assert artist.get(url).status_code in (200, 302), url  # the owner can
        assert other_artist.get(url).status_code == 404, url
    posts = [
        (f"/batches/{batch_id}/cancel", {}), (f"/batches/{batch_id}/pages", {"pages": upload(small_page(), "x.png")}),
        (f"/batches/{batch_id}/retry-failed", {}), (f"/pages/{failed_page_id}/retry", {}),
        (f"/review/{page_id}/rerender", {}), (f"/review/{page_id}/comment", {"comment": "hi"}),
        (f"/styles/{style_id}/preview", {}),
    ]
    for url, data in posts:
        assert other_artist.post_form(url, data, content_type="multipart/form-data").status_code == 404, url
    # Nothing changed for the owner.
    assert [r[1] for r in page_rows(app, batch_id)] == ["succeeded", "failed"]
    assert other_artist.get("/batches/status.json").get_json()["batches"] == []
    assert "Warm" not in other_artist.get("/styles").get_data(as_text=True)


def test_reviewer_of_another_studio_cannot_decide(app, artist, login_as, style_id, worker, queue_calls):
    batch_id = batch_id_of(create(artist, style_id, [upload(small_page(), "a.png")]))
    worker.finish(queue_calls.renders[0])
    page_id = page_rows(app, batch_id)[0][3]
    outsider = login_as("beta", "reviewer")
    assert outsider.post_form(f"/review/{page_id}/decision", {"decision": "approved"}).status_code == 404


def test_new_pages_get_panel_detection_then_a_render(app, artist, style_id, queue_calls):
    batch_id = batch_id_of(create(artist, style_id, [upload(small_page(), "a.png"), upload(b"x", "b.png")]))
    good = page_rows(app, batch_id)[0][3]
    assert queue_calls.ingested == [good]
    assert len(queue_calls.renders) == 1


def test_unreachable_broker_keeps_the_batch_and_says_so(app, artist, style_id, monkeypatch):
    from panelpaint import queue

    def down(*_a, **_k):
        raise ConnectionError("Error 111 connecting to redis")

    monkeypatch.setattr(queue, "enqueue_ingest", down)
    response = create(artist, style_id, [upload(small_page(), "a.png")])
    assert response.status_code == 302
    html = artist.get(response.location).get_data(as_text=True)
    assert "the work queue cannot be reached" in html
    assert [r[1] for r in page_rows(app, batch_id_of(response))] == ["queued"]


def test_archive_without_images_is_refused(app, artist, style_id):
    response = create(artist, style_id, [upload(zip_bytes({"readme.txt": b"hi"}), "empty.cbz")])
    assert response.status_code == 400
    assert "No page images in the upload" in response.get_data(as_text=True)
    assert artist.get("/batches/status.json").get_json()["batches"] == []


def test_zip_bomb_is_refused_and_the_rest_of_the_upload_proceeds(app, artist, style_id, queue_calls):
    """An archive expanding past PANELPAINT_MAX_ARCHIVE_BYTES is one failed upload; other files go on."""
    limit = app.extensions["panelpaint"].settings.max_archive_bytes
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("huge.png", b"\0" * (limit + 1))  # compresses to almost nothing
    assert len(bomb.getvalue()) < app.config["MAX_CONTENT_LENGTH"]
    response = create(artist, style_id, [upload(bomb.getvalue(), "bomb.cbz"), upload(small_page(), "fine.png")])
    queue_calls.run_unpacks(app)
    rows = page_rows(app, batch_id_of(response))
    assert rows[0][:2] == ("bomb.cbz", "failed") and "possible zip bomb" in rows[0][2]
    assert rows[1][:2] == ("fine.png", "queued")


def test_another_studios_style_cannot_be_used(app, other_artist, style_id):
    response = create(other_artist, style_id, [upload(small_page(), "a.png")])
    assert response.status_code == 400
    assert "not in your studio" in response.get_data(as_text=True)
    assert other_artist.get("/batches/status.json").get_json()["batches"] == []


def test_decoding_uploads_never_holds_the_database_write_lock(app, artist, style_id, monkeypatch):
    """While a page is decoded another writer (a worker reporting progress) can write at once."""
    import sqlite3

    from web.services import batches

    path = app.extensions["panelpaint"].store.engine.url.database
    real = batches.store_page_image
    probed = []

    def probing(data, name, *args):  # noqa: ANN001
        con = sqlite3.connect(path, timeout=0.2, isolation_level=None)
        try:
            con.execute("BEGIN IMMEDIATE")  # 'database is locked' if the request held the write lock
            con.execute("ROLLBACK")
        finally:
            con.close()
        probed.append(name)
        return real(data, name, *args)

    monkeypatch.setattr(batches, "store_page_image", probing)
    response = create(artist, style_id, [upload(small_page(), f"{i}.png") for i in range(3)])
    assert response.status_code == 302
    batch_id = batch_id_of(response)
    artist.post_form(f"/batches/{batch_id}/pages", {"pages": upload(small_page(), "more.png")},
                     content_type="multipart/form-data")
    assert probed == ["0.png", "1.png", "2.png", "more.png"]
