"""Renders: queueing, atomic claims, progress, fenced idempotent results, retry and re-render.

Every delivery claims its render (one guarded UPDATE) and every later write carries the attempt,
so a redelivered or duplicate task leaves exactly one result; docs/architecture.md, "The job
store's guarantees", says how."""
from __future__ import annotations

import dataclasses
import operator
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from panelpaint.hints import validate_hints
from panelpaint.limits import RENDER_LEASE_SECONDS, SEED_MAX, TEXT_MAX
from panelpaint.panels import Direction
from panelpaint.store.batches import panel_of
from panelpaint.store.db import ROW_LOCK
from panelpaint.store.errors import IllegalTransition, InvalidInput, LeaseHeld, NotFound, StaleAttempt
from panelpaint.store.events import log_event
from panelpaint.store.schema import (
    Batch, Page, Panel, PanelCheck, Render, RenderStage, ReviewStatus, RunStatus, as_utc, utcnow,
)
from panelpaint.store.states import ACTIVE, FINAL, check_page, check_render, check_review, check_stage
from panelpaint.store.styles import require_style

DEFAULT_LEASE_SECONDS = float(RENDER_LEASE_SECONDS)
# The stages of a running render whose colouring is done: a render task has nothing to do for it.
HANDED_ON = frozenset({RenderStage.waiting, RenderStage.finishing})


@dataclasses.dataclass(frozen=True)
class Claim:
    """What a worker needs to run a claimed render; `attempt` fences all of its writes."""

    render_id: int
    attempt: int
    page_id: int
    panel_id: int | None
    batch_id: int
    studio_id: int
    version: int
    style_id: int | None
    seed: int | None
    hints: list[Any]
    source_key: str | None
    width: int | None
    height: int | None
    direction: Direction
    options: dict[str, Any]
    task_id: str | None
    takeover: bool  # True when a previous attempt was fenced out by this claim
    previous_worker: str | None


def _lock_render(session: Session, render_id: int) -> Render:
    render = session.get(Render, render_id, with_for_update=ROW_LOCK, populate_existing=True)
    if render is None:
        raise NotFound(f"render {render_id} does not exist")
    return render


def _scope(session: Session, render: Render) -> tuple[int, int]:
    """(studio_id, batch_id) of a render."""
    return session.execute(
        sa.select(Batch.studio_id, Batch.id).join(Page, Page.batch_id == Batch.id).where(Page.id == render.page_id)
    ).one()


def log_render(session: Session, kind: str, render: Render, **data: Any) -> None:
    """Append a render event, scoped to the render's studio, batch and page."""
    studio_id, batch_id = _scope(session, render)
    log_event(session, kind, studio_id=studio_id, batch_id=batch_id, page_id=render.page_id,
              render_id=render.id, data=data)


