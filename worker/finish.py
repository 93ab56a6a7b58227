"""The finishing step (queue `io`): flats at native resolution, the merge of a panel re-render into
the page's result, encoding, and the render's completion, fenced by its attempt (progress after
every panel renews the lease; a cancelled batch stops at the next panel). Its start moves the render
from waiting to finishing; a database outage is waited out rather than started again."""
from __future__ import annotations

import io
import logging
import time
from pathlib import Path

import numpy as np
from PIL import Image
from sqlalchemy.orm import Session

from panelpaint import pages, queue
from panelpaint.formats import ALL as ALL_FORMATS
from panelpaint.images import to_gray
from panelpaint.reference_match import Reference
from panelpaint.settings import Settings
from panelpaint.store import batches, renders, work
from panelpaint.store.errors import NotFound
from panelpaint.thumbnails import store_thumbnails
from worker import faults, signals
from worker.faults import FINISHING, BadInput, patiently
from worker.handoff import Handoff, PanelMerge, load_handoff
from worker.ingest import keep_detected
from worker.inputs import open_stored
from worker.outcome import Outcome
from worker.resources import Resources

log = logging.getLogger(__name__)


def finish(res: Resources, settings: Settings, render_id: int, attempt: int, handoff_key: str) -> dict:
    """Finish a coloured page, encode its deliverables, store them, and complete the render.

    Returns the outcome: `stale` when the attempt is no longer the render's running one (fenced
    out, cancelled or already completed by an earlier delivery) and nothing was written. A
    transient fault that outlasts the patience is raised: the task is retried for the same attempt.
    """
    t_start = time.perf_counter()
    patience = settings.task_soft_time_limit

    def start(s: Session) -> tuple[work.RunningAttempt | None, work.PageData | None]:
        running = work.start_finishing(s, render_id, attempt)
        return running, work.page(s, running.page_id) if running is not None else None

    running, page = patiently(res, patience, start)
    if running is None or page is None:
        return {"render_id": render_id, "status": Outcome.STALE}
    stem = Path(page.name).stem or f"page-{page.position + 1}"
    with faults.recording(res, settings, render_id, attempt, FINISHING) as done:
        try:
            handoff, colours, references = load_handoff(res.storage, handoff_key)
        except NotFound:
            # The colours are gone (storage wiped?): colour the page again as a new attempt.
            done.outcome = faults.fail_attempt(res, settings, render_id, attempt,
                                               "the coloured panels handed to finishing are missing", retryable=True,
                                               patience=patience)
        else:
            _finish(res, settings, handoff, colours, references, page, attempt, t_start)
            res.storage.delete(handoff_key)  # only after the commit: a crash before leaves it for a rerun
            done.outcome = Outcome.SUCCEEDED
            log.info("render %s (%s) complete", render_id, stem)
    if done.outcome is Outcome.REQUEUED:
        queue.enqueue_render(settings, render_id, running.task_id)
    return {"render_id": render_id, "status": done.outcome}


