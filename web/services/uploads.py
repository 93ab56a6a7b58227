"""Reading uploads: an image becomes a `PageFile` (decoded and checked when it is stored as a page),
a ZIP/CBZ archive is checked and stored whole for an io worker to unpack (`panelpaint.unpack`).

A client's filename is only a label; storage keys are made from the content. A file that cannot
be used comes back as a `PageFile` with its error, to become a failed page: it never spoils the
rest of the upload.
"""
from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from werkzeug.datastructures import FileStorage
from werkzeug.utils import secure_filename

from panelpaint.archives import ARCHIVE_SUFFIXES, ArchiveError, PageFile, check_archive
from panelpaint.images import ImageError, open_image
from panelpaint.unpack import display_name

from . import services

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


@dataclass
class StoredArchive:
    """A checked ZIP/CBZ archive, stored whole for an io worker to unpack; `pages` it lists."""

    name: str
    key: str
    pages: int


def is_archive(name: str, data: bytes) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES) or data[:4] in ZIP_MAGIC


def _head(storage: FileStorage) -> bytes:
    head = storage.stream.read(4)
    storage.stream.seek(0)
    return head


def has_archive(files: list[FileStorage]) -> bool:
    """True when any uploaded file is a ZIP/CBZ archive (by name or by its first bytes)."""
    return any(f.filename and is_archive(display_name(f.filename), _head(f)) for f in files)


def expand_files(files: list[FileStorage]) -> Iterator[PageFile | StoredArchive]:
    """Every uploaded file in order: an image as a `PageFile` with its bytes, an archive holding
    pages as a `StoredArchive`, and a file that cannot be used as a `PageFile` with its error.
    An archive without any page image gives nothing."""
    settings = services().settings
    for i, storage in enumerate(files):
        if not storage.filename:
            continue  # a file input left empty
        name = display_name(storage.filename, f"file-{i + 1}")
        if is_archive(name, _head(storage)):
            archive = store_archive(name, storage, settings)
            if archive is not None:
                yield archive
            continue
        data = storage.read()
        yield PageFile(name, data) if data else PageFile(name, error=f"{name}: file is empty")


def store_archive(name: str, storage: FileStorage, settings) -> StoredArchive | PageFile | None:  # noqa: ANN001
    """Check a ZIP/CBZ upload's directory and store it whole: a `StoredArchive` for the io worker,
    a `PageFile` with the reason when it is unreadable or over a limit, None when it holds no page."""
    with tempfile.TemporaryDirectory(prefix="panelpaint-upload-") as tmp:
        # A server-made file name; the client's name is only used in messages.
        path = Path(tmp) / (secure_filename(name) or "archive.zip")
        storage.save(path)
        try:
            listing = check_archive(path, max_entries=settings.max_archive_entries,
                                    max_bytes=settings.max_archive_bytes, label=name)
        except ArchiveError as exc:
            return PageFile(name, error=str(exc))
        if not listing.pages and not listing.errors:
            return None
        suffix = ".cbz" if name.lower().endswith(".cbz") else ".zip"
        return StoredArchive(name, services().storage.put_file(path, suffix),
                             len(listing.pages) + len(listing.errors))


def check_image(data: bytes, name: str):  # noqa: ANN201 - PIL.Image.Image
    """Decode an uploaded image fully (allow-list, pixel limit, truncation); raises `ImageError`."""
    return open_image(data, name=name, max_pixels=services().settings.max_image_pixels)


def store_style_image(storage: FileStorage | None):  # noqa: ANN201 - (str, PIL.Image.Image)
    """Validate an uploaded style reference and store it; returns (key, decoded image) or raises `ImageError`."""
    if storage is None or not storage.filename:
        raise ImageError("choose an image file for the style")
    img = check_image(storage.read(), display_name(storage.filename, "style"))
    # Re-encoded as PNG: what is served back to browsers is always a clean image the server wrote.
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return services().storage.put_bytes(buf.getvalue(), ".png"), img
