"""The Celery tasks, addressed by the names in `panelpaint.queue`: colour pages, finish them, ingest a page.

A page passes through two tasks, so that the render worker (one per GPU) does only what feeds the
model and the io workers do the pixel work on the other cores, in parallel with the GPU:

* `panelpaint.render_page(render_id)` (queue `render`) claims the render in the job store, which
  counts the attempt and refuses finished, cancelled or exhausted renders (ack and return). With
  `render_batch_pages` above 1 (a GPU) it also claims the queued pages that follow in the same
  batch with the same style (`renders.claim_following`). It loads each page's panel inputs at
  work size as the io worker cut them ahead (or decodes the page and cuts them itself), colours
  the panels of all the pages in ONE `colorize_batch` call (grouped by size into forward
  passes), then stores each page's panel colours, uncompressed at work size, as a hand-off file
  and queues the page's finishing. It stops before the model when
  the batch is cancelled, and waits before its next page while the io queue is backed up
  (`io_backlog`), so coloured pages never wait long for their finishing.
* `panelpaint.finish_page(render_id, attempt, key)` (queue `io`) decodes the page again, brings
  each panel's colours to native resolution against the line art, composites, reporting progress
  after every panel (which renews the lease and raises `StaleAttempt` if a newer attempt took
  over) and stopping at the next panel when the batch is cancelled; then it encodes the
  deliverables (PNG, PSD, ORA, JSON, previews), stores them and completes the render fenced by
  attempt: a late or duplicate run of an old attempt is refused by the store, and a repeat of the
  same attempt is a no-op.
* A panel re-render (`claim.panel_id`) colours only that panel with the render's style, seed and
  hints; finishing merges it into the flats of the page's finished result as it is then
  (outside the panel's polygon every pixel stays identical), and the completed render becomes the
  page's result. Without a finished result to merge into, the whole page is coloured with that
  panel's overrides and the render's `degraded` says so.
* `panelpaint.unpack_upload(upload_id)` (queue `io`) turns an upload's ZIP/CBZ archives (and the
  images sent with them) into pages, in order, off the web request (`panelpaint.unpack`),
  sending each page's ingest and render as soon as the page is added.
* `panelpaint.ingest_page(page_id)` (queue `io`, sent with every new page before its render)
  detects the page's panels so they can be edited before rendering, and cuts the network's
  inputs for them ahead of the render (`page.prepared`): a render worker that finds them current
  loads them instead of decoding the page, so one process per GPU keeps up with many io cores.

Delivery is at least once (acks_late, reject_on_worker_lost), so every task is idempotent. Bad
input (undecodable page or style) fails that page's render with its message, without retry, and
never the other pages coloured with it. Transient faults (database or Redis unreachable) are
retried with exponential backoff. A page that kills its worker process is redelivered and counted
by the claim until `max_attempts`; a render that has been tried before is coloured alone, so a
poison page costs the pages batched with it at most one attempt.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from celery.exceptions import Reject, Retry, SoftTimeLimitExceeded
from PIL import Image

from panelpaint import pages, queue, unpack
from panelpaint.images import ImageError, open_image, to_gray
from panelpaint.palette import Palette
from panelpaint.panels import Panel as PagePanel
from panelpaint.panels import detect_panels
from panelpaint.settings import Settings, get_settings
from panelpaint.store import batches, renders
from panelpaint.store.db import Store
from panelpaint.store.errors import IllegalTransition, InvalidInput, LeaseHeld, NotFound, StaleAttempt
from panelpaint.store.schema import Page, Panel, Render, RunStatus, StyleReference
from panelpaint.store.storage import storage_from_settings
from worker.celery_app import app
from worker.runtime import runtime

log = logging.getLogger(__name__)

DEFAULT_FORMATS = ("png", "psd", "ora", "json", "preview")
RETRY_BACKOFF_MAX = 60
MAX_UNRECORDED_RETRIES = 30  # about half an hour of backoff for faults outside the job store's record
GPU_BATCH_PAGES = 8  # render_batch_pages = 0 on a CUDA device
IO_WAIT_MAX = 60.0  # seconds a render task waits for a backed-up io queue before it returns anyway


def _transient_errors() -> tuple[type[BaseException], ...]:
    import redis
    import sqlalchemy.exc
    from kombu.exceptions import OperationalError as KombuOperationalError

    return (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, redis.ConnectionError,
            redis.TimeoutError, KombuOperationalError, ConnectionError)


TRANSIENT = _transient_errors()


class BadInput(Exception):
    """The page or its style cannot be used; retrying would not help."""


# --- per-process resources (made after the fork, never inherited) ------------------------------

_resources: dict[str, Any] = {}


def _store() -> Store:
    pid = os.getpid()
    if _resources.get("pid") != pid:
        settings = get_settings()
        _resources.update(pid=pid, store=Store(settings.database_url), storage=storage_from_settings(settings))
    return _resources["store"]


def _storage():
    _store()
    return _resources["storage"]


def _test_hooks(point: str, page_name: str = "", panels: int = 0) -> None:
    """Fault injection for tests/worker only; both variables are unset in every real deployment.

    PANELPAINT_TEST_PANEL_DELAY=seconds slows every panel of pages whose name contains "slow" while
    they are finished, and the colouring of pages whose name contains "stall" by that much per
    panel (reliable windows to kill or cancel in); PANELPAINT_TEST_KILL_PAGE=text makes the worker
    process SIGKILL itself on every claim of a page whose name contains the text (a poison page).
    """
    delay = float(os.environ.get("PANELPAINT_TEST_PANEL_DELAY") or 0)
    if point == "panel" and delay and "slow" in page_name:
        time.sleep(delay)
    elif point == "model" and delay and "stall" in page_name:
        time.sleep(delay * panels)
    elif point == "claimed":
        marker = os.environ.get("PANELPAINT_TEST_KILL_PAGE")
        if marker and marker in page_name:
            os.kill(os.getpid(), signal.SIGKILL)


def _work_size(options: dict, settings: Settings) -> int:
    """The long side a batch's panels are coloured at: its own option, else the settings'."""
    return int((options or {}).get("work_size") or settings.effective_work_size())


def _backoff(retries: int) -> float:
    return min(RETRY_BACKOFF_MAX, 2.0 ** retries)


def _retry_or_requeue(task, exc: BaseException | None, countdown: float | None = None) -> None:
    """Retry later; if even the retry cannot be published (Redis down), put the message back
    instead of letting Celery drop it (it turns a failed retry into a reject without requeue)."""
    try:
        raise task.retry(exc=exc, countdown=_backoff(task.request.retries) if countdown is None else countdown)
    except Reject:
        raise Reject(exc, requeue=True) from None


def _fail(render_id: int, attempt: int, error: str, retryable: bool = False) -> bool:
    """Record a failed attempt; True when the render went back to the queue (retryable, attempts left)."""
    settings = get_settings()
    try:
        with _store().session() as s:
            render = renders.fail_render(s, render_id, attempt, error, retryable, max_attempts=settings.max_attempts)
            return render.status == RunStatus.queued
    except StaleAttempt:
        log.info("render %s attempt %s was fenced out; its failure is dropped", render_id, attempt)
        return False


# --- loading what a render needs ---------------------------------------------------------------


def _open_stored(key: str | None, what: str) -> Image.Image:
    if not key:
        raise BadInput(f"{what}: nothing stored")
    settings = get_settings()
    try:
        data = _storage().read_bytes(key)
    except NotFound:
        raise BadInput(f"{what}: stored file {key[:12]}… is missing") from None
    try:
        return open_image(data, name=what, max_pixels=settings.max_image_pixels)
    except ImageError as exc:
        raise BadInput(str(exc)) from None


@dataclass(frozen=True)
class _StyleRow:
    """A stored style as plain data, read while the session is open."""

    id: int
    image_key: str
    palette: list | None
    snap: bool
    background: str

    @classmethod
    def of(cls, row: StyleReference) -> "_StyleRow":
        return cls(row.id, row.image_key, row.palette, row.snap_palette, row.background)

    def style(self, image: Image.Image) -> pages.Style:
        """The pipeline's view: the image, the (possibly edited) palette and the flats options."""
        palette = None
        if self.palette:
            try:
                palette = Palette.from_json(self.palette)
            except ValueError as exc:  # the store validates palettes; should one not parse, use the image's own
                log.warning("style %s: stored palette unusable (%s); extracting one from the image", self.id, exc)
        return pages.Style(image, palette=palette, snap=self.snap, background=self.background)


