"""Reading uploads: images checked with panelpaint.images, archives checked and stored for an io worker.

Nothing here trusts a client's filename: it is kept only as a label, storage keys are made by the
server from the content. A bad file never spoils the rest of an upload: it comes back as an
`Upload` with an error message, to become a failed page. A ZIP/CBZ archive is only checked here
(its directory against the limits, nothing inflated) and stored whole: an io worker unpacks it
into pages (`panelpaint.unpack`), so a long chapter never holds up the request.
"""
from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from werkzeug.datastructures import FileStorage
from werkzeug.utils import secure_filename

from panelpaint.archives import ARCHIVE_SUFFIXES, ArchiveError, check_archive
from panelpaint.images import ImageError, open_image
from panelpaint.unpack import display_name

from .services import services

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


@dataclass
class Upload:
    """One page-to-be: its display name and either its bytes or the reason it cannot be used."""

    name: str
    data: bytes | None = None
    error: str | None = None


@dataclass
class Archive:
    """A checked ZIP/CBZ archive, stored whole for an io worker to unpack; `pages` it lists."""

    name: str
    key: str
    pages: int


def is_archive(name: str, data: bytes) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES) or data[:4] in ZIP_MAGIC


def has_archive(files: list[FileStorage]) -> bool:
    """True when any uploaded file is a ZIP/CBZ archive (by name or by its first bytes)."""
    for storage in files:
        if not storage.filename:
            continue
        head = storage.stream.read(4)
        storage.stream.seek(0)
        if is_archive(display_name(storage.filename), head):
            return True
    return False


def expand_files(files: list[FileStorage]) -> Iterator[Upload | Archive]:
    """Every uploaded file in order: an image as an `Upload` with its bytes, an archive holding
    pages as an `Archive` (stored), and a file that cannot be used as an `Upload` with its error.
    An archive without any page image gives nothing."""
    settings = services().settings
    for i, storage in enumerate(files):
        if not storage.filename:
            continue  # a file input left empty
        name = display_name(storage.filename, f"file-{i + 1}")
        head = storage.stream.read(4)
        storage.stream.seek(0)
        if is_archive(name, head):
            archive = store_archive(name, storage, settings)
            if archive is not None:
                yield archive
            continue
        data = storage.read()
        yield Upload(name, data) if data else Upload(name, error=f"{name}: file is empty")


def store_archive(name: str, storage: FileStorage, settings) -> Archive | Upload | None:  # noqa: ANN001 - Settings
    """Check a ZIP/CBZ upload's directory and store it whole: an `Archive` for the io worker, an
    `Upload` with the reason when it is unreadable or over a limit, None when it holds no page."""
    with tempfile.TemporaryDirectory(prefix="panelpaint-upload-") as tmp:
        # A server-made file name; the client's name is only used in messages.
        path = Path(tmp) / (secure_filename(name) or "archive.zip")
        storage.save(path)
        try:
            listing = check_archive(path, max_entries=settings.max_archive_entries,
                                    max_bytes=settings.max_archive_bytes, label=name)
        except ArchiveError as exc:
            return Upload(name, error=str(exc))
        if not listing.pages and not listing.errors:
            return None
        suffix = ".cbz" if name.lower().endswith(".cbz") else ".zip"
        return Archive(name, services().storage.put_file(path, suffix), len(listing.pages) + len(listing.errors))


def check_image(data: bytes, name: str):
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
