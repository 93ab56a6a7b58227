"""The Celery tasks, addressed by the names in `panelpaint.queue`: render a page, encode its outputs, ingest a page.

Delivery is at least once (acks_late, reject_on_worker_lost), so every task is idempotent:

* `panelpaint.render_page(render_id)` (queue `render`) claims the render in the job store, which
  counts the attempt and refuses finished, cancelled or exhausted renders (ack and return). It
  colours the page (model + compositing), reporting progress after every panel (which renews the
  lease and raises `StaleAttempt` if a newer attempt took over), stops at the next panel when the
  batch is cancelled, stores the page as a fast uncompressed intermediate and queues encoding.
* `panelpaint.encode_outputs(render_id, attempt, key)` (queue `io`) encodes the deliverables
  (PNG, PSD, ORA, JSON, previews) on a CPU worker, in parallel with the GPU working on the next
  page, stores them and completes the render fenced by attempt: a late or duplicate run of an old
  attempt is refused by the store, and a repeat of the same attempt is a no-op.
* A panel re-render (`claim.panel_id`) colours only that panel with the render's style, seed and
  hints and merges it into the flats of the page's finished result (outside the panel's polygon
  every pixel stays identical); the completed render then becomes the page's result. Without a
  finished result to merge into, the whole page is coloured with that panel's overrides and the
  render's `degraded` says so.
* `panelpaint.ingest_page(page_id)` (queue `io`) detects a page's panels so they can be edited
  before rendering.

Bad input (undecodable page or style) fails the render with its message, without retry.
Transient faults (database or Redis unreachable) are retried with exponential backoff. A page
that kills its worker process is redelivered and counted by the claim until `max_attempts`.
"""
from __future__ import annotations

import functools
import io
import json
import logging
import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from celery.exceptions import Reject, Retry, SoftTimeLimitExceeded
from PIL import Image

from panelpaint import queue
from panelpaint.composite import multiply
from panelpaint.images import ImageError, open_image
from panelpaint.pages import Cancelled, PageResult, detect, merge_panel, write_outputs
from panelpaint.pages import render_page as run_pipeline
from panelpaint.panels import Panel as PagePanel
from panelpaint.settings import get_settings
from panelpaint.store import batches, renders
from panelpaint.store.db import Store
from panelpaint.store.errors import IllegalTransition, LeaseHeld, NotFound, StaleAttempt
from panelpaint.store.schema import Page, Panel, Render, RunStatus, StyleReference
from panelpaint.store.storage import storage_from_settings
from worker.celery_app import app
from worker.runtime import runtime

log = logging.getLogger(__name__)

DEFAULT_FORMATS = ("png", "psd", "ora", "json", "preview")
RETRY_BACKOFF_MAX = 60
MAX_UNRECORDED_RETRIES = 30  # about half an hour of backoff for faults outside the job store's record


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


def _test_hooks(point: str, page_name: str = "") -> None:
    """Fault injection for tests/worker only; both variables are unset in every real deployment.

    PANELPAINT_TEST_PANEL_DELAY=seconds slows every panel of pages whose name contains "slow" (a
    reliable window to kill or cancel in); PANELPAINT_TEST_KILL_PAGE=text makes the worker process
    SIGKILL itself on every claim of a page whose name contains the text (a poison page).
    """
    if point == "panel":
        delay = float(os.environ.get("PANELPAINT_TEST_PANEL_DELAY") or 0)
        if delay and "slow" in page_name:
            time.sleep(delay)
    elif point == "claimed":
        marker = os.environ.get("PANELPAINT_TEST_KILL_PAGE")
        if marker and marker in page_name:
            os.kill(os.getpid(), signal.SIGKILL)


def _backoff(retries: int) -> float:
    return min(RETRY_BACKOFF_MAX, 2.0 ** retries)


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


