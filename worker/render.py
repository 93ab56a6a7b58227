"""The render step (queue `render`, one process per GPU): claim pages, load their inputs, colour
them in one call, hand each off to finishing. A first attempt also claims the following pages of
its batch with the same style; a page tried before is coloured alone, and a fault is recorded on
its own page's render only. A render already coloured and waiting for finishing is left alone; a
database outage is waited out; it waits while the io queue is backed up."""
from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

from celery.exceptions import SoftTimeLimitExceeded
from PIL import Image
from sqlalchemy.orm import Session

from panelpaint import pages, queue
from panelpaint.settings import Settings
from panelpaint.store import batches, renders
from panelpaint.store.errors import LeaseHeld, NotFound
from worker import faults, signals
from worker.faults import BROKER_ERRORS, COLOURING, TRANSIENT, Fault, TryAgain, patiently
from worker.handoff import Geometry, Handoff, PanelMerge, save_handoff
from worker.ingest import remember_cut
from worker.inputs import load_inputs, prepare
from worker.outcome import Outcome
from worker.resources import Resources
from worker.runtime import WorkerColorizer

log = logging.getLogger(__name__)

GPU_BATCH_PAGES = 8  # render_batch_pages = 0 on a CUDA device
GPU_IO_BACKLOG = 32  # io_backlog = 0 beside a GPU
IO_WAIT_MAX = 60.0  # seconds a render task waits for a backed-up io queue before it returns anyway


@dataclass
class Job:
    """One claimed render inside a render task; `outcome` is set once it is handed off or ended."""

    claim: renders.Claim
    name: str = ""
    work_size: int = 0
    prepared: pages.PreparedPage | None = None
    merge: PanelMerge | None = None
    note: str | None = None
    colours: list[Image.Image] | None = None
    outcome: Outcome | None = None

    @contextlib.contextmanager
    def step(self, res: Resources, settings: Settings) -> Iterator[None]:
        """Run a step of this page; a fault is recorded on its render alone and ends the page."""
        with faults.recording(res, settings, self.claim.render_id, self.claim.attempt, COLOURING) as done:
            yield
        if done.outcome is not None:
            self.outcome = done.outcome


def pages_per_pass(settings: Settings, colorizer: WorkerColorizer) -> int:
    """How many pages a render task colours together: the setting, or 8 on a CUDA device and 1 elsewhere."""
    if settings.render_batch_pages:
        return settings.render_batch_pages
    return GPU_BATCH_PAGES if getattr(colorizer.device, "type", None) == "cuda" else 1


def io_backlog(settings: Settings, colorizer: WorkerColorizer) -> int:
    """Coloured pages that may wait to be finished before a render worker takes no new page: the
    setting, or `GPU_IO_BACKLOG` beside a GPU and one per core (at least 2) when it colours on the
    CPU, which it shares with the io pool: a page coloured ahead there is CPU the finishing of an
    older batch's pages does not get."""
    if settings.io_backlog:
        return settings.io_backlog
    if getattr(colorizer.device, "type", None) == "cuda":
        return GPU_IO_BACKLOG
    return max(2, settings.worker_concurrency or os.cpu_count() or 1)


