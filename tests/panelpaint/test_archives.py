"""ZIP/CBZ reading: natural order, skipped extras, hostile archives refused, good entries kept."""
import io
import stat
import zipfile

import pytest
from PIL import Image

from panelpaint.archives import CHUNK, ArchiveError, EntryTooLarge, iter_archive, iter_entries, write_archive
from tests.testkit import lie_about_size, write_zip


def png(colour=0) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (8, 8), colour).save(buf, "PNG")
    return buf.getvalue()


def make_zip(path, entries, *, compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression) as zf:
        for item in entries:
            if isinstance(item, zipfile.ZipInfo):
                zf.writestr(item, b"target")
            else:
                name, data = item
                zf.writestr(name, data)
    return path


def pages(path, **limits):
    return list(iter_archive(path, **limits))


def test_natural_sort_order_and_skipped_extras(tmp_path):
    names = ["p10.png", "p2.png", "p1.png", "Chapter 1/p3.jpg", "__MACOSX/._p1.png", "Thumbs.db",
             "notes.txt", ".hidden.png", "ComicInfo.xml"]
    path = make_zip(tmp_path / "book.cbz", [(n, png()) for n in names])
    got = pages(path)
    assert [p.name for p in got] == ["Chapter 1/p3.jpg", "p1.png", "p2.png", "p10.png"]
    assert all(p.data == png() and p.error is None for p in got)


@pytest.mark.parametrize("bad", ["../evil.png", "a/../../evil.png", "/etc/evil.png", "C:/evil.png", "..\\evil.png"])
def test_traversal_and_absolute_entries_are_refused_others_kept(tmp_path, bad):
    path = make_zip(tmp_path / "mixed.zip", [("ok1.png", png()), (bad, png()), ("ok2.png", png())])
    got = pages(path)
    refused = [p for p in got if p.error]
    assert [p.name for p in refused] == [bad] and "refused" in refused[0].error and refused[0].data is None
    assert [p.name for p in got if p.data] == ["ok1.png", "ok2.png"]


def test_symlink_entries_are_refused(tmp_path):
    link = zipfile.ZipInfo("link.png")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    path = make_zip(tmp_path / "links.zip", [("ok.png", png()), link])
    got = {p.name: p for p in pages(path)}
    assert got["link.png"].error == "refused: symbolic link"
    assert got["ok.png"].data == png()


def test_too_many_entries_rejects_the_archive(tmp_path):
    path = make_zip(tmp_path / "many.zip", [(f"p{i}.png", png()) for i in range(12)])
    with pytest.raises(ArchiveError, match="many.zip: archive has 12 entries, more than the limit of 10"):
        pages(path, max_entries=10)
    assert len(pages(path, max_entries=12)) == 12


def test_zip_bomb_by_declared_size_is_rejected_before_reading(tmp_path):
    path = make_zip(tmp_path / "bomb.zip", [("p1.png", png()), ("huge.png", b"\0" * 3_000_000)])
    assert path.stat().st_size < 50_000
    with pytest.raises(ArchiveError, match="zip bomb"):
        pages(path, max_bytes=1_000_000)


def test_entry_that_inflates_past_its_declared_size_is_refused(tmp_path):
    # The directory claims 100 bytes but the stream inflates to 3 MB: the archive passes the
    # declared-size check, and reading must stop at the declared size instead of trusting the stream.
    path = make_zip(tmp_path / "liar.zip", [("ok.png", png()), ("liar.png", b"\0" * 3_000_000)])
    lie_about_size(path, "liar.png", 100)
    got = {p.name: p for p in pages(path, max_bytes=1_000_000)}
    assert got["liar.png"].data is None and got["liar.png"].error
    assert got["ok.png"].data == png()


def test_actual_bytes_are_counted_against_the_total(tmp_path):
    # Each entry is honest, but together they inflate past the limit once read.
    path = make_zip(tmp_path / "sum.zip", [("a.png", b"\0" * 600_000), ("b.png", b"\0" * 600_000)])
    with pytest.raises(ArchiveError, match="zip bomb"):
        pages(path, max_bytes=1_000_000)


def test_not_a_zip(tmp_path):
    path = tmp_path / "fake.cbz"
    path.write_bytes(b"Rar!\x1a\x07\x00" + b"x" * 100)
    with pytest.raises(ArchiveError, match="fake.cbz: not a readable ZIP/CBZ"):
        pages(path)