def _load_inputs(claim: renders.Claim, style_images: dict[int, pages.Style]) -> dict[str, Any]:
    """Page image, style images and stored panels of a claimed render (plain data, session closed).

    `style_images` caches decoded references by id across the pages of one render task, so pages
    with the same style share one image object (the colorizer encodes each object once). When the
    io worker has cut the page's inputs ahead (`page.prepared`, for its current panels and work
    size), `cut` holds them and the page itself is not decoded (`page` is None).
    For a panel re-render also: `panel`, the panel to colour (its style, seed and hints are the
    render's), and `base`, the id of the page's finished result (with flats) to merge it into, or
    None when the page has none.
    """
    panel_order = base = None
    work_size = _work_size(claim.options, get_settings())
    with _store().session() as s:
        page = s.get(Page, claim.page_id)
        name = page.source_name
        rows = sorted(page.panels, key=lambda r: r.position)
        cut = page.prepared if _cut_is_current(page, work_size) else None
        panels = [PagePanel((r.x, r.y, r.w, r.h), [list(p) for p in r.polygon], r.position) for r in rows]
        panel_style_ids = {r.position: r.style_id for r in rows if r.style_id}
        panel_hints = {r.position: list(r.hints) for r in rows if r.hints}
        page_style_id = claim.style_id
        if claim.panel_id is not None:
            panel_order = next((r.position for r in rows if r.id == claim.panel_id), None)
            if panel_order is None:
                raise BadInput(f"panel {claim.panel_id} is no longer on page {claim.page_id}")
            page_style_id = page.style_id or page.batch.default_style_id or claim.style_id
            if claim.style_id is not None:
                panel_style_ids[panel_order] = claim.style_id
            current = s.get(Render, page.current_render_id) if page.current_render_id else None
            if current is not None and current.status == RunStatus.succeeded and (current.outputs or {}).get("flats"):
                base = current.id
        style_rows = {sid: _StyleRow.of(s.get(StyleReference, sid))
                      for sid in {page_style_id, *panel_style_ids.values()} if sid is not None}
    if claim.style_id is None or page_style_id is None:
        raise BadInput("no style reference: choose one for the page or set the batch's default")
    t = time.perf_counter()
    prepared = None
    if cut is not None and panel_order is None:
        try:
            prepared = _load_cut(cut["key"])
        except (NotFound, OSError, ValueError, KeyError) as exc:
            log.warning("page %s: the inputs cut ahead cannot be read (%s); cutting them again", claim.page_id, exc)
    # With the inputs cut ahead (by the io worker that detected the panels) the page is not decoded here.
    page_img = None if prepared is not None else _open_stored(claim.source_key, name)
    load = time.perf_counter() - t
    for sid, row in style_rows.items():
        if sid not in style_images:
            style_images[sid] = row.style(_open_stored(row.image_key, f"style {sid}"))
    if panel_order is not None:
        # A panel re-render's hints (the panel's own unless the reviewer placed new ones) are its alone.
        panel_hints[panel_order] = list(claim.hints)
    else:
        # Render-level hints are in page pixels: give each to the panel that contains it.
        for hint in claim.hints:
            for p in panels:
                x0, y0, x1, y1 = p.box()
                if x0 <= hint.get("x", -1) < x1 and y0 <= hint.get("y", -1) < y1:
                    panel_hints.setdefault(p.order, []).append(hint)
                    break
    return {
        "name": name,
        "page": page_img,
        "cut": prepared,
        "work_size": work_size,
        "load": load,
        "style": style_images[page_style_id],
        "panels": panels or None,
        "panel_styles": {order: style_images[sid] for order, sid in panel_style_ids.items()},
        "panel_hints": panel_hints,
        "panel": next((p for p in panels if p.order == panel_order), None),
        "base": base,
    }


