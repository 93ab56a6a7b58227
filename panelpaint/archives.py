"""ZIP and CBZ archives of pages: safe reading in natural sort order, and writing outputs.

Reading never extracts to disk and never trusts the archive (paths, links, entry count and sizes
are checked, declared sizes first and inflated bytes while reading); files a comic reader would
ignore are skipped, and a bad entry is reported while the others go on."""
from __future__ import annotations

import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Iterable, Iterator

from natsort import natsorted, ns

ARCHIVE_SUFFIXES = (".zip", ".cbz")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")
IGNORED_NAMES = {"thumbs.db", "desktop.ini", ".ds_store", "comicinfo.xml"}
CHUNK = 1 << 20


class ArchiveError(ValueError):
    """The whole archive is refused (not a ZIP, too many entries, too large): message says why."""


class EntryError(ValueError):
    """One entry cannot be read (corrupt, unsupported, past its declared size): it alone fails."""


class EntryTooLarge(EntryError):
    """One entry unpacks to more than the most one page may take (`limit` bytes)."""

    def __init__(self, limit: int, declared: int | None = None):
        self.limit, self.declared = limit, declared
        size = f"{declared:,} bytes" if declared is not None else f"more than {limit:,} bytes"
        super().__init__(f"unpacks to {size}, more than the {limit:,} one entry may take")


_READ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError, RuntimeError)


@dataclass
class PageFile:
    """One page-to-be, an archive entry or an uploaded file: its name (a label, never a path) and
    its bytes, or the reason it cannot be used (it becomes a failed page)."""

    name: str
    data: bytes | None = None
    error: str | None = None


@dataclass
class ArchiveListing:
    """What an archive holds once checked: page names in reading order, skipped and refused entries."""

    pages: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def is_archive(path: str | Path) -> bool:
    return Path(path).suffix.lower() in ARCHIVE_SUFFIXES


