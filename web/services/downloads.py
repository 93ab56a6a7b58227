"""Downloads of finished work: a batch's coloured pages as ZIP or CBZ (built with panelpaint.archives)
and one page's files (PNG, layered PSD / OpenRaster, flats, lines) when the worker produced them."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from werkzeug.utils import secure_filename

from panelpaint.archives import write_archive
from panelpaint.formats import ARCHIVES, PAGE_FILES
from panelpaint.store.errors import InvalidInput, NotFound
from panelpaint.store.reviews import rejected_panels
from panelpaint.store.schema import Batch, Page, ReviewStatus, RunStatus

from . import release_db, services
from .batches import current_render, result_key
from .errors import NothingToDownload


@dataclass
class Archive:
    """A batch's archive, ready to send: an open temporary file (its name is already gone)."""

    file: BinaryIO
    name: str
    media_type: str


@dataclass
class PageDownload:
    """One page's deliverable: the stored file and the name to save it under."""

    key: str
    name: str


def _stem(name: str, fallback: str) -> str:
    stem = secure_filename(Path(name).stem)
    return stem or fallback


def downloadable_pages(batch: Batch, approved_only: bool = True) -> list[tuple[Page, str]]:
    """(page, composite key) for each finished page, in reading order; only approved ones by default."""
    out = []
    for page in batch.pages:
        if page.status != RunStatus.succeeded:
            continue
        # A page approved before one of its panels was rejected (the job store now refuses that
        # order) is not approved work: it never goes into the approved downloads.
        if approved_only and (page.review_status != ReviewStatus.approved or rejected_panels(page)):
            continue
        key = result_key(current_render(page))
        if key:
            out.append((page, key))
    return out


def batch_archive(batch: Batch, fmt: str, approved_only: bool = True) -> Archive:
    """The ZIP/CBZ of the batch's pages, named by position (001-name.png) so readers sort them in
    reading order. `InvalidInput` for another format, `NothingToDownload` when no page qualifies."""
    if fmt not in ARCHIVES:
        raise InvalidInput(f"format must be {' or '.join(ARCHIVES)}")
    pages = downloadable_pages(batch, approved_only)
    if not pages:
        raise NothingToDownload("No pages to download: none is finished and approved "
                                "(use scope=all for every finished page).")
    storage = services().storage
    entries = []
    for page, key in pages:
        suffix = "." + key.rsplit(".", 1)[1] if "." in key else ".png"
        name = f"{page.position + 1:03d}-{_stem(page.source_name, 'page')}{suffix}"
        path = storage.local_path(key)
        entries.append((name, path if path is not None else storage.read_bytes(key)))
    release_db()  # the rows are read; zipping may take a while
    fd, tmp = tempfile.mkstemp(suffix=f".{fmt}")
    os.close(fd)
    try:
        write_archive(tmp, entries)
        handle = open(tmp, "rb")
    finally:
        # The open handle keeps the data readable while the response streams it; the name goes now.
        os.unlink(tmp)
    return Archive(handle, f"{_stem(batch.name, f'batch-{batch.id}')}.{fmt}", ARCHIVES[fmt])


def page_file(page: Page, fmt: str) -> PageDownload:
    """One page's deliverable (`png`, `psd`, `ora`, ...); `NotFound` when it has none of that kind."""
    kind = PAGE_FILES.get(fmt)
    render = current_render(page)
    key = (render.outputs or {}).get(kind) if kind and render is not None and render.status == RunStatus.succeeded \
        else None
    if key is None:
        raise NotFound(f"page {page.id} has no {fmt} file")
    return PageDownload(key, f"{page.position + 1:03d}-{_stem(page.source_name, 'page')}.{fmt}")


def available_page_files(page: Page) -> list[str]:
    render = current_render(page)
    if render is None or render.status != RunStatus.succeeded:
        return []
    outputs = render.outputs or {}
    return [fmt for fmt, kind in PAGE_FILES.items() if outputs.get(kind)]