def _guarded_update(session: Session, render_id: int, seen_status: RunStatus, seen_attempt: int, /,
                    *also: sa.ColumnElement[bool], **values: Any) -> bool:
    """UPDATE the render only if it still has this status and attempt (and the conditions `also`
    still hold); True when it did."""
    result = session.execute(
        sa.update(Render)
        .where(Render.id == render_id, Render.status == seen_status, Render.attempt == seen_attempt, *also)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:
        session.get(Render, render_id, populate_existing=True)
        return True
    return False


def _sync_page(session: Session, render: Render, status: RunStatus, error: str | None = None) -> None:
    """Mirror a page-level render's status onto its page, when it is the page's current render."""
    if render.panel_id is not None:
        return
    page = session.get(Page, render.page_id, populate_existing=True)
    if page.current_render_id != render.id:
        return
    if page.status != status:
        check_page(page.status, status)
        page.status = status
    page.error = error
    if status == RunStatus.succeeded:
        page.panels_done = page.panels_total
    session.flush()


# --- queueing ----------------------------------------------------------------------------------

def queue_render(
    session: Session,
    page_id: int,
    panel_id: int | None = None,
    style_id: int | None = None,
    seed: int | None = None,
    hints: list[Any] | None = None,
    *,
    user_id: int | None = None,
    reason: str = "queued",
) -> Render:
    """A new queued render of a page (panel_id None) or of one of its panels, version = last + 1.

    Style defaults to panel's, then page's, then the batch's default; no seed means the canonical
    colouring, a seed (0..SEED_MAX) a variant of it (`pages.FinishOptions`); hints default to the
    panel's, and hints given must each lie on the panel (on some panel, for a page render of a page
    whose panels are known: see `check_hints`). Review status of what is being replaced goes back
    to pending (for a panel, the page's too: its result changes; the other panels keep theirs).
    Refused (`IllegalTransition`) while another render of the same page/panel is queued
    or running (a variant set's renders do not count: they never drive the page), for a cancelled
    batch or an unreadable page.
    The caller commits, then enqueues the Celery task with `render.task_id` and `render.id`.
    """
    page = lock_renderable_page(session, page_id)
    batch = page.batch
    panel = None
    if panel_id is not None:
        panel = session.get(Panel, panel_id)
        if panel is None or panel.page_id != page_id:
            raise NotFound(f"panel {panel_id} does not exist on page {page_id}")
    same = Render.panel_id.is_(None) if panel_id is None else Render.panel_id == panel_id
    active = session.scalar(sa.select(Render.id).where(Render.page_id == page_id, same, Render.variant_set_id.is_(None),
                                                       Render.status.in_(list(ACTIVE))).limit(1))
    if active is not None:
        raise IllegalTransition(f"render {active} of this {'panel' if panel else 'page'} is still queued or running")
    if panel is None:
        check_page(page.status, RunStatus.queued)
    require_style(session, batch.studio_id, style_id)
    if style_id is None:
        style_id = (panel.style_id if panel is not None else None) or page.style_id or batch.default_style_id
    seed = check_seed(seed)
    if hints is None:
        hints = list(panel.hints) if panel is not None else []
    else:
        hints = check_hints(page, panel, hints)
    version = next_version(session, page_id, panel_id)
    render = Render(page_id=page_id, panel_id=panel_id, version=version, style_id=style_id,
                    seed=seed, hints=hints, status=RunStatus.queued, attempt=0, task_id=str(uuid.uuid4()))
    session.add(render)
    session.flush()
    if panel is None:
        page.status = RunStatus.queued
        page.current_render_id = render.id
        page.error = None
        page.panels_done = 0
        reset_review(page)
        for p in page.panels:
            reset_review(p)
    else:
        reset_review(panel)
        # The page's result will change where this panel is: a decision on the page no longer holds.
        reset_review(page)
    session.flush()
    log_render(session, f"render.{reason}", render, version=version, panel_id=panel_id, style_id=style_id,
               seed=render.seed, user_id=user_id)
    return render


def lock_renderable_page(session: Session, page_id: int) -> Page:
    """The page, locked for update, when a render of it may be queued: `NotFound` when it does not
    exist, `IllegalTransition` when its batch is cancelled or its upload could not be read."""
    page = session.get(Page, page_id, with_for_update=ROW_LOCK, populate_existing=True)
    if page is None:
        raise NotFound(f"page {page_id} does not exist")
    if page.batch.cancelled:
        raise IllegalTransition(f"batch {page.batch_id} is cancelled")
    if page.source_key is None:
        raise IllegalTransition(f"page {page_id} has no readable source image: upload it again")
    return page


def queue_new_page(session: Session, page_id: int, *, user_id: int | None = None) -> Render:
    """The first render of a page just added to a batch: with the batch's `seed` option when it has
    one (every page of the batch is then that variant), else the canonical colouring."""
    page = session.get(Page, page_id)
    if page is None:
        raise NotFound(f"page {page_id} does not exist")
    return queue_render(session, page_id, seed=(page.batch.options or {}).get("seed"), user_id=user_id)


def check_seed(seed: Any) -> int | None:
    """`seed` as an int in 0..SEED_MAX, or None (the canonical colouring); `InvalidInput` otherwise."""
    if seed is None:
        return None
    try:
        value = None if isinstance(seed, bool) else operator.index(seed)
    except TypeError:
        value = None
    if value is None or not 0 <= value <= SEED_MAX:
        raise InvalidInput(f"seed must be a whole number from 0 to {SEED_MAX}, got {seed!r}")
    return value


def check_hints(page: Page, panel: Panel | None, hints: Any) -> list[dict]:
    """Hint dots ({x, y, color}, page pixels) normalised, each on `panel`'s box, or (a page render,
    `panel` None) on some panel of the page once its panels are known: the worker gives a page
    render's dots to the panels under them, so a dot on no panel would do nothing."""
    if not isinstance(hints, list):
        raise InvalidInput("hints must be a list of {x, y, color}")
    try:
        hints = validate_hints(hints)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    if page.width and page.height:  # known once the upload is decoded, before its panels are
        for i, dot in enumerate(hints):
            if not (0 <= dot["x"] < page.width and 0 <= dot["y"] < page.height):
                raise InvalidInput(f"hint {i + 1} at ({dot['x']:g}, {dot['y']:g}) is outside the "
                                   f"{page.width}x{page.height} page")
    boxes = [panel_of(p) for p in ([panel] if panel is not None else page.panels)]
    if not boxes:
        return hints
    for i, dot in enumerate(hints):
        if not any(b.contains(dot["x"], dot["y"]) for b in boxes):
            where = f"on panel {panel.position + 1}" if panel is not None else "on any panel"
            raise InvalidInput(f"hint {i + 1} at ({dot['x']:g}, {dot['y']:g}) is not {where}: "
                               "place it inside the panel it should colour")
    return hints


def next_version(session: Session, page_id: int, panel_id: int | None) -> int:
    """The version number the next render of the page (panel_id None) or of that panel gets."""
    same = Render.panel_id.is_(None) if panel_id is None else Render.panel_id == panel_id
    return session.scalar(sa.select(sa.func.coalesce(sa.func.max(Render.version), 0))
                          .where(Render.page_id == page_id, same)) + 1


def reset_review(target: Page | Panel) -> None:
    if target.review_status != ReviewStatus.pending:
        check_review(target.review_status, ReviewStatus.pending)
        target.review_status = ReviewStatus.pending


def rerender(
    session: Session,
    page_id: int,
    panel_id: int | None = None,
    style_id: int | None = None,
    seed: int | None = None,
    hints: list[Any] | None = None,
    *,
    user_id: int | None = None,
) -> Render:
    """A new version of a finished page or panel (e.g. another style or seed); reviews go back to pending."""
    return queue_render(session, page_id, panel_id, style_id, seed, hints, user_id=user_id, reason="rerender")


def retry_page(session: Session, page_id: int, *, user_id: int | None = None) -> Render:
    """Run a failed page again (failed -> queued) as a new render with the failed one's style, seed
    and hints. The failed render stays in the history with its error."""
    return _queue_again(session, page_id, RunStatus.failed, "failed: nothing to retry", "retry", user_id)


def _queue_again(session: Session, page_id: int, status: RunStatus, refusal: str, reason: str,
                 user_id: int | None) -> Render:
    """A new render of a page that is `status` (else `IllegalTransition`, "page N is X, not
    `refusal`"), with its last render's style, seed and hints."""
    page = session.get(Page, page_id, populate_existing=True)
    if page is None:
        raise NotFound(f"page {page_id} does not exist")
    check_page(page.status, RunStatus.queued)
    if page.status != status:
        raise IllegalTransition(f"page {page_id} is {page.status.value}, not {refusal}")
    last = session.get(Render, page.current_render_id) if page.current_render_id else None
    return queue_render(session, page_id, None, last.style_id if last else None, last.seed if last else None,
                        list(last.hints) if last else None, user_id=user_id, reason=reason)


def skip_coloured(session: Session, page_id: int, share: float) -> Render | None:
    """Mark a page that arrived in colour "already coloured: skipped" instead of colouring it: its
    first render, while still queued and never claimed, becomes skipped, and so does the page.
    None when it is too late (a worker claimed it: it is coloured after all) or nothing is queued."""
    page = session.get(Page, page_id, with_for_update=ROW_LOCK, populate_existing=True)
    if page is None or page.status != RunStatus.queued or page.current_render_id is None:
        return None
    render = session.get(Render, page.current_render_id, populate_existing=True)
    if render.status != RunStatus.queued or render.attempt != 0 or render.panel_id is not None:
        return None
    check_render(render.status, RunStatus.skipped)
    if not _guarded_update(session, render.id, RunStatus.queued, 0, status=RunStatus.skipped, finished_at=utcnow()):
        return None
    _sync_page(session, render, RunStatus.skipped)
    log_render(session, "render.skipped", render, reason="already coloured", coloured_share=round(share, 3))
    return render


def colour_anyway(session: Session, page_id: int, *, user_id: int | None = None) -> Render:
    """Colour a page that was skipped as already coloured (skipped -> queued): a new render with
    the skipped one's style and seed. `IllegalTransition` unless the page was skipped."""
    return _queue_again(session, page_id, RunStatus.skipped, "skipped as already coloured", "colour_anyway",
                        user_id)


# --- claims ------------------------------------------------------------------------------------

# A page whose panels await a person's check (`panelpaint.store.panel_edits`) is not coloured yet.
NOT_HELD = sa.or_(Page.panel_check.is_(None), Page.panel_check != PanelCheck.awaiting)


def held(session: Session, page_id: int) -> bool:
    """True while the page is held for its panel check (read fresh: a confirm may have just landed)."""
    return session.scalar(sa.select(Page.panel_check).where(Page.id == page_id)) == PanelCheck.awaiting


def _claim_locked(
    session: Session, render: Render, worker: str, max_attempts: int, lease_seconds: float,
    task_id: str | None, wait_for_lease: bool,
) -> Claim | None:
    if max_attempts < 1:
        raise InvalidInput(f"max_attempts must be at least 1, got {max_attempts}")
    status, attempt = render.status, render.attempt
    if status in FINAL:
        return None
    now = utcnow()
    batch = session.scalar(sa.select(Batch).join(Page, Page.batch_id == Batch.id).where(Page.id == render.page_id)
                           .execution_options(populate_existing=True))
    if batch.cancelled:
        check_render(status, RunStatus.cancelled)
        if _guarded_update(session, render.id, status, attempt, status=RunStatus.cancelled, finished_at=now,
                           error="cancelled"):
            _sync_page(session, render, RunStatus.cancelled, None)
            log_render(session, "render.cancelled", render, attempt=attempt)
        return None
    if status == RunStatus.queued and render.panel_id is None and render.variant_set_id is None and held(
            session, render.page_id):
        return None  # held for its panel check: confirming the panels sends the render again
    takeover = status == RunStatus.running
    if takeover and render.stage in HANDED_ON:
        return None  # coloured and handed to finishing: not lost, and not this task's to redo
    if takeover:
        beat = as_utc(render.heartbeat_at or render.started_at) or now
        left = lease_seconds - (now - beat).total_seconds()
        if left > 0:
            if wait_for_lease:
                raise LeaseHeld(render.id, left)
            return None
    if attempt + 1 > max_attempts:
        error = f"gave up after {attempt} attempt{'s' if attempt != 1 else ''}"
        check_render(status, RunStatus.failed)
        if _guarded_update(session, render.id, status, attempt, status=RunStatus.failed, finished_at=now,
                           error=error):
            _sync_page(session, render, RunStatus.failed, error)
            log_render(session, "render.gave_up", render, attempt=attempt, max_attempts=max_attempts)
        return None
    check_render(status, RunStatus.running)
    previous = render.worker
    if not _guarded_update(
        session, render.id, status, attempt, status=RunStatus.running, attempt=attempt + 1, worker=worker[:200],
        started_at=now, heartbeat_at=now, finished_at=None, error=None, task_id=task_id or render.task_id,
        stage=RenderStage.colouring, handoff_key=None, sent_at=None,
    ):
        return None  # another claimer changed the row first
    _sync_page(session, render, RunStatus.running, None)
    log_render(session, "render.claimed", render, attempt=attempt + 1, worker=worker, takeover=takeover,
               previous_worker=previous if takeover else None)
    page = render.page
    return Claim(
        render_id=render.id, attempt=render.attempt, page_id=page.id, panel_id=render.panel_id, batch_id=batch.id,
        studio_id=batch.studio_id, version=render.version, style_id=render.style_id, seed=render.seed,
        hints=list(render.hints or []), source_key=page.source_key, width=page.width, height=page.height,
        direction=page.direction or batch.direction, options=dict(batch.options or {}),
        task_id=render.task_id, takeover=takeover, previous_worker=previous if takeover else None,
    )


def claim_render(
    session: Session,
    render_id: int,
    worker: str,
    max_attempts: int,
    *,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    task_id: str | None = None,
) -> Claim | None:
    """Claim one render for `worker` (the Celery task knows the render id). Commit right after.

    Returns the `Claim` (attempt incremented), or None when there is nothing to do: the render is
    finished, cancelled (its batch was), coloured and handed to finishing, was just claimed by
    someone else, or has used up `max_attempts` (then it is marked failed). Raises `LeaseHeld`
    when it is colouring under a live lease (retry the task after `retry_in` seconds) and
    `NotFound` for an unknown id.
    """
    render = _lock_render(session, render_id)
    return _claim_locked(session, render, worker, max_attempts, lease_seconds, task_id, wait_for_lease=True)


def claim_following(
    session: Session,
    claim: Claim,
    worker: str,
    max_attempts: int,
    *,
    limit: int,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
) -> list[Claim]:
    """Claim up to `limit` more queued page renders of `claim`'s batch with the same style and seed, from
    the pages that follow `claim`'s page in reading order: a render worker colours their panels
    together with its own in one forward pass. Commit right after.

    Only renders that are each page's current render, still queued and never tried are taken
    (SKIP LOCKED on PostgreSQL; the guarded UPDATE decides on SQLite), so no render is ever taken
    from another worker, and a page that failed or killed its worker before is coloured alone.
    Each taken render counts an attempt and keeps its own `task_id`: its own message, arriving
    later, meets a live lease (`LeaseHeld`: try again later, taking over only if this worker died)
    or a finished render (nothing to do).
    """
    if limit < 1 or claim.panel_id is not None or claim.style_id is None:
        return []
    position = session.scalar(sa.select(Page.position).where(Page.id == claim.page_id))
    q = (sa.select(Render.id).join(Page, Render.page_id == Page.id)
         .where(Page.batch_id == claim.batch_id, Page.position > position, Page.current_render_id == Render.id,
                Render.status == RunStatus.queued, Render.panel_id.is_(None), Render.style_id == claim.style_id,
                # The seed moves the style code inside the one forward pass: only equal seeds share it.
                Render.seed.is_(None) if claim.seed is None else Render.seed == claim.seed,
                Render.attempt == 0, NOT_HELD)
         .order_by(Page.position, Render.id).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True, of=Render, key_share=True)
    taken = []
    for render_id in list(session.scalars(q)):
        render = session.get(Render, render_id, populate_existing=True)
        got = _claim_locked(session, render, worker, max_attempts, lease_seconds, None, wait_for_lease=False)
        if got is not None:
            taken.append(got)
    return taken


# --- fenced writes by the worker ---------------------------------------------------------------

def _fenced(session: Session, render_id: int, attempt: int) -> Render:
    """The render after a guarded write matched nothing: raise `StaleAttempt` (or `NotFound`)."""
    render = session.get(Render, render_id, populate_existing=True)
    if render is None:
        raise NotFound(f"render {render_id} does not exist")
    raise StaleAttempt(render_id, attempt, render.attempt, render.status.value)


def set_progress(session: Session, render_id: int, attempt: int, panels_done: int, panels_total: int) -> None:
    """Record progress and renew the lease (call after every panel). Raises `StaleAttempt` when this
    attempt has been fenced out or the render is no longer running: the worker must stop."""
    if panels_total < 0 or not 0 <= panels_done <= max(panels_total, 0):
        raise InvalidInput(f"progress {panels_done}/{panels_total} is out of range")
    if not _guarded_update(session, render_id, RunStatus.running, attempt, heartbeat_at=utcnow()):
        _fenced(session, render_id, attempt)
    render = session.get(Render, render_id)
    if render.panel_id is None:
        page = session.get(Page, render.page_id)
        if page.current_render_id == render.id:
            page.panels_done, page.panels_total = panels_done, panels_total
            session.flush()


def renew_lease(session: Session, render_id: int, attempt: int) -> bool:
    """A colouring attempt says it is alive (before a long model call): its lease starts again.
    False when the attempt was fenced out or is no longer colouring (the worker drops it)."""
    return _guarded_update(session, render_id, RunStatus.running, attempt, Render.stage == RenderStage.colouring,
                           heartbeat_at=utcnow())


def hand_off(session: Session, render_id: int, attempt: int, handoff_key: str, panels_total: int, *,
             together: list[int], panels: int) -> None:
    """The render worker stored `attempt`'s colours under `handoff_key` and is about to queue their
    finishing: colouring -> waiting (the lease renewed, the task counted as sent), the page shows
    its panel count, and `render.coloured` logs that the attempt was coloured in one model call
    with the renders `together` (its own id included), `panels` panels in all.

    Repeating it for the same attempt and key is a no-op (a retried commit); `StaleAttempt` when
    the attempt was fenced out or is no longer colouring."""
    if panels_total < 0:
        raise InvalidInput(f"panel count {panels_total} is out of range")
    check_stage(RenderStage.colouring, RenderStage.waiting)
    now = utcnow()
    if not _guarded_update(session, render_id, RunStatus.running, attempt, Render.stage == RenderStage.colouring,
                           stage=RenderStage.waiting, handoff_key=handoff_key, heartbeat_at=now, sent_at=now):
        render = session.get(Render, render_id, populate_existing=True)
        if (render is not None and render.attempt == attempt and render.status == RunStatus.running
                and render.handoff_key == handoff_key):
            return
        _fenced(session, render_id, attempt)
    render = session.get(Render, render_id)
    if render.panel_id is None:
        page = session.get(Page, render.page_id)
        if page.current_render_id == render.id:
            page.panels_done, page.panels_total = 0, panels_total
            session.flush()
    log_render(session, "render.coloured", render, attempt=attempt, together=list(together), panels=int(panels))


def start_finishing(session: Session, render_id: int, attempt: int) -> Render:
    """An io worker starts finishing `attempt`: waiting -> finishing, and the lease renewed (from
    now on a silence longer than the lease means the finishing stalled). A delivery that finds the
    attempt finishing already (a redelivery) goes on with it. `StaleAttempt` when the attempt was
    fenced out, is not running, or was never handed off."""
    check_stage(RenderStage.waiting, RenderStage.finishing)
    if not _guarded_update(session, render_id, RunStatus.running, attempt,
                           Render.stage.is_distinct_from(RenderStage.colouring),
                           stage=RenderStage.finishing, heartbeat_at=utcnow()):
        _fenced(session, render_id, attempt)
    return session.get(Render, render_id)


def complete_render(
    session: Session,
    render_id: int,
    attempt: int,
    outputs: dict[str, str],
    timings: dict[str, float] | None = None,
    model_version: str | None = None,
    worker: str | None = None,
    *,
    degraded: str | None = None,
    based_on: int | None = None,
) -> Render:
    """Store the result of `attempt` (outputs: kind -> storage key): running -> succeeded.

    A panel re-render's outputs are the whole page (the worker merged the panel into the page's
    result `based_on`); it becomes the page's current result (see `_promote_panel_render`).
    Idempotent: repeating it for the same attempt returns the stored render unchanged (the first
    result wins). Raises `StaleAttempt` when the attempt was fenced out or the render ended otherwise.
    """
    if not isinstance(outputs, dict) or not outputs:
        raise InvalidInput("a completed render needs at least one output")
    now = utcnow()
    values: dict[str, Any] = dict(status=RunStatus.succeeded, outputs=dict(outputs), timings=dict(timings or {}),
                                  finished_at=now, heartbeat_at=now, error=None)
    if model_version is not None:
        values["model_version"] = model_version[:64]
    if worker is not None:
        values["worker"] = worker[:200]
    if degraded is not None:
        values["degraded"] = degraded[:200]
    check_render(RunStatus.running, RunStatus.succeeded)
    if not _guarded_update(session, render_id, RunStatus.running, attempt, **values):
        render = session.get(Render, render_id, populate_existing=True)
        if render is not None and render.attempt == attempt and render.status == RunStatus.succeeded:
            return render
        _fenced(session, render_id, attempt)
    render = session.get(Render, render_id)
    _sync_page(session, render, RunStatus.succeeded, None)
    log_render(session, "render.succeeded", render, attempt=attempt, worker=render.worker, timings=render.timings,
               degraded=render.degraded, based_on=based_on)
    if render.panel_id is not None:
        _promote_panel_render(session, render, based_on)
    return render


def _promote_panel_render(session: Session, render: Render, based_on: int | None) -> None:
    """Make a finished panel re-render the page's current result, when that is still right.

    Only over a finished page (status succeeded: no page render is queued or running) whose result
    is the one the panel was merged onto (`based_on`); a panel rendered as a whole page for want of
    a base (`based_on` None) only replaces an older result. Otherwise a newer result would be lost,
    so the render is kept in the history and the reason logged. Reviews are not touched here:
    queueing the panel render already reset that panel's review and kept the others'.
    """
    page = session.get(Page, render.page_id, with_for_update=ROW_LOCK, populate_existing=True)
    current = page.current_render_id
    if page.status != RunStatus.succeeded:
        reason = f"page is {page.status.value}"
    elif based_on is not None and current != based_on:
        reason = f"the page's result changed (render {current}) after this panel was merged onto render {based_on}"
    elif based_on is None and current is not None and current > render.id:
        reason = f"the page has a newer result (render {current})"
    else:
        page.current_render_id = render.id
        page.error = None
        page.panels_done = page.panels_total
        session.flush()
        log_render(session, "render.current", render, panel_id=render.panel_id, replaced=current)
        return
    log_render(session, "render.not_current", render, panel_id=render.panel_id, reason=reason)


def fail_render(
    session: Session,
    render_id: int,
    attempt: int,
    error: str,
    retryable: bool = False,
    *,
    max_attempts: int | None = None,
) -> Render:
    """Record that `attempt` failed with `error`. Not retryable: running -> failed. Retryable:
    running -> queued (the worker then retries the task, whose next claim counts an attempt),
    unless `max_attempts` is given and reached, then failed ("gave up after N attempts: ...").

    Idempotent for the same attempt (returns the render); `StaleAttempt` when fenced out.
    """
    error = (str(error) or "failed")[:TEXT_MAX]
    now = utcnow()
    give_up = retryable and max_attempts is not None and attempt >= max_attempts
    if give_up:
        error = f"gave up after {attempt} attempts: {error}"[:TEXT_MAX]
    target = RunStatus.queued if retryable and not give_up else RunStatus.failed
    check_render(RunStatus.running, target)
    values: dict[str, Any] = dict(status=target, error=error, heartbeat_at=now)
    if target == RunStatus.failed:
        values["finished_at"] = now
    else:  # the caller sends the render task again right after the commit
        values.update(stage=None, handoff_key=None, sent_at=now)
    if not _guarded_update(session, render_id, RunStatus.running, attempt, **values):
        render = session.get(Render, render_id, populate_existing=True)
        # Only the same write repeated is a no-op: a render the janitor or a takeover moved on,
        # under the same attempt number, fences this one out.
        if render is not None and render.attempt == attempt and render.status == target and render.error == error:
            return render
        _fenced(session, render_id, attempt)
    render = session.get(Render, render_id)
    _sync_page(session, render, target, error)
    log_render(session, "render.failed" if target == RunStatus.failed else "render.requeued", render,
               attempt=attempt, error=error, retryable=retryable)
    return render


def acknowledge_cancel(session: Session, render_id: int, attempt: int) -> Render:
    """The worker saw `is_cancelled` and stopped: running -> cancelled. Idempotent; `StaleAttempt` when fenced."""
    now = utcnow()
    if not _guarded_update(session, render_id, RunStatus.running, attempt, status=RunStatus.cancelled,
                           finished_at=now, error="cancelled"):
        render = session.get(Render, render_id, populate_existing=True)
        if render is not None and render.attempt == attempt and render.status == RunStatus.cancelled:
            return render
        _fenced(session, render_id, attempt)
    render = session.get(Render, render_id)
    _sync_page(session, render, RunStatus.cancelled, None)
    log_render(session, "render.cancelled", render, attempt=attempt)
    return render


def hold_render(session: Session, render_id: int, attempt: int) -> Render:
    """The worker found, detecting the page's panels itself, that the page is now held for its
    panel check: running -> queued, unclaimed until the panels are confirmed (the attempt stays
    counted). Idempotent; `StaleAttempt` when fenced."""
    check_render(RunStatus.running, RunStatus.queued)
    if not _guarded_update(session, render_id, RunStatus.running, attempt, status=RunStatus.queued,
                           stage=None, handoff_key=None, error=None, heartbeat_at=utcnow()):
        render = session.get(Render, render_id, populate_existing=True)
        if render is not None and render.attempt == attempt and render.status == RunStatus.queued:
            return render
        _fenced(session, render_id, attempt)
    render = session.get(Render, render_id)
    _sync_page(session, render, RunStatus.queued, None)
    log_render(session, "render.held", render, attempt=attempt)
    return render