def test_corrupt_entry_fails_alone(tmp_path):
    path = make_zip(tmp_path / "crc.zip", [("a.png", png(0)), ("b.png", png(128))], compression=zipfile.ZIP_STORED)
    raw = bytearray(path.read_bytes())
    target = png(128)
    i = raw.find(target, raw.find(b"b.png"))
    raw[i + len(target) // 2] ^= 0xFF  # break b.png's CRC
    path.write_bytes(bytes(raw))
    got = {p.name: p for p in pages(path)}
    assert got["a.png"].data == png(0)
    assert got["b.png"].data is None and "cannot read entry" in got["b.png"].error


def test_an_entry_over_its_cap_is_refused_from_its_header_without_inflating(tmp_path):
    path = write_zip(tmp_path / "big.cbz", {"ok.png": png(), "big.png": 5_000_000})
    entries = iter_entries(path, max_entry_bytes=1_000_000)  # each entry is read before the next
    big = next(entries)
    with pytest.raises(EntryTooLarge, match="unpacks to 5,000,000 bytes, more than the 1,000,000 one entry may take"):
        big.open()
    with next(entries).open() as reader:
        assert reader.read() == png()
    got = {p.name: p for p in iter_archive(path, max_entry_bytes=1_000_000)}
    assert got["big.png"].data is None and "1,000,000" in got["big.png"].error and got["ok.png"].data == png()


def test_an_entry_is_streamed_and_counted_chunk_by_chunk_while_it_inflates(tmp_path):
    # The header is honest here; the reader never hands out more than a chunk at a time and stops
    # the moment the bytes actually inflated pass the cap, whatever a directory said.
    path = write_zip(tmp_path / "big.cbz", {"big.png": 5_000_000})
    entries = iter_entries(path, max_entry_bytes=10_000_000)
    entry, sizes = next(entries), []
    with entry.open() as reader:
        reader._cap = 2_500_000  # as if the header had claimed less than the cap
        with pytest.raises(EntryTooLarge, match="more than 2,500,000 bytes"):
            while chunk := reader.read(1 << 30):
                sizes.append(len(chunk))
    assert max(sizes) <= CHUNK and sum(sizes) <= 2_500_000


def test_write_archive_roundtrip_and_refuses_unsafe_names(tmp_path):
    f = tmp_path / "x.png"
    f.write_bytes(png())
    out = write_archive(tmp_path / "out" / "book.cbz", [("001.png", f), ("002.png", png(9)), ("meta.json", b"{}")])
    with zipfile.ZipFile(out) as zf:
        assert zf.namelist() == ["001.png", "002.png", "meta.json"]
        assert zf.getinfo("001.png").compress_type == zipfile.ZIP_STORED
    assert [p.name for p in pages(out)] == ["001.png", "002.png"]
    with pytest.raises(ValueError, match="unsafe"):
        write_archive(tmp_path / "bad.zip", [("../x.png", png())])
    assert not (tmp_path / "bad.zip").exists() and not (tmp_path / "bad.zip.part").exists()


def test_reads_from_an_open_stream_too(tmp_path):
    path = make_zip(tmp_path / "book.cbz", [("p2.png", png(2)), ("p1.png", png(1))])
    stream = io.BytesIO(path.read_bytes())
    assert [p.data for p in iter_archive(stream)] == [png(1), png(2)]
    with pytest.raises(ArchiveError, match="upload.cbz: archive has 2 entries"):
        buf = io.BytesIO(path.read_bytes())
        buf.name = "/tmp/x/upload.cbz"
        list(iter_archive(buf, max_entries=1))


def test_iter_archive_resumes_after_skipped_items(tmp_path):
    path = tmp_path / "chapter.cbz"
    with zipfile.ZipFile(path, "w") as zf:
        for name in ("p10.png", "p2.png", "p1.png", "../evil.png"):
            zf.writestr(name, name.encode())
    whole = [(e.name, e.error is None) for e in iter_archive(path)]
    assert whole == [("../evil.png", False), ("p1.png", True), ("p2.png", True), ("p10.png", True)]
    for skip in range(len(whole) + 1):
        assert [(e.name, e.error is None) for e in iter_archive(path, skip=skip)] == whole[skip:]
