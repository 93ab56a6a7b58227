"""Turning uploaded files into pages: each image checked (allow-list, pixel limit, full decode) and
stored under a key the server makes, and ZIP/CBZ archives unpacked, in order, on an io worker.

`unpack_upload` is the io worker's part (`worker.ingest` wraps it in a task) and is torch-free,
so the dashboard's tests run it as the worker would. It resumes a lost worker's upload at the
first entry that worker did not add, and a bad entry becomes a failed page with its message
while the rest go on.
"""
from __future__ import annotations

import enum
import io
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from panelpaint.archives import ArchiveError, iter_archive
from panelpaint.images import ALLOWED_FORMATS, ImageError, open_image
from panelpaint.store import uploads
from panelpaint.store.db import Store
from panelpaint.store.errors import NotFound
from panelpaint.store.schema import Page, Render, RunStatus, Upload
from panelpaint.store.storage import Storage

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
    return (name or fallback)[:200]


def image_suffix(data: bytes) -> str:
    """The storage suffix for an uploaded image, from its header alone (".bin" when it is none)."""
    try:
        with Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS)) as probe:
            return SUFFIX.get(probe.format or "", ".png")
    except Exception:  # noqa: BLE001 - not an image: whoever decodes it fully says why
        return ".bin"


def store_page_image(data: bytes, name: str, storage: Storage, max_pixels: int) -> tuple[str, int, int]:
    """Decode an uploaded page fully (allow-list, pixel limit, truncation) and store its original
    bytes (16-bit scans keep their exact pixels); returns (key, width, height) or raises `ImageError`."""
    width, height = open_image(data, name=name, max_pixels=max_pixels).size
    return storage.put_bytes(data, image_suffix(data)), width, height


Item = tuple[str, bytes | None, str | None, bool]


def _items(f: dict[str, Any], storage: Storage, settings, skip: int) -> Iterator[Item]:  # noqa: ANN001 - Settings
    """(page name, bytes or None, error or None, last of the file) for each page-to-be of one
    uploaded file, from item `skip` on."""
    if f.get("error"):
        yield f["name"], None, f["error"], True
        return
    if not f.get("archive"):
        try:
            yield f["name"], storage.read_bytes(f["key"]), None, True
        except NotFound:
            yield f["name"], None, f"{f['name']}: the stored upload is missing; upload it again", True
        return
    with tempfile.TemporaryDirectory(prefix="panelpaint-unpack-") as tmp:
        path = storage.local_path(f["key"])
        if path is None:  # a bucket-backed storage: work on a local copy
            try:
                path = storage.copy_to(f["key"], Path(tmp) / "archive.zip")
            except NotFound:
                yield f["name"], None, f"{f['name']}: the stored upload is missing; upload it again", True
                return
        try:
            for entry in iter_archive(path, max_entries=settings.max_archive_entries,
                                      max_bytes=settings.max_archive_bytes, skip=skip):
                label = f"{f['name']}/{display_name(entry.name)}"[:200]
                error = f"{f['name']}: {entry.name}: {entry.error}" if entry.error else None
                yield label, entry.data, error, False
        except ArchiveError as exc:
            # Over a limit half-way: the pages before stay, the archive itself is one failed page.
            yield f["name"], None, str(exc), True


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
        for index, (name, data, error, last) in enumerate(_items(files[fi], storage, settings, skip), start=skip):
            key = width = height = None
            if error is None:
                try:
                    key, width, height = store_page_image(data, name, storage, settings.max_image_pixels)
                except ImageError as exc:
                    error = exc.message
            with store.session() as s:
                added = uploads.add_page(s, upload_id, fi, index, name, key, width, height, error, last_of_file=last)
            if added is None:
                return _stopped(store, upload_id)
            if on_page is not None:
                on_page(*added)
            if last:
                break
            if deadline is not None and time.monotonic() > deadline:
                return Unpacked.MORE
        else:
            with store.session() as s:
                uploads.file_done(s, upload_id, fi)
    with store.session() as s:
        uploads.finish_upload(s, upload_id)
    return Unpacked.SUCCEEDED


def enqueue_pages(settings) -> Callable[[Page, Render | None], None]:  # noqa: ANN001 - Settings
    """The `on_page` of a worker: send a new page's panel detection, then its render, by task name."""
    from panelpaint import queue

    def on_page(page: Page, render: Render | None) -> None:
        if render is None:
            return  # a failed page: nothing to do
        queue.enqueue_ingest(settings, page.id)
        queue.enqueue_render(settings, render.id, render.task_id)

    return on_page


def _stopped(store: Store, upload_id: int) -> Unpacked:
    """Why `add_page` added nothing: the batch or upload was cancelled, or another delivery is ahead."""
    with store.session() as s:
        upload = s.get(Upload, upload_id)
        if upload.status in uploads.UNFINISHED and upload.batch.cancelled:
            uploads.finish_upload(s, upload_id, RunStatus.cancelled, "the batch was cancelled")
        return Unpacked.DONE if upload.status not in uploads.UNFINISHED else Unpacked.TAKEN