def _load_inputs(claim: renders.Claim) -> dict[str, Any]:
    """Page image, style images and stored panels of a claimed render (plain data, session closed).

    For a panel re-render also: `panel`, the panel to colour (its style, seed and hints are the
    render's), and `base` = (render id, flats storage key) of the page's finished result to merge
    it into, or None when the page has no finished result with flats.
    """
    panel_order = base = None
    with _store().session() as s:
        page = s.get(Page, claim.page_id)
        name = page.source_name
        rows = list(s.scalars(sa.select(Panel).where(Panel.page_id == claim.page_id).order_by(Panel.position)))
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
                base = (current.id, current.outputs["flats"])
        style_keys = {sid: s.get(StyleReference, sid).image_key
                      for sid in {page_style_id, *panel_style_ids.values()} if sid is not None}
    if claim.style_id is None or page_style_id is None:
        raise BadInput("no style reference: choose one for the page or set the batch's default")
    page_img = _open_stored(claim.source_key, name)
    styles = {sid: _open_stored(key, f"style {sid}") for sid, key in style_keys.items()}
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
        "style": styles[page_style_id],
        "panels": panels or None,
        "panel_styles": {order: styles[sid] for order, sid in panel_style_ids.items()},
        "panel_hints": panel_hints,
        "panel": next((p for p in panels if p.order == panel_order), None),
        "base": base,
    }


def _base_flats(key: str, size: tuple[int, int]) -> np.ndarray | None:
    """The stored flats of the page's finished result as an RGB array, or None if unusable."""
    try:
        with Image.open(io.BytesIO(_storage().read_bytes(key))) as img:
            flats = np.asarray(img.convert("RGB"))
    except (NotFound, OSError) as exc:
        log.warning("flats %s… of the page's result cannot be read: %s", key[:12], exc)
        return None
    return flats if flats.shape[1::-1] == tuple(size) else None


def _colour(claim: renders.Claim, inputs: dict[str, Any], colorizer, **kwargs) -> tuple[PageResult, dict]:
    """Run the page pipeline for a claimed render; returns the result and what the intermediate records.

    A panel re-render over a finished page colours only that panel and merges it into the page's
    result flats (everything outside the panel's polygon stays identical); without a usable base
    it colours the whole page, the panel with its overrides, and says so in `degraded`.
    """
    panel, base = inputs["panel"], inputs["base"]
    run = functools.partial(run_pipeline, inputs["page"], direction=claim.direction,
                            panel_hints=inputs["panel_hints"], seed=claim.seed, colorizer=colorizer, **kwargs)
    if panel is None:
        return run(style=inputs["style"], panels=inputs["panels"], panel_styles=inputs["panel_styles"]), {}
    base_flats = _base_flats(base[1], inputs["page"].size) if base else None
    if base_flats is None:
        result = run(style=inputs["style"], panels=inputs["panels"], panel_styles=inputs["panel_styles"])
        return result, {"note": "panel re-render: the page has no finished result to merge into, "
                                "so the whole page was coloured"}
    style = inputs["panel_styles"].get(panel.order, inputs["style"])
    result = run(style=style, panels=[panel])
    flats = merge_panel(base_flats, np.asarray(result.flats), panel)
    result.flats = Image.fromarray(flats, "RGB")
    result.composite = Image.fromarray(multiply(flats, np.asarray(result.lines)), "RGB")
    result.panels = list(inputs["panels"])
    return result, {"based_on": base[0], "panel": panel.to_dict()}


# --- the intermediate handed from the render worker to the io worker ---------------------------


def _save_intermediate(result, degraded: str | None, merge: dict | None = None) -> str:
    """The page as raw arrays (no compression: the GPU worker must not spend time encoding);
    `merge` records which result a re-rendered panel was merged into (`based_on`, `panel`)."""
    meta = {"panels": [p.to_dict() for p in result.panels], "direction": result.direction,
            "model_version": result.model_version, "timings": result.timings, "degraded": degraded,
            "merge": merge or {}}
    buf = io.BytesIO()
    np.savez(buf, flats=np.asarray(result.flats), lines=np.asarray(result.lines),
             meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))
    return _storage().put_bytes(buf.getvalue(), ".npz")


def _load_intermediate(key: str):
    with _storage().open(key) as f, np.load(f, allow_pickle=False) as z:
        flats, lines = z["flats"], z["lines"]
        meta = json.loads(z["meta"].tobytes())
    result = PageResult(
        composite=Image.fromarray(multiply(flats, lines), "RGB"), flats=Image.fromarray(flats, "RGB"),
        lines=Image.fromarray(lines, "L"), panels=[PagePanel.from_dict(p) for p in meta["panels"]],
        direction=meta["direction"], model_version=meta["model_version"], timings=meta["timings"],
    )
    return result, meta.get("degraded"), meta.get("merge") or {}


