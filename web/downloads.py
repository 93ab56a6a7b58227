"""Downloads of finished work: a batch's coloured pages as ZIP or CBZ (built with panelpaint.archives)
and one page's layered PSD / OpenRaster when the worker produced them."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from werkzeug.utils import secure_filename

from panelpaint.archives import write_archive
from panelpaint.formats import ARCHIVES, PAGE_FILES
from panelpaint.store.schema import Batch, Page, ReviewStatus, RunStatus

from . import jobs
from .services import release_db, services

ARCHIVE_FORMATS = ARCHIVES


def _stem(name: str, fallback: str) -> str:
    stem = secure_filename(Path(name).stem)
    return stem or fallback


def archive_name(batch: Batch, fmt: str) -> str:
    return f"{_stem(batch.name, f'batch-{batch.id}')}.{fmt}"


def page_file_name(page: Page, fmt: str) -> str:
    return f"{page.position + 1:03d}-{_stem(page.source_name, 'page')}.{fmt}"


def downloadable_pages(batch: Batch, approved_only: bool = True) -> list[tuple[Page, str]]:
    """(page, composite key) for each finished page, in reading order; only approved ones by default."""
    out = []
    for page in batch.pages:
        if page.status != RunStatus.succeeded:
            continue
        if approved_only and page.review_status != ReviewStatus.approved:
            continue
        key = jobs.result_key(jobs.current_render(page))
        if key:
            out.append((page, key))
    return out


def batch_archive(batch: Batch, fmt: str, approved_only: bool = True):
    """An open temporary file holding the ZIP/CBZ of the batch's pages, or None when there are none.

    Page images are named by position (001-name.png) so readers sort them in reading order.
    """
    pages = downloadable_pages(batch, approved_only)
    if not pages:
        return None
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
    return handle


def page_file(page: Page, fmt: str) -> str | None:
    """The storage key of one page's deliverable (`png`, `psd`, `ora`, ...), or None."""
    kind = PAGE_FILES.get(fmt)
    render = jobs.current_render(page)
    if kind is None or render is None or render.status != RunStatus.succeeded:
        return None
    return (render.outputs or {}).get(kind)


def available_page_files(page: Page) -> list[str]:
    render = jobs.current_render(page)
    if render is None or render.status != RunStatus.succeeded:
        return []
    outputs = render.outputs or {}
    return [fmt for fmt, kind in PAGE_FILES.items() if outputs.get(kind)]
