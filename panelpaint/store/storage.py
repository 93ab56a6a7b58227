"""File storage for sources, styles and outputs: content-addressed, atomic, never overwritten
(docs/architecture.md, "Storage"). `Storage` is the interface, `LocalStorage` a folder."""
from __future__ import annotations

import abc
import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from panelpaint.store.errors import InvalidInput, NotFound

KEY_PATTERN = re.compile(r"[0-9a-f]{64}(\.[a-z0-9]{1,10})?")
SUFFIX_PATTERN = re.compile(r"(\.[a-z0-9]{1,10})?")
_CHUNK = 1 << 20


def validate_key(key: str) -> str:
    """Return `key` if it is a well-formed storage key, else raise `InvalidInput`."""
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise InvalidInput(f"not a storage key: {str(key)[:80]!r}")
    return key


def normalize_suffix(suffix: str) -> str:
    suffix = (suffix or "").lower()
    if suffix and not suffix.startswith("."):
        suffix = "." + suffix
    if not SUFFIX_PATTERN.fullmatch(suffix):
        raise InvalidInput(f"bad file suffix {suffix!r}: use a dot and 1-10 letters or digits")
    return suffix


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class Staged:
    """A file copied from a stream into a local temporary file, hashed as it was written: check it
    at `path`, then `commit(suffix)` to store it under its key; left uncommitted, it is deleted."""

    def __init__(self, storage: "Storage", path: Path, digest: str, size: int):
        self.storage, self.path, self.digest, self.size = storage, path, digest, size
        self.key: str | None = None

    def commit(self, suffix: str = "") -> str:
        """Store the file under its key (SHA-256 + suffix) and return the key."""
        if self.key is None:
            self.key = self.storage._commit_staged(self, normalize_suffix(suffix))
        return self.key


class Storage(abc.ABC):
    """Where image files live. Writes return a key; the same content always gets the same key."""

    @abc.abstractmethod
    def put_bytes(self, data: bytes, suffix: str = "") -> str:
        """Store `data` (unless already there) and return its key."""

    @abc.abstractmethod
    def put_file(self, path: str | os.PathLike, suffix: str = "") -> str:
        """Store a local file's content (unless already there) and return its key."""

    @abc.abstractmethod
    def open(self, key: str) -> BinaryIO:
        """The stored content as a binary file object; raises `NotFound`."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """True when a file with this key is stored."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove a stored file; a missing one is not an error. Only for files no row refers to
        (the render-to-finish hand-off): deliverables and sources are kept."""

    @contextlib.contextmanager
    def staging(self, stream: Readable) -> Iterator[Staged]:
        """Copy `stream` to a local temporary file in chunks of 1 MiB, hashing while writing, so a
        file of any size costs one chunk of memory; see `Staged`. An error while reading (a
        stream that enforces a limit, say) propagates and leaves nothing behind."""
        fd, tmp = self._staging_file()
        try:
            digest, size = hashlib.sha256(), 0
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            yield Staged(self, tmp, digest.hexdigest(), size)
        finally:
            tmp.unlink(missing_ok=True)

    def put_stream(self, stream: Readable, suffix: str = "") -> str:
        """Store what `stream` yields (read in chunks, never held whole) and return its key."""
        with self.staging(stream) as staged:
            return staged.commit(suffix)

    def _staging_file(self) -> tuple[int, Path]:
        fd, name = tempfile.mkstemp(prefix="panelpaint-staged-")
        return fd, Path(name)

    def _commit_staged(self, staged: Staged, suffix: str) -> str:
        """Store a staged file (a backend may move it instead of copying: `LocalStorage`)."""
        return self.put_file(staged.path, suffix)

    def read_bytes(self, key: str) -> bytes:
        with self.open(key) as f:
            return f.read()

    def local_path(self, key: str) -> Path | None:
        """A local path for the key when the backend has one (for `send_file`), else None."""
        return None

    def copy_to(self, key: str, dest: str | os.PathLike) -> Path:
        """Copy a stored file to the local path `dest` (for exports); raises `NotFound`."""
        with self.open(key) as src, open(dest, "wb") as dst:
            shutil.copyfileobj(src, dst, _CHUNK)
        return Path(dest)


class LocalStorage(Storage):
    """Files under `root`, content-addressed and written atomically (temporary file, then link)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        key = validate_key(key)
        return self.root / key[:2] / key[2:4] / key

    def _commit(self, tmp: Path, key: str) -> str:
        dest = self._path(key)
        try:
            # os.link fails if the destination exists, so a stored file is never replaced, even by a
            # concurrent writer of the same content; the content is identical by construction anyway.
            os.link(tmp, dest)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
        return key

    def _tempfile(self, key_dir: Path) -> tuple[int, Path]:
        key_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".tmp-", dir=key_dir)
        return fd, Path(name)

    def put_bytes(self, data: bytes, suffix: str = "") -> str:
        key = hashlib.sha256(data).hexdigest() + normalize_suffix(suffix)
        dest = self._path(key)
        if dest.exists():
            return key
        fd, tmp = self._tempfile(dest.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return self._commit(tmp, key)

    def _staging_file(self) -> tuple[int, Path]:
        # Inside the root, on the same file system as the stored files, so a commit is a link.
        return self._tempfile(self.root / ".staging")

    def _commit_staged(self, staged: Staged, suffix: str) -> str:
        key = staged.digest + suffix
        dest = self._path(key)
        if dest.exists():
            return key
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(staged.path, dest)  # the staged file is removed when its `staging` block ends
        except FileExistsError:
            pass  # a concurrent writer stored the same content first
        return key

    def put_file(self, path: str | os.PathLike, suffix: str = "") -> str:
        suffix = normalize_suffix(suffix)
        # Copy into the storage folder while hashing, so the file is read once and the source
        # may change afterwards without affecting what is stored.
        staging = self.root / ".staging"
        fd, tmp = self._tempfile(staging)
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as src, os.fdopen(fd, "wb") as dst:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    dst.write(chunk)
                dst.flush()
                os.fsync(dst.fileno())
            key = digest.hexdigest() + suffix
            dest = self._path(key)
            dest.parent.mkdir(parents=True, exist_ok=True)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return self._commit(tmp, key)

    def open(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            return open(path, "rb")
        except FileNotFoundError:
            raise NotFound(f"no stored file with key {key}") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None


def storage_from_settings(settings) -> Storage:  # noqa: ANN001 - panelpaint.settings.Settings
    """The storage the settings describe (today: a `LocalStorage` at `settings.storage_root`)."""
    return LocalStorage(settings.storage_root)
