"""Downloads of finished work: a batch's coloured pages as ZIP or CBZ (built with panelpaint.archives,
the CBZ with its ComicInfo.xml), every page's layered file (PSD or ORA) in one ZIP, and one page's files (PNG, layered PSD /
OpenRaster, flats, lines) when the worker produced them."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from werkzeug.utils import secure_filename

from panelpaint.archives import write_archive
from panelpaint.comicinfo import COMICINFO_NAME, ComicInfo, ComicPage
from panelpaint.formats import ARCHIVES, LAYERED, PAGE_FILES, layered_files
from panelpaint.store.errors import InvalidInput, NotFound
from panelpaint.store.reviews import rejected_panels
from panelpaint.store.schema import Batch, Page, ReviewStatus, RunStatus

from . import release_db, services
from .batches import current_render, result_key
from .errors import NothingToDownload
from .fields import NUMBER_OPTION, SERIES_OPTION


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
    """(page, composite key) for each finished page, in reading order; only approved ones by default.
    A page that arrived already coloured (skipped) goes in as it arrived: it is part of the chapter
    and there was nothing to review."""
    out = []
    for page in batch.pages:
        if page.status == RunStatus.skipped and page.source_key:
            out.append((page, page.source_key))
            continue
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
    reading order; a CBZ also carries the book's `ComicInfo.xml`. `InvalidInput` for another
    format, `NothingToDownload` when no page qualifies."""
    if fmt not in ARCHIVES:
        raise InvalidInput(f"format must be {' or '.join(ARCHIVES)}")
    pages = downloadable_pages(batch, approved_only)
    if not pages:
        raise NothingToDownload("No pages to download: none is finished and approved "
                                "(use scope=all for every finished page).")
    entries: list[tuple[str, Path | bytes]] = []
    book = comic_info(batch)
    for page, key in pages:
        suffix = "." + key.rsplit(".", 1)[1] if "." in key else ".png"
        content = _stored(key)
        entries.append((_page_name(page, suffix), content))
        book.pages.append(ComicPage(content.stat().st_size if isinstance(content, Path) else len(content),
                                    page.width, page.height))
    if fmt == "cbz":
        entries.append((COMICINFO_NAME, book.to_xml()))
    return _pack(entries, f"{_stem(batch.name, f'batch-{batch.id}')}.{fmt}", ARCHIVES[fmt])


def layered_archive(batch: Batch, kind: str, approved_only: bool = True) -> Archive:
    """A ZIP of every qualifying page's layered file (`psd` or `ora`), named by position.
    `NotFound` for another kind; `NothingToDownload` when the batch did not ask for that kind
    (its "Layered files") or no page qualifies."""
    if kind not in LAYERED:
        raise NotFound(f"no layered file kind {kind!r}: choose {' or '.join(LAYERED)}")
    if kind not in layered_files((batch.options or {}).get("formats")):
        raise NothingToDownload(f"This batch's pages have no {kind.upper()} files: tick "
                                f"Layered files → {kind.upper()} when you start a batch.")
    entries = []
    for page, _ in downloadable_pages(batch, approved_only):
        key = (current_render(page).outputs or {}).get(kind)
        if key:
            entries.append((_page_name(page, f".{kind}"), _stored(key)))
    if not entries:
        raise NothingToDownload(f"No {kind.upper()} files to download: no page is finished and approved "
                                "(use scope=all for every finished page).")
    return _pack(entries, f"{_stem(batch.name, f'batch-{batch.id}')}-{kind}.zip", ARCHIVES["zip"])


def comic_info(batch: Batch) -> ComicInfo:
    """The book's metadata from the batch (its series and number options, its name as the title)."""
    options = batch.options or {}
    return ComicInfo(series=options.get(SERIES_OPTION) or batch.name, title=batch.name,
                     number=options.get(NUMBER_OPTION), direction=batch.direction,
                     notes="Coloured with panelpaint.")


def _page_name(page: Page, suffix: str) -> str:
    return f"{page.position + 1:03d}-{_stem(page.source_name, 'page')}{suffix}"


def _stored(key: str) -> Path | bytes:
    storage = services().storage
    path = storage.local_path(key)
    return path if path is not None else storage.read_bytes(key)


def _pack(entries: list[tuple[str, Path | bytes]], name: str, media_type: str) -> Archive:
    release_db()  # the rows are read; zipping may take a while
    fd, tmp = tempfile.mkstemp(suffix=Path(name).suffix)
    os.close(fd)
    try:
        write_archive(tmp, entries)
        handle = open(tmp, "rb")
    finally:
        # The open handle keeps the data readable while the response streams it; the name goes now.
        os.unlink(tmp)
    return Archive(handle, name, media_type)


def page_file(page: Page, fmt: str) -> PageDownload:
    """One page's deliverable (`png`, `psd`, `ora`, ...); `NotFound` when it has none of that kind."""
    kind = PAGE_FILES.get(fmt)
    render = current_render(page)
    key = (render.outputs or {}).get(kind) if kind and render is not None and render.status == RunStatus.succeeded \
        else None
    if key is None:
        raise NotFound(f"page {page.id} has no {fmt} file")
    return PageDownload(key, _page_name(page, f".{fmt}"))


def available_page_files(page: Page) -> list[str]:
    render = current_render(page)
    if render is None or render.status != RunStatus.succeeded:
        return []
    outputs = render.outputs or {}
    return [fmt for fmt, kind in PAGE_FILES.items() if outputs.get(kind)]