def _prepare(claim: renders.Claim, inputs: dict[str, Any], work_size: int) -> tuple[pages.PreparedPage, dict]:
    """The network's inputs for a claimed render, and what finishing must know about a merge.

    A panel re-render over a finished page prepares only that panel (`merge` names the panel and
    the result it goes into); without a base the whole page is prepared with the panel's
    overrides, and `merge` carries the note that says so.
    """
    panel, base = inputs["panel"], inputs["base"]
    common = dict(direction=claim.direction, panel_hints=inputs["panel_hints"], work_size=work_size)
    if inputs["cut"] is not None:  # a page render whose panels were cut ahead
        return inputs["cut"].assign(inputs["style"], inputs["panel_styles"], inputs["panel_hints"]), {}
    if panel is not None and base is not None:
        style = inputs["panel_styles"].get(panel.order, inputs["style"])
        prepared = pages.prepare_page(inputs["page"], style, panels=[panel], **common)
        return prepared, {"based_on": base, "panel": panel.to_dict(),
                          "page_panels": [p.to_dict() for p in inputs["panels"]]}
    prepared = pages.prepare_page(inputs["page"], inputs["style"], panels=inputs["panels"],
                                  panel_styles=inputs["panel_styles"], **common)
    if panel is not None:
        return prepared, {"note": "panel re-render: the page has no finished result to merge into, "
                                  "so the whole page was coloured"}
    return prepared, {}


# --- inputs cut ahead of the render, by the io worker ------------------------------------------


def _cut_is_current(page: Page, work_size: int) -> bool:
    cut = page.prepared or {}
    panels = cut.get("panels")
    return bool(panels) and cut.get("work_size") == work_size and panels == batches.panel_dicts(page)


