"""Local content-addressed storage: keys, atomic writes, no overwrite, no path from user input."""
from __future__ import annotations

import hashlib
import os
import threading

import pytest

from panelpaint.settings import load_settings
from panelpaint.store.errors import InvalidInput, NotFound
from panelpaint.store.storage import LocalStorage, Storage, storage_from_settings, validate_key


def test_put_bytes_is_content_addressed_and_fanned_out(storage):
    key = storage.put_bytes(b"hello", ".PNG")
    assert key == hashlib.sha256(b"hello").hexdigest() + ".png"
    path = storage.local_path(key)
    assert path == storage.root / key[:2] / key[2:4] / key
    assert storage.read_bytes(key) == b"hello" and storage.exists(key)
    with storage.open(key) as f:
        assert f.read() == b"hello"
    assert storage.put_bytes(b"hello", "png") == key  # same content, same key, not rewritten


def test_no_overwrite(storage):
    key = storage.put_bytes(b"original")
    path = storage.local_path(key)
    inode = path.stat().st_ino
    assert storage.put_bytes(b"original") == key
    assert path.stat().st_ino == inode
    assert storage.put_file(path) == key and path.stat().st_ino == inode


def test_put_file_copies_and_leaves_no_temporaries(storage, tmp_path):
    src = tmp_path / "upload.bin"
    src.write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    key = storage.put_file(src, ".bin")
    src.write_bytes(b"changed afterwards")
    assert storage.read_bytes(key) != b"changed afterwards"
    assert hashlib.sha256(storage.read_bytes(key)).hexdigest() == key[:64]
    leftovers = [p for p in storage.root.rglob(".tmp-*")]
    assert leftovers == []
    out = storage.copy_to(key, tmp_path / "copy.bin")
    assert out.read_bytes() == storage.read_bytes(key)


def test_failed_write_leaves_nothing(storage, tmp_path, monkeypatch):
    def boom(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        storage.put_bytes(b"half written")
    key = hashlib.sha256(b"half written").hexdigest()
    assert not storage.exists(key)
    assert [p for p in storage.root.rglob("*") if p.is_file()] == []


class _Chunks:
    """A stream that hands out `n` chunks of `size` bytes, then fails if `fail` (a limit tripping)."""

    def __init__(self, n: int, size: int, fail: bool = False):
        self.n, self.size, self.fail, self.largest = n, size, fail, 0

    def read(self, want: int = -1) -> bytes:
        assert 0 < want <= 1 << 20, "storage reads in bounded chunks, never everything at once"
        if self.n == 0:
            if self.fail:
                raise ValueError("over the limit")
            return b""
        self.n -= 1
        return bytes([self.n % 256]) * self.size


def test_put_stream_hashes_while_writing_and_matches_put_bytes(storage):
    whole = b"".join(bytes([i % 256]) * 300_000 for i in reversed(range(7)))
    key = storage.put_stream(_Chunks(7, 300_000), ".png")
    assert key == storage.put_bytes(whole, ".png") and storage.read_bytes(key) == whole
    assert not list((storage.root / ".staging").iterdir())


def test_staging_is_checked_before_it_is_stored_and_a_failed_stream_leaves_nothing(storage):
    with storage.staging(_Chunks(3, 1000)) as staged:
        assert staged.path.read_bytes()[:1000] == b"\x02" * 1000 and staged.size == 3000
    assert [p for p in storage.root.rglob("*") if p.is_file()] == []  # not committed: gone
    with pytest.raises(ValueError, match="over the limit"), storage.staging(_Chunks(3, 1000, fail=True)):
        pass
    assert [p for p in storage.root.rglob("*") if p.is_file()] == []
    with storage.staging(_Chunks(3, 1000)) as staged:
        key = staged.commit(".png")
    assert storage.exists(key) and storage.local_path(key).stat().st_size == 3000


def test_concurrent_writers_of_the_same_content(storage):
    data = os.urandom(256 * 1024)
    keys = []
    threads = [threading.Thread(target=lambda: keys.append(storage.put_bytes(data, ".png"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(keys)) == 1 and storage.read_bytes(keys[0]) == data
    assert len([p for p in storage.root.rglob("*") if p.is_file()]) == 1


@pytest.mark.parametrize("bad", [
    "../x", "/etc/passwd", "a" * 63, "A" * 64, "a" * 64 + "/../../x", "a" * 64 + ".PNG", "a" * 64 + ".",
    "a" * 64 + ".png\n", "", None, "a" * 64 + ".toolongsuffix1",
])
def test_bad_keys_are_refused(storage, bad):
    with pytest.raises(InvalidInput):
        validate_key(bad)
    with pytest.raises(InvalidInput):
        storage.exists(bad)


@pytest.mark.parametrize("suffix", ["../x", ".p/g", ".png.exe/", "." + "x" * 11])
def test_bad_suffixes_are_refused(storage, suffix):
    with pytest.raises(InvalidInput):
        storage.put_bytes(b"x", suffix)


def test_missing_key(storage):
    key = "0" * 64 + ".png"
    assert not storage.exists(key) and storage.local_path(key) is None
    with pytest.raises(NotFound):
        storage.open(key)


def test_storage_from_settings(tmp_path, monkeypatch):
    monkeypatch.delenv("STORAGE_ROOT", raising=False)
    s = storage_from_settings(load_settings(var_dir=tmp_path / "var"))
    assert isinstance(s, LocalStorage) and isinstance(s, Storage)
    assert s.root == (tmp_path / "var" / "storage").resolve()


def test_delete_removes_a_file_and_ignores_a_missing_one(storage):
    key = storage.put_bytes(b"hand-off", ".npz")
    storage.delete(key)
    assert not storage.exists(key)
    storage.delete(key)  # a repeated delivery deleting again is not an error
    with pytest.raises(InvalidInput):
        storage.delete("../../etc/passwd")
