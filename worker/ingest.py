"""The io worker's work on new pages: unpack uploads into pages, skip pages that arrive already
coloured (unless the batch says to colour them anyway), detect each page's panels, and cut the
network's inputs ahead.

A render worker that finds a page's cut current (for its panels and work size) loads it instead
of decoding the page, so one process per GPU keeps up with many io cores. A render that got to a
page first keeps what it detected and cut the same way (`remember_cut`).
"""
from __future__ import annotations

import logging
import time

from celery.exceptions import SoftTimeLimitExceeded

import numpy as np
from PIL import Image

from panelpaint import pages, queue, unpack
from panelpaint.colour import COLOUR_ANYWAY_OPTION, COLOURED_SHARE, coloured_share
from panelpaint.images import to_gray
from panelpaint.panels import Panel, detect_panels
from panelpaint.settings import Settings
from panelpaint.store import renders, work
from panelpaint.thumbnails import store_thumbnails
from panelpaint.store.errors import InvalidInput, NotFound
from panelpaint.unpack import Unpacked
from worker.faults import TRANSIENT, BadInput, first_line
from worker.handoff import save_cut
from worker.inputs import open_stored, work_size
from worker.outcome import Outcome
from worker.resources import Resources

log = logging.getLogger(__name__)


def keep_detected(session, page_id: int, panels: list[Panel],  # noqa: ANN001 - a Session
                  check_below: float = 0.0) -> list[dict]:
    """Keep the panels a worker detected, for review and editing, unless the page has panels
    already; returns the page's panels as they are now ({order, bbox, polygon}). A new page whose
    layout is less sure than `check_below` is held for a panel check."""
    try:
        return work.keep_detected_panels(session, page_id, [p.to_dict() for p in panels], check_below=check_below)
    except InvalidInput as exc:  # e.g. the page's recorded size disagrees with its image
        log.warning("page %s: detected panels not kept: %s", page_id, exc)
        return []


def ingest(res: Resources, settings: Settings, page_id: int) -> dict | None:
    """Detect a new page's panels (unless it has some) and store them; then cut the network's
    inputs for them, so the render worker need not decode the page."""
    with res.store.session() as s:
        page = work.page(s, page_id)
    if page is None or page.source_key is None:
        return None
    size = work_size(page.options, settings)
    if page.current_cut(size) is not None and page.has_thumbnails:
        return {"page_id": page_id, "panels": Outcome.KEPT}
    try:
        image = open_stored(res, settings, page.source_key, page.name)
    except BadInput as exc:
        log.warning("page %s cannot be ingested: %s", page_id, exc)
        return {"page_id": page_id, "error": str(exc)}
    if not page.has_thumbnails:  # the web shows these and never decodes the page itself
        keys = store_thumbnails(res.storage, image)
        with res.store.session() as s:
            work.record_thumbnails(s, page_id, keys)
    if page.current_cut(size) is not None:  # a render got there first
        return {"page_id": page_id, "panels": Outcome.KEPT}
    if not page.options.get(COLOUR_ANYWAY_OPTION) and _skip_if_coloured(res, page_id, image):
        return {"page_id": page_id, "status": Outcome.SKIPPED}
    lines = to_gray(image)
    del image
    with res.store.session() as s:
        stored = work.page(s, page_id).panel_dicts()
    if not stored:
        found = detect_panels(lines, page.direction)
        with res.store.session() as s:
            stored = keep_detected(s, page_id, found, settings.panel_check_below)
    if not stored:  # the detected panels could not be kept: the render detects them itself
        return {"page_id": page_id, "panels": 0}
    with res.store.session() as s:  # as stored, with their confidence (panels.json carries it)
        now = work.page(s, page_id)
    panels, stored = [p.panel for p in now.panels], now.panel_dicts()
    boxes, sketches = pages.cut_panels(lines, panels, size)
    key = save_cut(res.storage, pages.PreparedPage(lines.shape[::-1], panels, boxes, sketches, [], [], page.direction))
    with res.store.session() as s:
        # Recorded only while these are still the page's panels (an edit meanwhile wins).
        work.record_cut(s, page_id, key, size, stored)
    return {"page_id": page_id, "panels": len(panels)}


def _skip_if_coloured(res: Resources, page_id: int, image: Image.Image) -> bool:
    """Mark a page that arrived in colour "already coloured: skipped" while no worker has claimed
    it; True when it was (a page a render worker got to first is coloured after all)."""
    share = coloured_share(np.asarray(image.convert("RGB")))
    if share < COLOURED_SHARE:
        return False
    with res.store.session() as s:
        skipped = renders.skip_coloured(s, page_id, share)
    if skipped is not None:
        log.info("page %s arrived in colour (%.0f %% of it): skipped", page_id, share * 100)
    return skipped is not None


def remember_cut(res: Resources, settings: Settings, page_id: int, prepared: pages.PreparedPage, size: int) -> bool:
    """Keep the panels a render detected and the inputs it cut, so that the page's ingest (when the
    render got there first) and later renders of the page need not do the work again. True when
    the page is now held for its panel check (detection was unsure): the render must not go on."""
    try:
        key = save_cut(res.storage, prepared)
        with res.store.session() as s:
            stored = keep_detected(s, page_id, prepared.panels, settings.panel_check_below)
            if stored:  # (the detected panels could not be kept: nothing to remember)
                work.record_cut(s, page_id, key, size, stored)
            return work.held(s, page_id)
    except TRANSIENT as exc:
        log.warning("page %s: could not keep the page's cut panels: %s", page_id, first_line(exc))
    except Exception:  # noqa: BLE001 - only a shortcut for later: the render goes on without it
        log.warning("page %s: could not keep the page's cut panels", page_id, exc_info=True)
    return False


def unpack_upload(res: Resources, settings: Settings, upload_id: int, task_id: str | None) -> dict | None:
    """Turn an upload's archives (and the images sent with them) into pages, in order, sending each
    page's ingest and render as it is added. Works for half the soft time limit at most, then
    sends itself again to go on from where it stopped (so other io work interleaves, and no
    chapter meets the time limit); waits its turn behind an earlier upload of the same batch."""
    deadline = time.monotonic() + settings.task_soft_time_limit / 2
    try:
        outcome = unpack.unpack_upload(res.store, res.storage, settings, upload_id, unpack.enqueue_pages(settings, res.store),
                                       deadline=deadline)
        if outcome in (Unpacked.MORE, Unpacked.WAITING):
            queue.enqueue_unpack(settings, upload_id, task_id, countdown=0 if outcome is Unpacked.MORE else 2,
                                 rank=unpack.upload_rank(res.store, upload_id))
    except NotFound:
        log.warning("upload %s does not exist; dropping its task", upload_id)
        return None
    except SoftTimeLimitExceeded:  # progress is recorded page by page: go on in a new task
        queue.enqueue_unpack(settings, upload_id, task_id)
        outcome = Unpacked.MORE
    return {"upload_id": upload_id, "status": outcome}