def _put_arrays(meta: dict, arrays: list[np.ndarray], prefix: str) -> str:
    """Raw arrays and their JSON description in one uncompressed .npz file: no encoding, so it is
    cheap to write on the GPU worker and to read on the io worker."""
    buf = io.BytesIO()
    np.savez(buf, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8),
             **{f"{prefix}{i}": a for i, a in enumerate(arrays)})
    return _storage().put_bytes(buf.getvalue(), ".npz")


def _get_arrays(key: str, prefix: str) -> tuple[dict, list[np.ndarray]]:
    """What `_put_arrays` stored: the description and one array per panel."""
    with _storage().open(key) as f, np.load(f, allow_pickle=False) as z:
        meta = json.loads(z["meta"].tobytes())
        return meta, [z[f"{prefix}{i}"] for i in range(len(meta["panels"]))]


def _save_cut(prepared: pages.PreparedPage) -> str:
    """A page's cut panels (sketches at work size) and their geometry."""
    return _put_arrays(prepared.geometry(), [np.asarray(sk) for sk in prepared.sketches], "s")


def _load_cut(key: str) -> pages.PreparedPage:
    meta, sketches = _get_arrays(key, "s")
    return pages.PreparedPage(tuple(meta["size"]), [PagePanel.from_dict(p) for p in meta["panels"]],
                              [tuple(b) for b in meta["boxes"]], [Image.fromarray(a, "L") for a in sketches],
                              [], [], meta["direction"])


def _remember_cut(claim: renders.Claim, prepared: pages.PreparedPage, work_size: int) -> None:
    """Keep the panels a render detected and the inputs it cut, so that the page's ingest (when the
    render got there first) and later renders of the page need not do the work again."""
    try:
        key = _save_cut(prepared)
        with _store().session() as s:
            _store_detected_panels(s, claim.page_id, prepared.panels)
            stored = batches.panel_dicts(s.get(Page, claim.page_id))
            if stored:  # (the detected panels could not be kept: nothing to remember)
                batches.set_prepared(s, claim.page_id, {"key": key, "work_size": work_size, "panels": stored},
                                     panels=stored)
    except Exception:  # noqa: BLE001 - only a shortcut for later: the render goes on without it
        log.warning("render %s: could not keep the page's cut panels", claim.render_id, exc_info=True)


# --- the hand-off from the render worker to the io worker --------------------------------------


def _save_handoff(claim: renders.Claim, name: str, prepared: pages.PreparedPage, colours: list[Image.Image],
                  model_version: str, degraded: str | None, merge: dict) -> str:
    """The page's panel colours at work size and what finishing needs: the page's source, panel
    geometry and finishes (palettes, backgrounds, hints), the seed, timings and merge (the render
    id and attempt make every hand-off file its own)."""
    meta = {"render_id": claim.render_id, "attempt": claim.attempt, "source_key": claim.source_key, "name": name,
            **prepared.geometry(), "seed": claim.seed, "model_version": model_version, "timings": prepared.timings,
            "degraded": degraded, "merge": merge}
    return _put_arrays(meta, [np.asarray(c.convert("RGB")) for c in colours], "c")


# --- render: claim, colour, hand off -----------------------------------------------------------


@dataclass
class _Job:
    """One claimed render inside a render task; `outcome` is set once it is handed off or ended."""

    claim: renders.Claim
    name: str = ""
    work_size: int = 0
    prepared: pages.PreparedPage | None = None
    merge: dict = field(default_factory=dict)
    colours: list[Image.Image] | None = None
    outcome: str | None = None  # handed_off, failed, cancelled, stale, requeued


@contextlib.contextmanager
def _recorded(job: _Job, settings: Settings):
    """Run a step of one page; whatever goes wrong is recorded on that page's render alone."""
    claim = job.claim
    try:
        yield
    except pages.Cancelled:
        with _store().session() as s:
            renders.acknowledge_cancel(s, claim.render_id, claim.attempt)
        job.outcome = "cancelled"
    except StaleAttempt:
        log.warning("render %s attempt %s was taken over by a newer attempt; stopping", claim.render_id, claim.attempt)
        job.outcome = "stale"
    except (BadInput, ImageError, ValueError) as exc:
        _fail(claim.render_id, claim.attempt, str(exc))
        job.outcome = "failed"
    except TRANSIENT as exc:
        log.warning("render %s attempt %s: transient fault %r; retrying", claim.render_id, claim.attempt, exc)
        job.outcome = "requeued" if _fail(claim.render_id, claim.attempt, f"transient fault: {exc}", True) else "failed"
    except (Retry, SystemExit, KeyboardInterrupt, SoftTimeLimitExceeded):
        raise
    except Exception as exc:  # noqa: BLE001 - record it on the render; the worker keeps serving
        log.exception("render %s attempt %s failed", claim.render_id, claim.attempt)
        _fail(claim.render_id, claim.attempt, f"{type(exc).__name__}: {exc}")
        job.outcome = "failed"


