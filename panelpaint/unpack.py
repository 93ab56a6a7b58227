"""Turning uploaded files into pages: each image checked and stored under a key the server makes,
and ZIP/CBZ archives unpacked in order on an io worker (`unpack_upload`, torch-free, resumable;
a bad entry becomes a failed page while the rest go on)."""
from __future__ import annotations

import enum
import io
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from panelpaint.archives import ArchiveEntry, ArchiveError, EntryError, EntryTooLarge, iter_entries
from panelpaint.images import (
    ALLOWED_FORMATS, PIXELS_SETTING, ImageError, Source, check_image, page_file_bytes_limit,
)
from panelpaint.limits import NAME_MAX, PAGE_SIDE_MIN
from panelpaint.store import batches, uploads
from panelpaint.store.db import Store
from panelpaint.store.errors import NotFound
from panelpaint.store.schema import Page, Render, RunStatus, Upload
from panelpaint.store.storage import Readable, Storage

SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "TIFF": ".tif", "WEBP": ".webp"}


class Unpacked(enum.StrEnum):
    """Where `unpack_upload` left an upload (a `str` Enum: task results stay JSON)."""

    SUCCEEDED = "succeeded"  # every page added
    MORE = "more"  # the deadline passed: go on in a new task
    WAITING = "waiting"  # an earlier upload of the batch is still being unpacked: try again shortly
    TAKEN = "taken"  # another delivery of the task is ahead of this one
    DONE = "done"  # nothing to do: finished or cancelled


def display_name(filename: str | None, fallback: str = "upload") -> str:
    """A client's filename reduced to a label: last path part, printable, at most 200 characters."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable()).strip()
    return (name or fallback)[:NAME_MAX]


def image_suffix(source: bytes | Path) -> str:
    """The storage suffix for an uploaded image (bytes or a file), from its header alone (".bin"
    when it is none)."""
    try:
        fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
        with Image.open(fp, formats=list(ALLOWED_FORMATS)) as probe:
            return SUFFIX.get(probe.format or "", ".png")
    except Exception:  # noqa: BLE001 - not an image: whoever decodes it fully says why
        return ".bin"


def check_page(source: Source, name: str, max_pixels: int) -> tuple[int, int]:
    """`check_image`, and a page's own rule: each side at least PAGE_SIDE_MIN pixels."""
    width, height = check_image(source, name=name, max_pixels=max_pixels)
    if min(width, height) < PAGE_SIDE_MIN:
        raise ImageError(f"{name}: {width}x{height} pixels is too small for a page: each side needs at least "
                         f"{PAGE_SIDE_MIN} pixels")
    return width, height


def store_page_image(data: bytes, name: str, storage: Storage, max_pixels: int) -> tuple[str, int, int]:
    """Decode an uploaded page fully (allow-list, pixel limit, truncation) and store its original
    bytes (16-bit scans keep their exact pixels); returns (key, width, height) or raises `ImageError`."""
    width, height = check_page(data, name, max_pixels)
    return storage.put_bytes(data, image_suffix(data)), width, height


def store_page_stream(stream: Readable, name: str, storage: Storage, max_pixels: int) -> tuple[str, int, int]:
    """`store_page_image` for a stream (an archive entry): written to a staged file in chunks,
    checked there, and stored only when it is a page we accept. Memory: one chunk, then the
    decoded pixels of the page; never the file's bytes whole."""
    with storage.staging(stream) as staged:
        width, height = check_page(staged.path, name, max_pixels)
        return staged.commit(image_suffix(staged.path)), width, height


def _store_stored(key: str, name: str, storage: Storage, max_pixels: int, tmp: Path) -> tuple[str, int, int]:
    """Check an image the dashboard stored as it came (read from its file, not into memory), and
    keep its key when the suffix is already the right one."""
    path = storage.local_path(key) or storage.copy_to(key, tmp / "image")
    width, height = check_page(path, name, max_pixels)
    suffix = image_suffix(path)
    return (key if key[64:] == suffix else storage.put_file(path, suffix)), width, height


def too_large_entry(exc: EntryTooLarge, max_pixels: int) -> str:
    """Why an archive entry was refused for its size, in terms of the setting that decides it."""
    size = f"{exc.declared:,} bytes" if exc.declared is not None else f"more than {exc.limit:,} bytes"
    return (f"unpacks to {size}, more than the {exc.limit:,} a page of at most {max_pixels:,} pixels "
            f"may take ({PIXELS_SETTING})")


Item = tuple[str, str | ArchiveEntry | None, str | None, bool]


def _items(f: dict[str, Any], storage: Storage, settings, skip: int,  # noqa: ANN001 - Settings
           tmp: Path) -> Iterator[Item]:
    """(page name, stored key or archive entry or None, error or None, last of the file) for each
    page-to-be of one uploaded file, from item `skip` on. An entry is read before the next item."""
    if f.get("error"):
        yield f["name"], None, f["error"], True
        return
    if not f.get("archive"):
        yield f["name"], f["key"], None, True
        return
    path = storage.local_path(f["key"])
    if path is None:  # a bucket-backed storage: work on a local copy
        try:
            path = storage.copy_to(f["key"], tmp / "archive.zip")
        except NotFound:
            yield f["name"], None, f"{f['name']}: the stored upload is missing; upload it again", True
            return
    try:
        for entry in iter_entries(path, max_entries=settings.max_archive_entries,
                                  max_bytes=settings.max_archive_bytes,
                                  max_entry_bytes=page_file_bytes_limit(settings.max_image_pixels), skip=skip):
            label = f"{f['name']}/{display_name(entry.name)}"[:NAME_MAX]
            error = f"{f['name']}: {entry.name}: {entry.error}" if entry.error else None
            yield label, entry, error, False
    except ArchiveError as exc:
        # Over a limit half-way: the pages before stay, the archive itself is one failed page.
        yield f["name"], None, str(exc), True