def render(res: Resources, settings: Settings, render_id: int, *, worker: str, task_id: str | None) -> dict | None:
    """Colour one page (and the pages batched with it); hand each off to finishing.

    Returns None when there is nothing to do, else the render's outcome and each page's. Raises
    `TryAgain` while another worker's lease holds the render, or when the page went back to the
    queue; any other exception means nothing could be recorded (the task is tried again later).
    """
    t_start = time.perf_counter()
    try:
        # A running render is taken over only once its lease (renewed before colouring, at the
        # hand-off and after every panel) has expired. Celery's "redelivered" flag cannot tell a
        # dead holder from a live one whose message was merely restored after the visibility
        # timeout (a duplicate), so it is not trusted: a duplicate never steals a healthy render or
        # spends its attempts. Waited for through a database outage (nothing is held yet).
        claim = patiently(res, settings.task_soft_time_limit, renders.claim_render, render_id, worker,
                          settings.max_attempts, lease_seconds=settings.render_lease_seconds, task_id=task_id)
    except LeaseHeld as exc:
        raise TryAgain(None, max(0.5, exc.retry_in)) from None
    except NotFound:
        log.warning("render %s does not exist; dropping its task", render_id)
        return None
    if claim is None:
        return None  # finished, cancelled, handed to finishing, or out of attempts (then marked failed): ack
    runtime = res.runtime
    colorizer = runtime.colorizer
    jobs = [Job(claim)]
    # Only a first attempt takes companions: a page that was tried before (perhaps one that kills
    # its worker) is coloured alone, and companions are only ever first attempts.
    if claim.attempt == 1:
        more = pages_per_pass(settings, colorizer) - 1
        if more > 0:
            try:
                with res.store.session() as s:
                    jobs += [Job(c) for c in renders.claim_following(
                        s, claim, worker, settings.max_attempts, limit=more,
                        lease_seconds=settings.render_lease_seconds)]
            except TRANSIENT as exc:
                log.warning("render %s: could not claim following pages (%r); colouring it alone", render_id, exc)
    try:
        colour_jobs(res, settings, jobs, colorizer, runtime.model_version or colorizer.model_version, t_start)
    except SoftTimeLimitExceeded as exc:
        for job in jobs:
            if job.outcome is None:
                job.outcome = faults.settle(res, settings, job.claim.render_id, job.claim.attempt,
                                            Fault.TIME_LIMIT, exc, COLOURING)
    for job in jobs[1:]:
        if job.outcome is Outcome.REQUEUED:  # a companion's own message may be gone: send it again
            queue.enqueue_render(settings, job.claim.render_id, job.claim.task_id)
    if any(job.outcome is Outcome.HANDED_OFF for job in jobs):
        wait_for_io(settings, io_backlog(settings, colorizer))
    if jobs[0].outcome is Outcome.REQUEUED:
        raise TryAgain()
    return {"render_id": render_id, "status": jobs[0].outcome,
            "pages": {job.claim.render_id: job.outcome for job in jobs}}


def colour_jobs(res: Resources, settings: Settings, jobs: list[Job], colorizer: WorkerColorizer,
                model_version: str, t_start: float) -> None:
    """Prepare every claimed page, colour them all in one call, hand each off to finishing."""
    style_cache: dict[tuple[int, str | None], pages.Style] = {}
    for job in jobs:
        with job.step(res, settings):
            inputs = load_inputs(res, settings, job.claim, style_cache)
            loaded = time.perf_counter() - t_start  # claim and inputs, decoding included
            job.name, job.work_size = inputs.name, inputs.work_size
            signals.page_loaded.send(sender=job.claim.render_id, name=job.name)
            job.prepared, job.merge, job.note = prepare(job.claim, inputs)
            if inputs.cut is None and job.claim.panel_id is None and remember_cut(
                    res, settings, job.claim.page_id, job.prepared, job.work_size):
                # Detection here was unsure of the page: it waits for its panel check uncoloured.
                patiently(res, settings.task_soft_time_limit, renders.hold_render, job.claim.render_id,
                          job.claim.attempt)
                job.outcome = Outcome.HELD
                continue
            stage = "decode" if inputs.page is not None else "cut_load"
            job.prepared.timings.update({"claim_and_load": loaded, stage: inputs.load_seconds})
            t_start = time.perf_counter()  # a page batched after this one starts its clock here
    live = [j for j in jobs if j.outcome is None]
    if not live:
        return

    def before_colouring(s: Session) -> tuple[bool, list[Job]]:
        # Loading may have taken a while: each page's lease starts again before the model call.
        fenced = [j for j in live if not renders.renew_lease(s, j.claim.render_id, j.claim.attempt)]
        return batches.is_cancelled(s, live[0].claim.render_id), fenced  # one batch for all of them

    cancelled, fenced = patiently(res, settings.task_soft_time_limit, before_colouring)
    for job in fenced:
        log.warning("render %s attempt %s was taken over while loading; dropped", job.claim.render_id,
                    job.claim.attempt)
        job.outcome = Outcome.STALE
    live = [j for j in live if j.outcome is None]
    if not live:
        return
    if cancelled:
        for job in live:
            with job.step(res, settings):
                raise pages.Cancelled("cancelled before colouring")
        return
    for job in live:
        signals.page_colouring.send(sender=job.claim.render_id, name=job.name, panels=len(job.prepared.panels))
    colorizer.reset()
    by_size: dict[int, list[Job]] = {}  # pages of one batch share a work size; grouped anyway
    for job in live:
        by_size.setdefault(job.work_size, []).append(job)
    for size, group in by_size.items():
        for job, got in zip(group, _colour_group(res, settings, group, colorizer, size)):
            job.colours = got
    degraded = colorizer.degraded
    coloured = [j for j in live if j.outcome is None and j.colours is not None]
    together = [j.claim.render_id for j in coloured]
    panels = sum(len(j.prepared.panels) for j in coloured)
    for job in coloured:
        with job.step(res, settings):
            hand_off(res, settings, job, model_version, degraded, together, panels)