@app.task(name=queue.TASK_RENDER, bind=True, max_retries=MAX_UNRECORDED_RETRIES)
def render_page(self, render_id: int) -> dict | None:
    """Colour one page (and the pages batched with it); see the module docstring for the contract."""
    try:
        return _render(self, render_id)
    except (Retry, Reject, SystemExit, KeyboardInterrupt):
        raise
    except Exception as exc:
        # Nothing could be recorded on the render (database or Redis unreachable, say): run again
        # later. A claimed render then waits out its lease and is taken over with attempt + 1.
        log.warning("render %s: %r; retrying in %.0f s", render_id, exc, _backoff(self.request.retries))
        _retry_or_requeue(self, exc)


def pages_per_pass(settings: Settings, colorizer: Any) -> int:
    """How many pages a render task colours together: the setting, or 8 on a CUDA device and 1 elsewhere."""
    if settings.render_batch_pages:
        return settings.render_batch_pages
    device = getattr(colorizer, "device", None)
    return GPU_BATCH_PAGES if getattr(device, "type", None) == "cuda" else 1


def _render(self, render_id: int) -> dict | None:
    settings = get_settings()
    worker_name = self.request.hostname or "worker"
    t_start = time.perf_counter()
    try:
        with _store().session() as s:
            # A running render is taken over only once its lease (renewed after every panel) has
            # expired. Celery's "redelivered" flag cannot tell a dead holder from a live one whose
            # message was merely restored after the visibility timeout (a duplicate), so it is not
            # trusted: a duplicate never steals a healthy render or spends its attempts.
            claim = renders.claim_render(s, render_id, worker_name, settings.max_attempts,
                                         lease_seconds=settings.render_lease_seconds, task_id=self.request.id)
    except LeaseHeld as exc:
        _retry_or_requeue(self, None, max(0.5, exc.retry_in))
    except NotFound:
        log.warning("render %s does not exist; dropping its task", render_id)
        return None
    except TRANSIENT as exc:
        _retry_or_requeue(self, exc)
    if claim is None:
        return None  # finished, cancelled, or out of attempts (then marked failed): ack
    rt = runtime()
    colorizer = rt.colorizer
    jobs = [_Job(claim)]
    # Only a first attempt takes companions: a page that was tried before (perhaps one that kills
    # its worker) is coloured alone, and companions are only ever first attempts.
    if claim.attempt == 1:
        more = pages_per_pass(settings, colorizer) - 1
        if more > 0:
            try:
                with _store().session() as s:
                    jobs += [_Job(c) for c in renders.claim_following(
                        s, claim, worker_name, settings.max_attempts, limit=more,
                        lease_seconds=settings.render_lease_seconds)]
            except TRANSIENT as exc:
                log.warning("render %s: could not claim following pages (%r); colouring it alone", render_id, exc)
    try:
        _colour_jobs(jobs, colorizer, rt.model_version or getattr(colorizer, "model_version", ""), settings, t_start)
    except SoftTimeLimitExceeded:
        for job in jobs:
            if job.outcome is None:
                retry = _fail(job.claim.render_id, job.claim.attempt,
                              f"took longer than {settings.task_soft_time_limit} s", retryable=True)
                job.outcome = "requeued" if retry else "failed"
    for job in jobs[1:]:
        if job.outcome == "requeued":  # a companion's own message may be gone: send it again
            queue.enqueue_render(settings, job.claim.render_id, job.claim.task_id)
    if any(job.outcome == "handed_off" for job in jobs):
        _wait_for_io(settings)
    if jobs[0].outcome == "requeued":
        _retry_or_requeue(self, None)
    return {"render_id": render_id, "status": jobs[0].outcome,
            "pages": {job.claim.render_id: job.outcome for job in jobs}}