def _store_item(f: dict[str, Any], name: str, source: str | ArchiveEntry, storage: Storage, max_pixels: int,
                tmp: Path) -> tuple[str, int, int]:
    """Store and measure one page-to-be; raises `ImageError` (or `EntryError`) with its message."""
    if isinstance(source, str):
        try:
            return _store_stored(source, name, storage, max_pixels, tmp)
        except NotFound:
            raise ImageError(f"{f['name']}: the stored upload is missing; upload it again") from None
    try:
        with source.open() as stream:
            return store_page_stream(stream, name, storage, max_pixels)
    except EntryTooLarge as exc:
        raise ImageError(f"{f['name']}: {source.name}: {too_large_entry(exc, max_pixels)}") from None
    except EntryError as exc:
        raise ImageError(f"{f['name']}: {source.name}: {exc}") from None


def unpack_upload(store: Store, storage: Storage, settings, upload_id: int,  # noqa: ANN001 - Settings
                  on_page: Callable[[Page, Render | None], None] | None = None, *,
                  deadline: float | None = None) -> Unpacked:
    """Add the pages of an upload, in order, from where it stands; `on_page(page, render)` runs after
    each page's commit (the worker enqueues panel detection and the render there).

    Returns where it stopped (`Unpacked`); `deadline` is a `time.monotonic()` value.
    """
    with store.session() as s:
        upload = s.get(Upload, upload_id)
        if upload is None or upload.status not in uploads.UNFINISHED:
            return Unpacked.DONE
        if uploads.earlier_unfinished(s, upload):
            return Unpacked.WAITING
        upload = uploads.start_upload(s, upload_id)
        if upload is None:
            return Unpacked.DONE
        files, first_file, first_entry = list(upload.files), upload.next_file, upload.next_entry
    for fi in range(first_file, len(files)):
        skip = first_entry if fi == first_file else 0
        with tempfile.TemporaryDirectory(prefix="panelpaint-unpack-") as tmp:
            outcome = _unpack_file(store, storage, settings, upload_id, fi, files[fi], skip, Path(tmp),
                                   on_page, deadline)
        if outcome is not None:
            return outcome
    with store.session() as s:
        uploads.finish_upload(s, upload_id)
    return Unpacked.SUCCEEDED


def _unpack_file(store: Store, storage: Storage, settings, upload_id: int, fi: int,  # noqa: ANN001 - Settings
                 f: dict[str, Any], skip: int, tmp: Path, on_page: Callable[[Page, Render | None], None] | None,
                 deadline: float | None) -> Unpacked | None:
    """Add the pages of file `fi` from entry `skip` on; an outcome of `unpack_upload` when it
    must stop there, None when the file is done."""
    for index, (name, source, error, last) in enumerate(_items(f, storage, settings, skip, tmp), start=skip):
        key = width = height = None
        if error is None:
            try:
                key, width, height = _store_item(f, name, source, storage, settings.max_image_pixels, tmp)
            except ImageError as exc:
                error = exc.message
            except ArchiveError as exc:  # over the archive's total while this entry inflated
                name, error, last = f["name"], str(exc), True
        with store.session() as s:
            added = uploads.add_page(s, upload_id, fi, index, name, key, width, height, error, last_of_file=last)
        if added is None:
            return _stopped(store, upload_id)
        if on_page is not None:
            on_page(*added)
        if last:
            return None
        if deadline is not None and time.monotonic() > deadline:
            return Unpacked.MORE
    with store.session() as s:
        uploads.file_done(s, upload_id, fi)
    return None


def enqueue_pages(settings, store: Store) -> Callable[[Page, Render | None], None]:  # noqa: ANN001 - Settings
    """The `on_page` of a worker: send a new page's panel detection, then its render, by task name,
    at its batch's rank (older batches first: `panelpaint.queue.PRIORITY_STEPS`)."""
    from panelpaint import queue

    def on_page(page: Page, render: Render | None) -> None:
        if render is None:
            return  # a failed page: nothing to do
        with store.reading() as s:
            rank = batches.queue_rank(s, page.batch_id)
        queue.enqueue_ingest(settings, page.id, rank)
        queue.enqueue_render(settings, render.id, render.task_id, rank=rank)

    return on_page


def upload_rank(store: Store, upload_id: int) -> int:
    """The rank (`batches.queue_rank`) the rest of an upload's unpacking is sent at."""
    with store.reading() as s:
        upload = s.get(Upload, upload_id)
        return batches.queue_rank(s, upload.batch_id) if upload is not None else 0


def _stopped(store: Store, upload_id: int) -> Unpacked:
    """Why `add_page` added nothing: the batch or upload was cancelled, or another delivery is ahead."""
    with store.session() as s:
        upload = s.get(Upload, upload_id)
        if upload.status in uploads.UNFINISHED and upload.batch.cancelled:
            uploads.finish_upload(s, upload_id, RunStatus.cancelled, "the batch was cancelled")
        return Unpacked.DONE if upload.status not in uploads.UNFINISHED else Unpacked.TAKEN