def _colour_group(res: Resources, settings: Settings, group: list[Job], colorizer: WorkerColorizer,
                  size: int) -> list[list[Image.Image] | None]:
    """The colours of a group of pages in one call; should that fail, page by page, so one bad
    page fails alone (None for a page that failed)."""
    try:
        return pages.colour_pages([j.prepared for j in group], colorizer, work_size=size, seed=group[0].claim.seed)
    except Exception as exc:  # noqa: BLE001 - triaged: the task's own faults pass on
        if faults.classify(exc) in (None, Fault.TIME_LIMIT):
            raise
        if len(group) == 1:
            with group[0].step(res, settings):
                raise
            return [None]
        log.warning("colouring %d pages together failed; colouring them one at a time", len(group), exc_info=True)
    colours: list[list[Image.Image] | None] = []
    for job in group:
        got = None
        with job.step(res, settings):
            (got,) = pages.colour_pages([job.prepared], colorizer, work_size=size, seed=job.claim.seed)
        colours.append(got)
    return colours


def batch_rank(res: Resources, batch_id: int) -> int:
    """The batch's rank now (`batches.queue_rank`); 0 (first) when the job store cannot say."""
    try:
        with res.store.reading() as s:
            return batches.queue_rank(s, batch_id)
    except TRANSIENT:
        return 0


def hand_off(res: Resources, settings: Settings, job: Job, model_version: str, degraded: str | None,
             together: list[int], panels: int) -> None:
    """Store a coloured page's panel colours for finishing and queue its finishing."""
    claim = job.claim
    if job.note:
        log.warning("render %s: %s", claim.render_id, job.note)
    handoff = Handoff(claim.render_id, claim.attempt, claim.source_key, job.name, Geometry.of(job.prepared),
                      claim.seed, model_version, job.prepared.timings,
                      "; ".join(x for x in (degraded, job.note) if x) or None, job.merge)
    # A page prepared without styles (none assigned) has no references: it is finished unmatched.
    key = save_handoff(res.storage, handoff, job.colours, job.prepared.references or None)
    # colouring -> waiting, the lease renewed; waited for through a database outage, since the
    # colours would be lost with the attempt (the page coloured again).
    patiently(res, settings.task_soft_time_limit, renders.hand_off, claim.render_id, claim.attempt, key,
              len(job.prepared.panels), together=together, panels=panels)
    try:
        queue.enqueue_finish(settings, claim.render_id, claim.attempt, key, rank=batch_rank(res, claim.batch_id))
    except BROKER_ERRORS as exc:
        # Recorded as waiting already: the janitor sends the finishing once the broker answers.
        log.warning("render %s: finishing not queued (%s); it is sent when the broker answers", claim.render_id,
                    faults.first_line(exc))
    job.outcome = Outcome.HANDED_OFF


def wait_for_io(settings: Settings, backlog: int) -> None:
    """Back-pressure: while more than `backlog` coloured pages wait to be finished, take no new
    page. Only finishing counts: new pages waiting for ingest or archives for unpacking (another
    studio's burst) never pause the renders (`queue.finishing_steps`)."""
    import redis

    deadline = time.monotonic() + min(IO_WAIT_MAX, settings.task_soft_time_limit / 2)
    while time.monotonic() < deadline:
        try:
            if queue.finishing_backlog(settings) <= backlog:
                return
        except redis.RedisError:
            return
        time.sleep(0.25)