def _colour_jobs(jobs: list[_Job], colorizer: Any, model_version: str, settings: Settings,
                 t_start: float) -> None:
    """Prepare every claimed page, colour them all in one call, hand each off to finishing."""
    style_images: dict[int, pages.Style] = {}
    for job in jobs:
        with _recorded(job, settings):
            inputs = _load_inputs(job.claim, style_images)
            loaded = time.perf_counter() - t_start  # claim and inputs, decoding included
            job.name = inputs["name"]
            _test_hooks("claimed", job.name)
            job.work_size = inputs["work_size"]
            job.prepared, job.merge = _prepare(job.claim, inputs, job.work_size)
            if inputs["cut"] is None and job.claim.panel_id is None:
                _remember_cut(job.claim, job.prepared, job.work_size)
            stage = "decode" if inputs["page"] is not None else "cut_load"
            job.prepared.timings.update({"claim_and_load": loaded, stage: inputs["load"]})
            t_start = time.perf_counter()  # a page batched after this one starts its clock here
    live = [j for j in jobs if j.outcome is None]
    if not live:
        return
    with _store().session() as s:
        cancelled = batches.is_cancelled(s, live[0].claim.render_id)  # one batch for all of them
    if cancelled:
        for job in live:
            with _recorded(job, settings):
                raise pages.Cancelled("cancelled before colouring")
        return
    for job in live:
        _test_hooks("model", job.name, len(job.prepared.panels))
    colorizer.reset()
    by_size: dict[int, list[_Job]] = {}  # pages of one batch share a work size; grouped anyway
    for job in live:
        by_size.setdefault(job.work_size, []).append(job)
    for size, group in by_size.items():
        try:
            colours = pages.colour_pages([j.prepared for j in group], colorizer, work_size=size,
                                         seed=group[0].claim.seed)
        except (SoftTimeLimitExceeded, Retry, SystemExit, KeyboardInterrupt):
            raise
        except Exception:  # noqa: BLE001 - colour page by page, so one bad page fails alone
            if len(group) == 1:
                with _recorded(group[0], settings):
                    raise
                continue
            log.warning("colouring %d pages together failed; colouring them one at a time", len(group), exc_info=True)
            colours = []
            for job in group:
                got = None
                with _recorded(job, settings):
                    (got,) = pages.colour_pages([job.prepared], colorizer, work_size=size, seed=job.claim.seed)
                colours.append(got)
        for job, got in zip(group, colours):
            job.colours = got
    degraded = colorizer.degraded
    coloured = [j for j in live if j.outcome is None and j.colours is not None]
    together = [j.claim.render_id for j in coloured]
    panels = sum(len(j.prepared.panels) for j in coloured)
    for job in coloured:
        with _recorded(job, settings):
            note = job.merge.pop("note", None)
            if note:
                log.warning("render %s: %s", job.claim.render_id, note)
            key = _save_handoff(job.claim, job.name, job.prepared, job.colours, model_version,
                                "; ".join(x for x in (degraded, note) if x) or None, job.merge)
            with _store().session() as s:  # renews the lease, and shows the page's panel count
                renders.set_progress(s, job.claim.render_id, job.claim.attempt, 0, len(job.prepared.panels))
                renders.note_coloured(s, job.claim.render_id, job.claim.attempt, together=together, panels=panels)
            queue.enqueue_finish(settings, job.claim.render_id, job.claim.attempt, key)
            job.outcome = "handed_off"


def _wait_for_io(settings: Settings) -> None:
    """Back-pressure: while more than `io_backlog` tasks wait on the io queue, take no new page."""
    import redis

    deadline = time.monotonic() + min(IO_WAIT_MAX, settings.task_soft_time_limit / 2)
    while time.monotonic() < deadline:
        try:
            if queue.queue_lengths(settings)[queue.IO_QUEUE] <= settings.io_backlog:
                return
        except redis.RedisError:
            return
        time.sleep(0.25)


# --- finish: native resolution, compositing, encoding ------------------------------------------


