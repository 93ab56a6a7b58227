"""Reading uploads: images checked with panelpaint.images, archives unpacked with panelpaint.archives.

Nothing here trusts a client's filename: it is kept only as a label, storage keys are made by the
server from the content. A bad file never spoils the rest of an upload: it comes back as an
`Upload` with an error message, to become a failed page.
"""
from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from werkzeug.datastructures import FileStorage
from werkzeug.utils import secure_filename

from panelpaint.archives import ARCHIVE_SUFFIXES
from panelpaint.images import ImageError, open_image

from .services import services

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


@dataclass
class Upload:
    """One page-to-be: its display name and either its bytes or the reason it cannot be used."""

    name: str
    data: bytes | None = None
    error: str | None = None


def display_name(filename: str | None, fallback: str = "upload") -> str:
    """The client's filename reduced to a label: last path part, printable, at most 200 characters."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable()).strip()
    return (name or fallback)[:200]


def is_archive(name: str, data: bytes) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES) or data[:4] in ZIP_MAGIC


def expand_files(files: list[FileStorage]) -> Iterator[Upload]:
    """Every uploaded file as pages, one at a time: images as they are, ZIP/CBZ archives as their
    images in reading order (streamed from a temporary file, so a big archive is never all in memory)."""
    settings = services().settings
    for i, storage in enumerate(files):
        if not storage.filename:
            continue  # a file input left empty
        name = display_name(storage.filename, f"file-{i + 1}")
        head = storage.stream.read(4)
        storage.stream.seek(0)
        if is_archive(name, head):
            yield from archive_pages(name, storage, settings)
            continue
        data = storage.read()
        yield Upload(name, data) if data else Upload(name, error=f"{name}: file is empty")


def archive_pages(name: str, storage: FileStorage, settings) -> Iterator[Upload]:  # noqa: ANN001 - Settings
    """The pages of a ZIP/CBZ upload; an unreadable archive is one failed upload, a bad entry one failed page.

    When the archive turns out to be over a limit half-way, the pages before stay and the archive
    itself is reported as one failed upload with the reason.
    """
    from panelpaint.archives import ArchiveError, iter_archive

    with tempfile.TemporaryDirectory(prefix="panelpaint-upload-") as tmp:
        # A server-made file name; the client's name is only used in messages.
        path = Path(tmp) / (secure_filename(name) or "archive.zip")
        storage.save(path)
        try:
            for entry in iter_archive(path, max_entries=settings.max_archive_entries,
                                      max_bytes=settings.max_archive_bytes):
                yield Upload(f"{name}/{display_name(entry.name)}"[:200], entry.data,
                             f"{name}: {entry.name}: {entry.error}" if entry.error else None)
        except ArchiveError as exc:
            yield Upload(name, error=str(exc))


def check_image(data: bytes, name: str):
    """Decode an uploaded image fully (allow-list, pixel limit, truncation); raises `ImageError`."""
    return open_image(data, name=name, max_pixels=services().settings.max_image_pixels)


def store_style_image(storage: FileStorage | None) -> tuple[str, int, int]:
    """Validate an uploaded style reference and store it; returns (key, width, height) or raises `ImageError`."""
    if storage is None or not storage.filename:
        raise ImageError("choose an image file for the style")
    img = check_image(storage.read(), display_name(storage.filename, "style"))
    # Re-encoded as PNG: what is served back to browsers is always a clean image the server wrote.
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return services().storage.put_bytes(buf.getvalue(), ".png"), img.width, img.height