# --- tasks -------------------------------------------------------------------------------------


def _fail(render_id: int, attempt: int, error: str, retryable: bool = False) -> None:
    settings = get_settings()
    try:
        with _store().session() as s:
            renders.fail_render(s, render_id, attempt, error, retryable, max_attempts=settings.max_attempts)
    except StaleAttempt:
        log.info("render %s attempt %s was fenced out; its failure is dropped", render_id, attempt)


@app.task(name=queue.TASK_RENDER, bind=True, max_retries=MAX_UNRECORDED_RETRIES)
def render_page(self, render_id: int) -> dict | None:
    """Colour one page; see the module docstring for the delivery contract."""
    try:
        return _render(self, render_id)
    except (Retry, SystemExit, KeyboardInterrupt):
        raise
    except Exception as exc:
        # Nothing could be recorded on the render (database or Redis unreachable, say): run again
        # later. A claimed render then waits out its lease and is taken over with attempt + 1.
        log.warning("render %s: %r; retrying in %.0f s", render_id, exc, _backoff(self.request.retries))
        _retry_or_requeue(self, exc)


def _retry_or_requeue(task, exc: BaseException | None, countdown: float | None = None) -> None:
    """Retry later; if even the retry cannot be published (Redis down), put the message back
    instead of letting Celery drop it (it turns a failed retry into a reject without requeue)."""
    try:
        raise task.retry(exc=exc, countdown=_backoff(task.request.retries) if countdown is None else countdown)
    except Reject:
        raise Reject(exc, requeue=True) from None


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
    attempt = claim.attempt
    try:
        inputs = _load_inputs(claim)
        _test_hooks("claimed", inputs["name"])
        rt = runtime()
        colorizer = rt.colorizer
        colorizer.reset()

        def should_stop() -> bool:
            with _store().session() as s:
                return batches.is_cancelled(s, render_id)

        def on_panel(done: int, total: int) -> None:
            _test_hooks("panel", inputs["name"])
            with _store().session() as s:
                renders.set_progress(s, render_id, attempt, done, total)

        t_queue = (time.perf_counter() - t_start)
        result, merge = _colour(
            claim, inputs, colorizer, work_size=int(claim.options.get("work_size") or settings.work_size),
            max_pixels=settings.max_image_pixels, should_stop=should_stop, on_panel=on_panel,
        )
        result.model_version = rt.model_version or result.model_version
        result.timings["claim_and_load"] = t_queue
        note = merge.pop("note", None)
        if note:
            log.warning("render %s: %s", render_id, note)
        degraded = "; ".join(x for x in (colorizer.degraded, note) if x) or None
        t = time.perf_counter()
        key = _save_intermediate(result, degraded, merge)
        result.timings["intermediate"] = time.perf_counter() - t
    except Cancelled:
        with _store().session() as s:
            renders.acknowledge_cancel(s, render_id, attempt)
        return {"render_id": render_id, "status": "cancelled"}
    except StaleAttempt:
        log.warning("render %s attempt %s was taken over by a newer attempt; stopping", render_id, attempt)
        return None
    except (BadInput, ImageError, ValueError) as exc:
        _fail(render_id, attempt, str(exc))
        return {"render_id": render_id, "status": "failed"}
    except SoftTimeLimitExceeded:
        _fail(render_id, attempt, f"took longer than {settings.task_soft_time_limit} s", retryable=True)
        return _requeue(self, render_id, attempt)
    except TRANSIENT as exc:
        log.warning("render %s attempt %s: transient fault %r; retrying", render_id, attempt, exc)
        _fail(render_id, attempt, f"transient fault: {exc}", retryable=True)
        return _requeue(self, render_id, attempt)
    except (Retry, SystemExit, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - record it on the render; the worker keeps serving
        log.exception("render %s attempt %s failed", render_id, attempt)
        _fail(render_id, attempt, f"{type(exc).__name__}: {exc}")
        return {"render_id": render_id, "status": "failed"}
    queue.enqueue_encode(settings, render_id, attempt, key)
    return {"render_id": render_id, "status": "encoding", "attempt": attempt}


def _requeue(task, render_id: int, attempt: int) -> None:
    """Run again later if `fail_render(retryable=True)` put the render back to queued."""
    with _store().session() as s:
        render = s.get(Render, render_id)
        again = render is not None and render.status == RunStatus.queued
    if again:
        _retry_or_requeue(task, None)
    return None


@app.task(name=queue.TASK_ENCODE, bind=True, max_retries=8)
def encode_outputs(self, render_id: int, attempt: int, intermediate_key: str) -> dict | None:
    """Encode a rendered page's deliverables, store them, and complete the render (fenced by attempt)."""

    settings = get_settings()
    try:
        with _store().session() as s:
            render = s.get(Render, render_id)
            if render is None or render.attempt != attempt or render.status != RunStatus.running:
                return None  # fenced out, cancelled, or already completed by an earlier delivery
            page = s.get(Page, render.page_id)
            formats = page.batch.options.get("formats") or DEFAULT_FORMATS
            stem = Path(page.source_name).stem or f"page-{page.position + 1}"
            page_id = page.id
        result, degraded, merge = _load_intermediate(intermediate_key)
        merge = _merge_onto_current(page_id, result, merge)
        t = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="panelpaint-encode-") as tmp:
            paths = write_outputs(result, tmp, set(formats), stem="page")
            outputs = {kind: _storage().put_file(path, path.suffix) for kind, path in paths.items()}
        result.timings["encode"] = time.perf_counter() - t
        with _store().session() as s:
            renders.complete_render(s, render_id, attempt, outputs, result.timings, result.model_version,
                                    degraded=degraded, based_on=merge.get("based_on"))
            _store_detected_panels(s, page_id, result.panels)
    except StaleAttempt:
        return None
    except TRANSIENT as exc:
        _retry_or_requeue(self, exc)
    except (Retry, SystemExit, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - an unwritable output fails this page only
        log.exception("encoding render %s failed", render_id)
        _fail(render_id, attempt, f"encoding failed: {type(exc).__name__}: {exc}")
        return {"render_id": render_id, "status": "failed"}
    log.info("render %s (%s) complete", render_id, stem)
    return {"render_id": render_id, "status": "succeeded"}


def _merge_onto_current(page_id: int, result: PageResult, merge: dict) -> dict:
    """Move a re-rendered panel onto the page's result as it is now, if that changed since the
    render merged it (another panel's re-render finished meanwhile), so neither change is lost."""
    if not merge:
        return merge
    with _store().session() as s:
        page = s.get(Page, page_id)
        current = s.get(Render, page.current_render_id) if page.current_render_id else None
        if (current is None or current.id == merge["based_on"] or current.status != RunStatus.succeeded
                or not (current.outputs or {}).get("flats")):
            return merge  # unchanged, or nothing better to merge onto (the store decides what is shown)
        current_id, key = current.id, current.outputs["flats"]
    base = _base_flats(key, result.size)
    if base is None:
        return merge
    flats = merge_panel(base, np.asarray(result.flats), PagePanel.from_dict(merge["panel"]))
    result.flats = Image.fromarray(flats, "RGB")
    result.composite = Image.fromarray(multiply(flats, np.asarray(result.lines)), "RGB")
    log.info("panel re-render of page %s merged onto render %s instead of %s", page_id, current_id, merge["based_on"])
    return {**merge, "based_on": current_id}


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
        pass


@app.task(name=queue.TASK_INGEST, bind=True, max_retries=8)
def ingest_page(self, page_id: int) -> dict | None:
    """Detect the panels of a new page (unless it has some) and store them for review and editing."""

    try:
        with _store().session() as s:
            page = s.get(Page, page_id)
            if page is None or page.source_key is None:
                return None
            if s.scalar(sa.select(sa.func.count(Panel.id)).where(Panel.page_id == page_id)):
                return {"page_id": page_id, "panels": "kept"}
            key, name = page.source_key, page.source_name
            direction = (page.direction or page.batch.direction).value
        try:
            img = _open_stored(key, name)
        except BadInput as exc:
            log.warning("page %s cannot be ingested: %s", page_id, exc)
            return {"page_id": page_id, "error": str(exc)}
        found = detect(img, direction)
        with _store().session() as s:
            _store_detected_panels(s, page_id, found)
    except TRANSIENT as exc:
        _retry_or_requeue(self, exc)
    return {"page_id": page_id, "panels": len(found)}