@app.task(name=queue.TASK_FINISH, bind=True, max_retries=8)
def finish_page(self, render_id: int, attempt: int, handoff_key: str) -> dict | None:
    """Finish a coloured page, encode its deliverables, store them, and complete the render (fenced by attempt)."""
    settings = get_settings()
    t_start = time.perf_counter()
    try:
        with _store().session() as s:
            render = s.get(Render, render_id)
            if render is None or render.attempt != attempt or render.status != RunStatus.running:
                return None  # fenced out, cancelled, or already completed by an earlier delivery
            page = s.get(Page, render.page_id)
            formats = page.batch.options.get("formats") or DEFAULT_FORMATS
            stem = Path(page.source_name).stem or f"page-{page.position + 1}"
            page_id, task_id = page.id, render.task_id
        try:
            meta, colours = _get_arrays(handoff_key, "c")
        except NotFound:
            # The colours are gone (storage wiped?): colour the page again as a new attempt.
            if _fail(render_id, attempt, "the coloured panels handed to finishing are missing", retryable=True):
                queue.enqueue_render(settings, render_id, task_id)
            return {"render_id": render_id, "status": "requeued"}
        timings = dict(meta["timings"])
        lines = to_gray(_open_stored(meta["source_key"], meta["name"]))
        timings["finish_load"] = time.perf_counter() - t_start
        panels = [PagePanel.from_dict(p) for p in meta["panels"]]

        def should_stop() -> bool:
            with _store().session() as s:
                return batches.is_cancelled(s, render_id)

        def on_panel(done: int, total: int) -> None:
            _test_hooks("panel", meta["name"])
            with _store().session() as s:
                renders.set_progress(s, render_id, attempt, done, total)

        finishes = [pages.PanelFinish.from_json(f) for f in meta.get("finishes") or [{} for _ in panels]]
        result = pages.finish_page(lines, panels, [tuple(b) for b in meta["boxes"]], colours, finishes=finishes,
                                   options=pages.FinishOptions(seed=meta.get("seed")),
                                   direction=meta["direction"], model_version=meta["model_version"],
                                   timings=timings, should_stop=should_stop, on_panel=on_panel)
        merge = meta.get("merge") or {}
        if merge:
            merge = _merge_into_result(page_id, result, merge)
        t = time.perf_counter()
        # Encoded in memory and stored once (no temporary files to write and read back for hashing).
        outputs = {kind: _storage().put_bytes(data, Path(name).suffix)
                   for kind, (name, data) in pages.encode_outputs(result, set(formats), stem="page").items()}
        result.timings["encode"] = time.perf_counter() - t
        with _store().session() as s:
            renders.complete_render(s, render_id, attempt, outputs, result.timings, result.model_version,
                                    degraded=meta.get("degraded"), based_on=merge.get("based_on"))
            _store_detected_panels(s, page_id, result.panels)
        _storage().delete(handoff_key)  # only after the commit: a crash before leaves it for a rerun
    except pages.Cancelled:
        with _store().session() as s:
            renders.acknowledge_cancel(s, render_id, attempt)
        return {"render_id": render_id, "status": "cancelled"}
    except StaleAttempt:
        return None
    except TRANSIENT as exc:
        _retry_or_requeue(self, exc)
    except (Retry, Reject, SystemExit, KeyboardInterrupt):
        raise
    except SoftTimeLimitExceeded:
        if _fail(render_id, attempt, f"finishing took longer than {settings.task_soft_time_limit} s", retryable=True):
            queue.enqueue_render(settings, render_id, task_id)
        return {"render_id": render_id, "status": "requeued"}
    except Exception as exc:  # noqa: BLE001 - an unreadable page or unwritable output fails this page only
        log.exception("finishing render %s failed", render_id)
        bad_input = isinstance(exc, (BadInput, ImageError))
        _fail(render_id, attempt, str(exc) if bad_input else f"finishing failed: {type(exc).__name__}: {exc}")
        return {"render_id": render_id, "status": "failed"}
    log.info("render %s (%s) complete", render_id, stem)
    return {"render_id": render_id, "status": "succeeded"}


def _base_layer(key: str | None, size: tuple[int, int], mode: str) -> np.ndarray | None:
    """A stored layer of a finished result (flats "RGB", shading "L") as an array, or None if unusable."""
    if not key:
        return None
    try:
        with Image.open(io.BytesIO(_storage().read_bytes(key))) as img:
            layer = np.asarray(img.convert(mode))
    except (NotFound, OSError) as exc:
        log.warning("layer %s… of the page's result cannot be read: %s", key[:12], exc)
        return None
    return layer if layer.shape[1::-1] == tuple(size) else None


def _merge_into_result(page_id: int, result: pages.PageResult, merge: dict) -> dict:
    """Put a re-rendered panel (`result` holds only that panel) into the page's result as it is
    now: the page's current finished result, which may be newer than the one the render saw
    (another panel's re-render finished meanwhile), else that one; so neither change is lost.
    Returns `merge` with `based_on` = the render merged into; raises `BadInput` if none is readable."""
    with _store().session() as s:
        page = s.get(Page, page_id)
        candidates = []
        for rid in dict.fromkeys([page.current_render_id, merge["based_on"]]):
            r = s.get(Render, rid) if rid else None
            if r is not None and r.status == RunStatus.succeeded and (r.outputs or {}).get("flats"):
                candidates.append((r.id, r.outputs["flats"], r.outputs.get("shading")))
    panel = PagePanel.from_dict(merge["panel"])
    for base_id, key, shading_key in candidates:
        base = _base_layer(key, result.size, "RGB")
        if base is None:
            continue
        flats = pages.merge_panel(base, np.asarray(result.flats), panel)
        shading = None
        if result.shading is not None:
            # A base without a shading layer (older results) is unshaded: white, multiply's identity.
            base_shading = _base_layer(shading_key, result.size, "L")
            if base_shading is None:
                base_shading = np.full(flats.shape[:2], 255, np.uint8)
            shading = pages.merge_panel(base_shading, np.asarray(result.shading), panel)
            result.shading = Image.fromarray(shading, "L")
        result.flats = Image.fromarray(flats, "RGB")
        result.composite = Image.fromarray(pages.compose(flats, shading, np.asarray(result.lines)), "RGB")
        result.panels = [PagePanel.from_dict(p) for p in merge["page_panels"]]
        if base_id != merge["based_on"]:
            log.info("panel re-render of page %s merged onto render %s instead of %s", page_id, base_id,
                     merge["based_on"])
        return {**merge, "based_on": base_id}
    raise BadInput("panel re-render: the page's finished result it goes into can no longer be read")