def _finish(res: Resources, settings: Settings, handoff: Handoff, colours: list[np.ndarray],
            references: list[Reference | None], page: work.PageData, attempt: int, t_start: float) -> None:
    # `attempt` is the task's: after a stalled finishing was taken over it is newer than the one
    # that coloured the page (the hand-off's).
    render_id, g = handoff.render_id, handoff.geometry
    patience = settings.task_soft_time_limit
    timings = dict(handoff.timings)
    image = open_stored(res, settings, handoff.source_key, handoff.name)
    # A page coloured before its ingest ran (a chapter's pages go straight to the render workers)
    # gets its line-art thumbnails here, from the image already decoded: its ingest then has
    # nothing left to decode.
    line_thumbnails = {} if page.has_thumbnails else store_thumbnails(res.storage, image)
    lines = to_gray(image)
    del image
    timings["finish_load"] = time.perf_counter() - t_start

    def should_stop() -> bool:
        return patiently(res, patience, batches.is_cancelled, render_id)

    def on_panel(done: int, total: int) -> None:
        signals.panel_finished.send(sender=render_id, name=handoff.name, done=done, total=total)
        patiently(res, patience, renders.set_progress, render_id, attempt, done, total)

    result = pages.finish_page(lines, g.panels, g.boxes, colours, finishes=g.finishes, references=references,
                               options=pages.FinishOptions(seed=handoff.seed), direction=g.direction,
                               model_version=handoff.model_version, timings=timings, should_stop=should_stop,
                               on_panel=on_panel)
    merge = merge_into_result(res, page, result, handoff.merge) if handoff.merge is not None else None
    t = time.perf_counter()
    # Encoded in memory and stored once (no temporary files to write and read back for hashing).
    formats = page.options.get("formats") or ALL_FORMATS
    outputs = {kind: res.storage.put_bytes(data, Path(name).suffix)
               for kind, (name, data) in pages.encode_outputs(result, set(formats), stem="page").items()}
    outputs.update(store_thumbnails(res.storage, result.composite))  # what the web shows; it never decodes a page
    result.timings["encode"] = time.perf_counter() - t

    def complete(s: Session) -> None:
        renders.complete_render(s, render_id, attempt, outputs, result.timings, result.model_version,
                                degraded=handoff.degraded, based_on=merge.based_on if merge is not None else None)
        keep_detected(s, page.id, result.panels)
        if line_thumbnails:
            work.record_thumbnails(s, page.id, line_thumbnails, only_if_missing=True)

    # (When the ingest recorded its own meanwhile, they are the same files: storage is content-addressed.)
    patiently(res, patience, complete)


def _base_layer(res: Resources, key: str | None, size: tuple[int, int], mode: str) -> np.ndarray | None:
    """A stored layer of a finished result (flats "RGB", shading "L") as an array, or None if unusable."""
    if not key:
        return None
    try:
        with Image.open(io.BytesIO(res.storage.read_bytes(key))) as img:
            layer = np.asarray(img.convert(mode))
    except (NotFound, OSError) as exc:
        log.warning("layer %s… of the page's result cannot be read: %s", key[:12], exc)
        return None
    return layer if layer.shape[1::-1] == tuple(size) else None


def merge_into_result(res: Resources, page: work.PageData, result: pages.PageResult, merge: PanelMerge) -> PanelMerge:
    """Put a re-rendered panel (`result` holds only that panel) into the page's result as it is
    now: the page's current finished result, which may be newer than the one the render saw
    (another panel's re-render finished meanwhile), else that one; so neither change is lost.
    Returns the merge onto the render it went into; raises `BadInput` if none is readable."""
    with res.store.session() as s:
        current = work.page(s, page.id).current_render_id
        candidates = [found for rid in dict.fromkeys([current, merge.based_on])
                      if (found := work.finished_result(s, rid)) is not None]
    for base in candidates:
        flats_base = _base_layer(res, base.flats_key, result.size, "RGB")
        if flats_base is None:
            continue
        flats = pages.merge_panel(flats_base, np.asarray(result.flats), merge.panel)
        shading = None
        if result.shading is not None:
            # A base without a shading layer (older results) is unshaded: white, multiply's identity.
            base_shading = _base_layer(res, base.shading_key, result.size, "L")
            if base_shading is None:
                base_shading = np.full(flats.shape[:2], 255, np.uint8)
            shading = pages.merge_panel(base_shading, np.asarray(result.shading), merge.panel)
            result.shading = Image.fromarray(shading, "L")
        result.flats = Image.fromarray(flats, "RGB")
        shown = shading if result.shading_shown else None
        result.composite = Image.fromarray(pages.compose(flats, shown, np.asarray(result.lines)), "RGB")
        result.panels = list(merge.page_panels)
        if base.render_id != merge.based_on:
            log.info("panel re-render of page %s merged onto render %s instead of %s", page.id, base.render_id,
                     merge.based_on)
        return merge.onto(base.render_id)
    raise BadInput("panel re-render: the page's finished result it goes into can no longer be read")