def _unsafe_reason(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    if "\x00" in name:
        return "name contains a NUL byte"
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        return "absolute path"
    if ".." in PurePosixPath(norm).parts:
        return "path traversal (..)"
    mode = info.external_attr >> 16
    if info.create_system == 3 and stat.S_ISLNK(mode):
        return "symbolic link"
    if info.flag_bits & 0x1:
        return "encrypted entry"
    return None


def _ignored(name: str) -> bool:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if any(p == "__MACOSX" or p.startswith(".") for p in parts):
        return True
    base = parts[-1].lower() if parts else ""
    return base in IGNORED_NAMES or not base.endswith(IMAGE_SUFFIXES)


def list_archive(zf: zipfile.ZipFile, *, max_entries: int, max_bytes: int) -> ArchiveListing:
    """Check an open archive's directory against the limits; raises `ArchiveError` for the whole archive."""
    infos = zf.infolist()
    if len(infos) > max_entries:
        raise ArchiveError(f"archive has {len(infos)} entries, more than the limit of {max_entries}")
    declared = sum(i.file_size for i in infos)
    if declared > max_bytes:
        raise ArchiveError(
            f"archive would expand to {declared:,} bytes, more than the limit of {max_bytes:,} (possible zip bomb)"
        )
    listing = ArchiveListing()
    for info in infos:
        if info.is_dir():
            continue
        reason = _unsafe_reason(info)
        if reason:
            listing.errors[info.filename] = f"refused: {reason}"
        elif _ignored(info.filename):
            listing.skipped.append(info.filename)
        else:
            listing.pages.append(info.filename)
    listing.pages = natsorted(listing.pages, alg=ns.PATH | ns.IGNORECASE)
    return listing


def _open(path: str | Path | BinaryIO, label: str | None = None) -> tuple[zipfile.ZipFile, str]:
    if label is None:
        if isinstance(path, (str, Path)):
            label = Path(path).name
        else:  # an open binary file, e.g. an upload stream (must be seekable)
            label = Path(str(getattr(path, "name", None) or getattr(path, "filename", None) or "archive")).name
    try:
        return zipfile.ZipFile(path), label
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ArchiveError(f"{label}: not a readable ZIP/CBZ archive ({exc})") from None


def _listing(zf: zipfile.ZipFile, label: str, max_entries: int, max_bytes: int) -> ArchiveListing:
    try:
        return list_archive(zf, max_entries=max_entries, max_bytes=max_bytes)
    except ArchiveError as exc:
        raise ArchiveError(f"{label}: {exc}") from None


def check_archive(path: str | Path | BinaryIO, *, max_entries: int = 1000, max_bytes: int = 4 * 1024**3,
                  label: str | None = None) -> ArchiveListing:
    """Read only an archive's directory and check it against the limits (fast, nothing inflated):
    the listing `iter_archive` would follow, or `ArchiveError` (message prefixed with `label`)."""
    zf, label = _open(path, label)
    with zf:
        return _listing(zf, label, max_entries, max_bytes)


class _Budget:
    """Bytes inflated so far from one archive, against its total limit."""

    def __init__(self, label: str, max_bytes: int):
        self.label, self.max_bytes, self.total = label, max_bytes, 0

    def spend(self, n: int) -> None:
        self.total += n
        if self.total > self.max_bytes:
            raise ArchiveError(f"{self.label}: archive expands past the limit of {self.max_bytes:,} bytes "
                               "(possible zip bomb)")


class _EntryReader:
    """One entry read as it inflates, in chunks of at most `CHUNK` bytes, every chunk counted
    against the entry's cap, its declared size and the archive's total before it is returned:
    a directory that lies about sizes cannot make anyone hold more than a chunk too many."""

    def __init__(self, fh: BinaryIO, info: zipfile.ZipInfo, budget: _Budget, max_entry_bytes: int | None):
        self._fh, self._info, self._budget, self._cap = fh, info, budget, max_entry_bytes
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:  # everything: still read and checked chunk by chunk
            return b"".join(iter(lambda: self.read(CHUNK), b""))
        try:
            chunk = self._fh.read(min(n, CHUNK))
        except _READ_ERRORS as exc:
            raise EntryError(f"cannot read entry ({exc})") from None
        self.size += len(chunk)
        if self._cap is not None and self.size > self._cap:
            raise EntryTooLarge(self._cap)
        if self.size > self._info.file_size:
            raise EntryError("entry holds more bytes than its declared size")
        self._budget.spend(len(chunk))
        return chunk

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "_EntryReader":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


@dataclass
class ArchiveEntry:
    """One entry of `iter_entries`: refused (`error`) or a page to `open()` and read. The reader
    is valid until the iteration moves on; it raises `EntryError`/`EntryTooLarge` for this entry
    alone and `ArchiveError` when the archive as a whole goes over its limit."""

    name: str
    error: str | None = None
    _zf: zipfile.ZipFile | None = field(default=None, repr=False)
    _budget: _Budget | None = field(default=None, repr=False)
    _cap: int | None = field(default=None, repr=False)

    def open(self) -> _EntryReader:
        if self.error or self._zf is None:
            raise EntryError(self.error or "entry was refused")
        info = self._zf.getinfo(self.name)
        if self._cap is not None and info.file_size > self._cap:
            raise EntryTooLarge(self._cap, info.file_size)  # from the header: nothing inflated
        try:
            fh = self._zf.open(info)
        except _READ_ERRORS as exc:
            raise EntryError(f"cannot read entry ({exc})") from None
        return _EntryReader(fh, info, self._budget, self._cap)


def iter_entries(path: str | Path | BinaryIO, *, max_entries: int = 1000, max_bytes: int = 4 * 1024**3,
                 max_entry_bytes: int | None = None, skip: int = 0) -> Iterator[ArchiveEntry]:
    """Yield the archive's refused entries (with `error`), then its pages in natural order, each
    to be read as a stream (`ArchiveEntry.open`) so that no entry is ever held whole in memory.

    Raises `ArchiveError` when the archive itself is unreadable or over a limit. An entry larger
    than `max_entry_bytes` is refused from its header when it declares so and otherwise as soon
    as it inflates past it. The order is fixed by the archive, so `skip` leaves out the first
    items (unread) to resume where an earlier reader stopped.
    """
    zf, label = _open(path)
    with zf:
        listing = _listing(zf, label, max_entries, max_bytes)
        refused = list(listing.errors.items())
        for name, error in refused[skip:]:
            yield ArchiveEntry(name, error=error)
        budget = _Budget(label, max_bytes)
        for name in listing.pages[max(0, skip - len(refused)):]:
            yield ArchiveEntry(name, _zf=zf, _budget=budget, _cap=max_entry_bytes)


def iter_archive(path: str | Path | BinaryIO, *, max_entries: int = 1000, max_bytes: int = 4 * 1024**3,
                 max_entry_bytes: int | None = None, skip: int = 0) -> Iterator[PageFile]:
    """`iter_entries` with each page read into memory (`data`) or refused (`error`): for callers
    that need the bytes (the command line), each entry capped at `max_entry_bytes`."""
    for entry in iter_entries(path, max_entries=max_entries, max_bytes=max_bytes,
                              max_entry_bytes=max_entry_bytes, skip=skip):
        if entry.error:
            yield PageFile(entry.name, error=entry.error)
            continue
        try:
            with entry.open() as reader:
                data = reader.read()
        except EntryError as exc:
            yield PageFile(entry.name, error=str(exc))
            continue
        yield PageFile(entry.name, data=data)


def write_archive(out_path: str | Path, files: Iterable[tuple[str, Path | bytes]]) -> Path:
    """Write a ZIP/CBZ of (name inside archive, file path or bytes); images are stored, not recompressed."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".part")
    seen: set[str] = set()
    try:
        with zipfile.ZipFile(tmp, "w") as zf:
            for name, content in files:
                norm = PurePosixPath(name.replace("\\", "/"))
                if norm.is_absolute() or ".." in norm.parts:
                    raise ValueError(f"unsafe name for an archive entry: {name!r}")
                if str(norm) in seen:
                    raise ValueError(f"duplicate archive entry: {name!r}")
                seen.add(str(norm))
                compress = zipfile.ZIP_DEFLATED if norm.suffix.lower() in (".json", ".xml", ".txt") else zipfile.ZIP_STORED
                if isinstance(content, (bytes, bytearray)):
                    zf.writestr(str(norm), content, compress_type=compress)
                else:
                    zf.write(content, str(norm), compress_type=compress)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(out_path)
    return out_path
