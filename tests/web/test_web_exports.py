"""Chapter-level exports: the CBZ's ComicInfo.xml (validated against the ComicInfo v2.0 schema),
every page's layered file in one ZIP, and the batch's "Layered files" choice deciding what pages get."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from lxml import etree
from web_helpers import upload

from tests.panelpaint.comic_pages import small_page
from test_web_batches import approve, batch_id_of, create, page_rows

SCHEMA = etree.XMLSchema(etree.parse(str(Path(__file__).parents[1] / "data" / "ComicInfo-v2.0.xsd")))


def comic_info(cbz: bytes) -> etree._Element:
    """The CBZ's ComicInfo.xml, parsed and checked against the schema."""
    with zipfile.ZipFile(io.BytesIO(cbz)) as zf:
        doc = etree.fromstring(zf.read("ComicInfo.xml"))
    SCHEMA.assertValid(doc)
    return doc


def finish_all(app, worker, queue_calls, batch_id, outputs=None):  # noqa: ANN001
    storage = app.extensions["panelpaint"].storage
    for i, render_id in enumerate(queue_calls.renders):
        files = {kind: storage.put_bytes(data(i), suffix) for kind, (suffix, data) in (outputs or {}).items()}
        if files:
            files["composite"] = storage.put_bytes(small_page((64, 96), (100 + i, 90, 40)), ".png")
        worker.finish(render_id, outputs=files or None)
    return [row[3] for row in page_rows(app, batch_id)]


def test_rtl_cbz_carries_a_valid_comic_info(app, artist, style_id, worker, queue_calls):
    batch_id = batch_id_of(create(artist, style_id, [upload(small_page((70, 100)), n) for n in ("p1.png", "p2.png",
                                                                                               "p3.png")],
                                  name="Ch 3 <draft>", direction="rtl", series="Star & Moon", number="3"))
    page_ids = finish_all(app, worker, queue_calls, batch_id)
    for page_id in page_ids:
        approve(app, page_id)
    cbz = artist.get(f"/batches/{batch_id}/download.cbz")
    assert cbz.status_code == 200
    doc = comic_info(cbz.data)
    assert doc.findtext("Series") == "Star & Moon" and doc.findtext("Title") == "Ch 3 <draft>"
    assert doc.findtext("Number") == "3" and doc.findtext("Manga") == "YesAndRightToLeft"
    assert doc.findtext("PageCount") == "3" and doc.findtext("BlackAndWhite") == "No"
    with zipfile.ZipFile(io.BytesIO(cbz.data)) as zf:
        images = [i for i in zf.infolist() if i.filename.endswith(".png")]
    pages = doc.find("Pages").findall("Page")
    assert [p.get("Image") for p in pages] == ["0", "1", "2"]
    # Each entry describes the image at its place in the archive's reading order.
    assert [int(p.get("ImageSize")) for p in pages] == [i.file_size for i in images]
    assert [i.filename for i in images] == ["001-p1.png", "002-p2.png", "003-p3.png"]
    assert {(p.get("ImageWidth"), p.get("ImageHeight")) for p in pages} == {("70", "100")}


def test_ltr_cbz_without_series_uses_the_batch_name(app, artist, style_id, worker, queue_calls):
    batch_id = batch_id_of(create(artist, style_id, [upload(small_page(), "a.png")]))
    finish_all(app, worker, queue_calls, batch_id)
    doc = comic_info(artist.get(f"/batches/{batch_id}/download.cbz?scope=all").data)
    assert doc.findtext("Series") == doc.findtext("Title") == "Chapter 1"
    assert doc.findtext("Manga") == "No" and doc.find("Number") is None
    zipped = artist.get(f"/batches/{batch_id}/download.zip?scope=all")
    assert "ComicInfo.xml" not in zipfile.ZipFile(io.BytesIO(zipped.data)).namelist()


def test_comic_info_schema_catches_a_wrong_document():
    # The schema is strict enough to fail: an unknown Manga value and elements out of order.
    with pytest.raises(etree.DocumentInvalid):
        SCHEMA.assertValid(etree.fromstring(b"<ComicInfo><Manga>Sideways</Manga></ComicInfo>"))
    with pytest.raises(etree.DocumentInvalid):
        SCHEMA.assertValid(etree.fromstring(b"<ComicInfo><PageCount>1</PageCount><Title>t</Title></ComicInfo>"))