def _store_detected_panels(session, page_id: int, panels: list) -> None:
    """Keep the panels the render detected, for per-panel review, unless the page has panels already."""
    if session.scalar(sa.select(sa.func.count(Panel.id)).where(Panel.page_id == page_id)):
        return
    try:
        with session.begin_nested():
            batches.set_panels(session, page_id, [
                {"x": p.bbox[0], "y": p.bbox[1], "w": p.bbox[2], "h": p.bbox[3], "polygon": p.polygon,
                 "order": p.order} for p in panels])
    except IllegalTransition:
        pass  # the page's panels have renders or reviews by now: they stay
    except InvalidInput as exc:  # e.g. the page's recorded size disagrees with its image
        log.warning("page %s: detected panels not kept: %s", page_id, exc)


# --- ingest ------------------------------------------------------------------------------------


@app.task(name=queue.TASK_INGEST, bind=True, max_retries=8)
def ingest_page(self, page_id: int) -> dict | None:
    """Detect the panels of a new page (unless it has some) and store them for review and editing;
    then cut the network's inputs for those panels, so the render worker need not decode the page."""
    settings = get_settings()
    try:
        with _store().session() as s:
            page = s.get(Page, page_id)
            if page is None or page.source_key is None:
                return None
            key, name = page.source_key, page.source_name
            direction = (page.direction or page.batch.direction).value
            work_size = _work_size(page.batch.options, settings)
            if _cut_is_current(page, work_size):
                return {"page_id": page_id, "panels": "kept"}
        try:
            lines = to_gray(_open_stored(key, name))
        except BadInput as exc:
            log.warning("page %s cannot be ingested: %s", page_id, exc)
            return {"page_id": page_id, "error": str(exc)}
        with _store().session() as s:
            stored = batches.panel_dicts(s.get(Page, page_id))
        if not stored:
            found = detect_panels(lines, direction)
            with _store().session() as s:
                _store_detected_panels(s, page_id, found)
                stored = batches.panel_dicts(s.get(Page, page_id))
        if not stored:  # the detected panels could not be kept: the render detects them itself
            return {"page_id": page_id, "panels": 0}
        panels = [PagePanel.from_dict(p) for p in stored]
        boxes, sketches = pages.cut_panels(lines, panels, work_size)
        cut = _save_cut(pages.PreparedPage(lines.shape[::-1], panels, boxes, sketches, [], [], direction))
        with _store().session() as s:
            # Recorded only while these are still the page's panels (an edit meanwhile wins).
            batches.set_prepared(s, page_id, {"key": cut, "work_size": work_size, "panels": stored}, panels=stored)
    except TRANSIENT as exc:
        _retry_or_requeue(self, exc)
    return {"page_id": page_id, "panels": len(panels)}


# --- unpacking archives ------------------------------------------------------------------------


@app.task(name=queue.TASK_UNPACK, bind=True, max_retries=MAX_UNRECORDED_RETRIES)
def unpack_upload(self, upload_id: int) -> dict | None:
    """Turn an upload's archives (and the images sent with them) into pages, in order, sending each
    page's panel detection and render as it is added. Works for half the soft time limit at most,
    then sends itself again to go on from where it stopped (so other io work interleaves, and no
    chapter meets the time limit); waits its turn behind an earlier upload of the same batch."""
    settings = get_settings()
    deadline = time.monotonic() + settings.task_soft_time_limit / 2
    try:
        outcome = unpack.unpack_upload(_store(), _storage(), settings, upload_id, unpack.enqueue_pages(settings),
                                       deadline=deadline)
        if outcome in ("more", "waiting"):
            queue.enqueue_unpack(settings, upload_id, self.request.id, countdown=0 if outcome == "more" else 2)
    except NotFound:
        log.warning("upload %s does not exist; dropping its task", upload_id)
        return None
    except TRANSIENT as exc:
        _retry_or_requeue(self, exc)
    except SoftTimeLimitExceeded:  # progress is recorded page by page: go on in a new task
        queue.enqueue_unpack(settings, upload_id, self.request.id)
        outcome = "more"
    return {"upload_id": upload_id, "status": outcome}