def test_layered_files_for_the_whole_batch(app, artist, style_id, worker, queue_calls, api_token):
    batch_id = batch_id_of(create(artist, style_id, [upload(small_page(), "a.png"), upload(small_page(), "b.png")],
                                  layers=["psd"]))
    page_ids = finish_all(app, worker, queue_calls, batch_id,
                          {"psd": (".psd", lambda i: b"8BPS page %d" % i)})
    approve(app, page_ids[1])
    html = artist.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert f"/batches/{batch_id}/layers/psd.zip" in html and "/layers/ora.zip" not in html
    response = artist.get(f"/batches/{batch_id}/layers/psd.zip")
    assert response.status_code == 200 and response.headers["Content-Disposition"].endswith("Chapter_1-psd.zip")
    with zipfile.ZipFile(io.BytesIO(response.data)) as zf:
        assert zf.namelist() == ["002-b.psd"] and zf.read("002-b.psd") == b"8BPS page 1"
    with zipfile.ZipFile(io.BytesIO(artist.get(f"/batches/{batch_id}/layers/psd.zip?scope=all").data)) as zf:
        assert zf.namelist() == ["001-a.psd", "002-b.psd"]
    # ORA was not asked for: said so, never an empty archive.
    ora = artist.get(f"/batches/{batch_id}/layers/ora.zip", follow_redirects=True)
    assert "have no ORA files" in ora.get_data(as_text=True)
    headers = {"Authorization": f"Bearer {api_token()}"}
    api = artist.get(f"/api/v1/batches/{batch_id}/layers/psd?scope=all", headers=headers)
    assert api.status_code == 200 and len(zipfile.ZipFile(io.BytesIO(api.data)).namelist()) == 2
    refused = artist.get(f"/api/v1/batches/{batch_id}/layers/ora", headers=headers)
    assert refused.status_code == 409 and "have no ORA files" in refused.get_json()["message"]
    assert artist.get(f"/api/v1/batches/{batch_id}/layers/gif", headers=headers).status_code == 404


def test_layered_files_choice_decides_the_outputs(app, artist, style_id):
    none = batch_id_of(create(artist, style_id, [upload(small_page(), "a.png")]))
    both = batch_id_of(create(artist, style_id, [upload(small_page(), "a.png")], layers=["ora", "psd"]))
    assert artist.get(f"/batches/{none}/status.json").get_json()["options"]["formats"] == ["png", "json", "preview"]
    assert artist.get(f"/batches/{both}/status.json").get_json()["options"]["formats"] == [
        "png", "json", "preview", "psd", "ora"]
    bad = create(artist, style_id, [upload(small_page(), "a.png")], layers=["tiff"])
    assert bad.status_code == 400 and "Layered files: unknown tiff" in bad.get_data(as_text=True)
    long = create(artist, style_id, [upload(small_page(), "a.png")], series="x" * 201)
    assert long.status_code == 400 and "Series must be at most 200" in long.get_data(as_text=True)


def skip(app, page_id: int) -> None:
    """What ingest does with a page that arrived in colour."""
    from panelpaint.store import renders

    with app.extensions["panelpaint"].store.session() as s:
        assert renders.skip_coloured(s, page_id, 0.5) is not None


def test_a_page_that_arrived_coloured_is_shown_kept_in_the_book_and_can_be_coloured(
        app, artist, style_id, worker, queue_calls, api_token):
    batch_id = batch_id_of(create(artist, style_id, [upload(small_page(), "lines.png"),
                                                     upload(small_page(color=(90, 160, 230)), "cover.png")]))
    lines_render = queue_calls.renders[0]
    page_ids = [row[3] for row in page_rows(app, batch_id)]
    skip(app, page_ids[1])
    worker.finish(lines_render)
    status = artist.get(f"/batches/{batch_id}/status.json").get_json()
    assert [p["status"] for p in status["pages"]] == ["succeeded", "skipped"]
    assert status["state"] == "done" and "1 already coloured: skipped" in status["summary"]
    html = artist.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert "already coloured: skipped" in html and "Colour it anyway" in html
    # The book keeps the page as it arrived, in its place, approved or not.
    with zipfile.ZipFile(io.BytesIO(artist.get(f"/batches/{batch_id}/download.cbz").data)) as zf:
        assert zf.namelist() == ["002-cover.png", "ComicInfo.xml"]
        assert zf.read("002-cover.png") == small_page(color=(90, 160, 230))
    # Colour it anyway: a new render is queued and sent.
    response = artist.post_form(f"/pages/{page_ids[1]}/colour-anyway", follow_redirects=True)
    assert "queued to be coloured" in response.get_data(as_text=True)
    assert len(queue_calls.renders) == 3  # one render per page, then the new one
    assert artist.get(f"/batches/{batch_id}/status.json").get_json()["pages"][1]["status"] == "queued"
    headers = {"Authorization": f"Bearer {api_token()}"}
    again = artist.post(f"/api/v1/pages/{page_ids[1]}/colour-anyway", headers=headers)
    assert again.status_code == 409 and "not skipped" in again.get_json()["message"]


def test_the_colour_anyway_option(artist, style_id):
    batch_id = batch_id_of(create(artist, style_id, [upload(small_page(), "a.png")], colour_anyway="1"))
    assert artist.get(f"/batches/{batch_id}/status.json").get_json()["options"]["colour_anyway"] is True
