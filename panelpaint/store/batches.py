"""Batches, pages and panels: creating them, studio-scoped queries, progress and cancellation.

Every query a web request makes takes the studio id, and rows of other studios are returned as
None (never "forbidden"), so one studio cannot even learn another's ids exist.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from panelpaint.limits import BATCHES_LISTED_MAX, NAME_MAX, TEXT_MAX
from panelpaint.panels import Direction
from panelpaint.panels import Panel as PanelModel
from panelpaint.store.db import ROW_LOCK
from panelpaint.store.errors import IllegalTransition, InvalidInput, NotFound
from panelpaint.store.events import log_event
from panelpaint.store.schema import (
    Batch, Page, Panel, PanelCheck, Render, Review, ReviewStatus, RunStatus, Upload, User, utcnow,
)
from panelpaint.store.states import check_page, check_render
from panelpaint.store.storage import validate_key
from panelpaint.store.styles import require_style

UNREADABLE = "the uploaded file could not be read as an image"
# Batch.options key: true holds every page after panel detection until a person confirms its boxes;
# false holds none (a style preview); absent, a page detection was unsure of is held
# (PANELPAINT_PANEL_CHECK_BELOW).
CHECK_PANELS = "check_panels"
PREVIEW_OPTION = "preview_style_id"  # in Batch.options: marks a one-page style preview batch


def _direction(value: Direction | str | None) -> Direction | None:
    if value is None:
        return None
    try:
        return Direction(value)
    except ValueError:
        raise InvalidInput(f"reading direction must be 'ltr' or 'rtl', not {value!r}") from None


def lock_batch(session: Session, batch_id: int) -> Batch:
    """The batch row, locked for update on PostgreSQL (SQLite already serialises writers)."""
    batch = session.get(Batch, batch_id, with_for_update=ROW_LOCK, populate_existing=True)
    if batch is None:
        raise NotFound(f"batch {batch_id} does not exist")
    return batch


def create_batch(
    session: Session,
    studio_id: int,
    user_id: int | None,
    name: str,
    default_style_id: int | None = None,
    direction: Direction | str = Direction.ltr,
    options: Mapping[str, Any] | None = None,
) -> Batch:
    """A new, empty batch of a studio. The user and the default style must belong to the studio."""
    name = (name or "").strip()
    if not name or len(name) > NAME_MAX:
        raise InvalidInput(f"batch name must have 1 to {NAME_MAX} characters")
    if user_id is not None:
        user = session.get(User, user_id)
        if user is None or user.studio_id != studio_id:
            raise NotFound(f"user {user_id} does not exist")
    require_style(session, studio_id, default_style_id)
    batch = Batch(
        studio_id=studio_id, name=name, created_by_id=user_id, default_style_id=default_style_id,
        direction=_direction(direction) or Direction.ltr, options=dict(options or {}),
    )
    session.add(batch)
    session.flush()
    log_event(session, "batch.created", studio_id=studio_id, batch_id=batch.id,
              data={"name": name, "user_id": user_id})
    return batch


def add_page(
    session: Session,
    batch_id: int,
    source_name: str,
    source_key: str | None,
    width: int | None,
    height: int | None,
    error: str | None = None,
    *,
    style_id: int | None = None,
    direction: Direction | str | None = None,
) -> Page:
    """Append a page to a batch (next position). With no `source_key` or with an `error`, the page is
    stored failed with that message (an unreadable upload), so the rest of the batch carries on."""
    batch = lock_batch(session, batch_id)
    if batch.cancelled:
        raise IllegalTransition(f"batch {batch_id} is cancelled")
    require_style(session, batch.studio_id, style_id)
    if source_key is not None:
        validate_key(source_key)
        if not error and (not width or not height or width <= 0 or height <= 0):
            raise InvalidInput(f"page size must be positive, got {width}x{height}")
    failed = bool(error) or source_key is None
    position = session.scalar(sa.select(sa.func.coalesce(sa.func.max(Page.position), -1))
                              .where(Page.batch_id == batch_id)) + 1
    page = Page(
        batch_id=batch_id, position=position, source_name=(source_name or "")[:255] or f"page {position + 1}",
        source_key=source_key, width=width, height=height, style_id=style_id, direction=_direction(direction),
        status=RunStatus.failed if failed else RunStatus.queued,
        error=(error or UNREADABLE)[:TEXT_MAX] if failed else None,
        panel_check=PanelCheck.awaiting if not failed and (batch.options or {}).get(CHECK_PANELS) is True else None,
    )
    session.add(page)
    session.flush()
    log_event(session, "page.failed" if failed else "page.added", studio_id=batch.studio_id, batch_id=batch_id,
              page_id=page.id, data={"source_name": page.source_name, **({"error": page.error} if failed else {})})
    return page


def _clean_panel(raw: PanelModel | Mapping[str, Any], page: Page) -> tuple[PanelModel, list, int | None]:
    """A panel to store: its geometry (a `panelpaint.panels.Panel`, or its dict), checked against
    the page, with the store's own hints and style override (dict keys `hints`, `style_id`)."""
    extra = {} if isinstance(raw, PanelModel) else raw
    try:
        panel = raw if isinstance(raw, PanelModel) else PanelModel.from_dict(raw)
    except ValueError as exc:
        raise InvalidInput(f"{exc}: {dict(raw)!r}") from None
    x, y, w, h = panel.bbox
    if x < 0 or y < 0:
        raise InvalidInput(f"panel geometry out of range: x={x} y={y} w={w} h={h}")
    if page.width and page.height and (x + w > page.width or y + h > page.height):
        raise InvalidInput(f"panel {x},{y} {w}x{h} lies outside the {page.width}x{page.height} page")
    return panel, list(extra.get("hints") or []), extra.get("style_id")


def set_panels(session: Session, page_id: int, panels: Iterable[PanelModel | Mapping[str, Any]]) -> list[Panel]:
    """Replace a page's panels with `panels`, each a `panelpaint.panels.Panel` or its dict
    ({bbox, polygon?, order?}, plus the store's own hints? and style_id?), numbered by `order` as
    given (else in list order). Refused once any panel has a render or review, so detection on a
    redelivered task may run again but never destroys history."""
    page = session.get(Page, page_id, with_for_update=ROW_LOCK, populate_existing=True)
    if page is None:
        raise NotFound(f"page {page_id} does not exist")
    given = list(panels)
    cleaned = [_clean_panel(p, page) for p in given]
    for _, _, style_id in cleaned:
        require_style(session, page.batch.studio_id, style_id)
    # Without an order of their own, panels keep the order they were given in.
    ordered = [c for _, c in sorted(enumerate(cleaned), key=lambda ic: _given_order(given[ic[0]], ic[0]))]
    old_ids = list(session.scalars(sa.select(Panel.id).where(Panel.page_id == page_id)))
    if old_ids:
        used = session.scalar(sa.select(sa.func.count()).select_from(Render).where(Render.panel_id.in_(old_ids)))
        used += session.scalar(sa.select(sa.func.count()).select_from(Review).where(Review.panel_id.in_(old_ids)))
        if used:
            raise IllegalTransition(f"page {page_id}: its panels already have renders or reviews")
        for panel in list(page.panels):
            session.delete(panel)
        session.flush()
    new = []
    for i, (panel, hints, style_id) in enumerate(ordered):
        x, y, w, h = panel.bbox
        new.append(Panel(page_id=page_id, position=i, x=x, y=y, w=w, h=h, polygon=[list(pt) for pt in panel.polygon],
                         hints=hints, style_id=style_id, confidence=panel.confidence))
    session.add_all(new)
    page.panels_total = len(new)
    session.flush()
    session.expire(page, ["panels"])
    log_event(session, "page.panels", studio_id=page.batch.studio_id, batch_id=page.batch_id, page_id=page_id,
              data={"count": len(new)})
    return new


def _given_order(raw: PanelModel | Mapping[str, Any], index: int) -> tuple[int, int]:
    order = raw.order if isinstance(raw, PanelModel) else raw.get("order")
    return (0, int(order)) if order is not None else (1, index)


def set_prepared(session: Session, page_id: int, prepared: Mapping[str, Any] | None, *,
                 panels: list[dict] | None = None) -> bool:
    """Record the network inputs cut ahead of the page's render ({"key", "work_size", "panels"}),
    or None to forget them. With `panels`, only while those are still the page's panels (as
    dicts {order, bbox, polygon}); True when recorded."""
    page = session.get(Page, page_id, with_for_update=ROW_LOCK, populate_existing=True)
    if page is None:
        raise NotFound(f"page {page_id} does not exist")
    if prepared is not None:
        if not isinstance(prepared.get("key"), str) or not isinstance(prepared.get("work_size"), int):
            raise InvalidInput("prepared inputs need a storage key and a work size")
        validate_key(prepared["key"])
        if panels is not None and panel_dicts(page) != panels:
            return False
    page.prepared = dict(prepared) if prepared is not None else None
    session.flush()
    return True


def panel_of(row: Panel) -> PanelModel:
    """A stored panel as the page pipeline, the API and the cut files describe it."""
    return PanelModel((row.x, row.y, row.w, row.h), [list(pt) for pt in row.polygon], row.position,
                      confidence=row.confidence if row.confidence is not None else 1.0)


def panel_dicts(page: Page) -> list[dict]:
    """A page's stored panels in reading order, as their geometry: [{order, bbox, polygon}]."""
    return [panel_of(p).geometry() for p in sorted(page.panels, key=lambda p: p.position)]


_UNSET: Any = object()


# --- studio-scoped queries ---------------------------------------------------------------------

def list_batches(session: Session, studio_id: int, *, limit: int = 100, offset: int = 0) -> list[Batch]:
    """A studio's batches, newest first."""
    return list(session.scalars(
        sa.select(Batch).where(Batch.studio_id == studio_id).order_by(Batch.id.desc())
        .limit(max(1, min(limit, BATCHES_LISTED_MAX))).offset(max(0, offset))
    ))


def get_batch(session: Session, studio_id: int, batch_id: int) -> Batch | None:
    """The batch if it belongs to the studio, else None."""
    return session.scalar(sa.select(Batch).where(Batch.id == batch_id, Batch.studio_id == studio_id))


def get_page(session: Session, studio_id: int, page_id: int) -> Page | None:
    """The page if its batch belongs to the studio, else None."""
    return session.scalar(sa.select(Page).join(Batch).where(Page.id == page_id, Batch.studio_id == studio_id))


def pages_with_renders(session: Session, batch_id: int) -> list[Page]:
    """A batch's pages in order, with their current renders loaded into the session in the same
    go (two queries, whatever the number of pages), so `session.get(Render, page.current_render_id)`
    then finds each one without asking the database. Scope the batch first with `get_batch`."""
    return list(session.scalars(sa.select(Page).where(Page.batch_id == batch_id).order_by(Page.position)
                                .options(selectinload(Page.current_render))))


def status_inputs(session: Session, batch_id: int) -> list[tuple]:
    """Everything a batch's status shows of its pages and their current renders, as plain rows in
    one query (no objects built): a page's fields, and its current render's id and status (a
    render's outputs are written once, with its final status). Unchanged rows, unchanged status."""
    return [tuple(row) for row in session.execute(
        sa.select(Page.id, Page.position, Page.source_name, Page.source_key.is_(None), Page.status, Page.error,
                  Page.review_status, Page.width, Page.height, Page.panels_done, Page.panels_total,
                  Page.panel_check, Page.layout_confidence, Page.thumbnails,
                  Page.current_render_id, Render.status, Render.stage, Render.started_at)
        .outerjoin(Render, Render.id == Page.current_render_id)
        .where(Page.batch_id == batch_id).order_by(Page.position))]


def list_renders(session: Session, studio_id: int, page_id: int, *, panel_id: int | None = _UNSET) -> list[Render]:
    """Renders of a studio's page, newest first; `panel_id` narrows to one panel (None: page-level)."""
    q = (sa.select(Render).join(Page, Render.page_id == Page.id).join(Batch)
         .where(Render.page_id == page_id, Batch.studio_id == studio_id))
    if panel_id is not _UNSET:
        q = q.where(Render.panel_id.is_(None) if panel_id is None else Render.panel_id == panel_id)
    return list(session.scalars(q.order_by(Render.id.desc())))


def get_render(session: Session, studio_id: int, render_id: int) -> Render | None:
    """The render if its batch belongs to the studio, else None."""
    return session.scalar(
        sa.select(Render).join(Page, Render.page_id == Page.id).join(Batch)
        .where(Render.id == render_id, Batch.studio_id == studio_id)
    )


def queue_rank(session: Session, batch_id: int) -> int:
    """How many older batches (of any studio: the queue is shared) still have work waiting: pages to
    be coloured, or archives not yet unpacked into pages. A batch's tasks are sent at this rank,
    so the queues serve batches oldest first (`panelpaint.queue.PRIORITY_STEPS`)."""
    waiting = sa.union(
        sa.select(Page.batch_id).where(Page.batch_id < batch_id, Page.status == RunStatus.queued),
        sa.select(Upload.batch_id).where(Upload.batch_id < batch_id,
                                         Upload.status.in_([RunStatus.queued, RunStatus.running]))).subquery()
    return session.scalar(sa.select(sa.func.count()).select_from(waiting))


@dataclasses.dataclass(frozen=True)
class BatchProgress:
    """Counts of a batch's pages by run status and review status, and panels done."""

    total: int
    queued: int
    running: int
    succeeded: int
    failed: int
    cancelled: int
    skipped: int  # arrived already coloured: not coloured again
    approved: int
    rejected: int
    review_pending: int  # succeeded pages not yet reviewed
    panels_done: int
    panels_total: int

    @property
    def finished(self) -> bool:
        """True when no page is queued or running."""
        return self.queued == 0 and self.running == 0

    @property
    def fraction(self) -> float:
        """Share of pages in a final state (0..1)."""
        return 1.0 if self.total == 0 else (self.total - self.queued - self.running) / self.total

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "finished": self.finished, "fraction": round(self.fraction, 4)}


def batch_progress(session: Session, batch_id: int) -> BatchProgress:
    """Summary counts of one batch (scope it first with `get_batch`)."""
    return batch_progress_many(session, [batch_id])[batch_id]


def batch_progress_many(session: Session, batch_ids: Iterable[int]) -> dict[int, BatchProgress]:
    """`batch_progress` of several batches in three queries (for a list page); ids map to progress."""
    ids = list(dict.fromkeys(batch_ids))
    status: dict[int, dict] = {i: {} for i in ids}
    review: dict[int, dict] = {i: {} for i in ids}
    panels: dict[int, tuple[int, int]] = {i: (0, 0) for i in ids}
    if ids:
        for bid, st, n in session.execute(sa.select(Page.batch_id, Page.status, sa.func.count())
                                          .where(Page.batch_id.in_(ids)).group_by(Page.batch_id, Page.status)):
            status[bid][st] = n
        for bid, rv, n in session.execute(
            sa.select(Page.batch_id, Page.review_status, sa.func.count())
            .where(Page.batch_id.in_(ids), Page.status == RunStatus.succeeded)
            .group_by(Page.batch_id, Page.review_status)
        ):
            review[bid][rv] = n
        for bid, done, total in session.execute(
            sa.select(Page.batch_id, sa.func.sum(Page.panels_done), sa.func.sum(Page.panels_total))
            .where(Page.batch_id.in_(ids)).group_by(Page.batch_id)
        ):
            panels[bid] = (int(done or 0), int(total or 0))
    out = {}
    for bid in ids:
        n = {st: status[bid].get(st, 0) for st in RunStatus}
        out[bid] = BatchProgress(
            total=sum(n.values()), queued=n[RunStatus.queued], running=n[RunStatus.running],
            succeeded=n[RunStatus.succeeded], failed=n[RunStatus.failed], cancelled=n[RunStatus.cancelled],
            skipped=n[RunStatus.skipped],
            approved=review[bid].get(ReviewStatus.approved, 0), rejected=review[bid].get(ReviewStatus.rejected, 0),
            review_pending=review[bid].get(ReviewStatus.pending, 0), panels_done=panels[bid][0],
            panels_total=panels[bid][1],
        )
    return out


# --- cancellation ------------------------------------------------------------------------------

def cancel_batch(session: Session, batch_id: int, *, user_id: int | None = None) -> list[str]:
    """Cancel a batch: its queued renders become cancelled at once (their Celery task ids are
    returned, for the caller to revoke after commit); running renders keep running until their
    worker sees `is_cancelled` before the next panel and calls `acknowledge_cancel`. Idempotent."""
    batch = lock_batch(session, batch_id)
    batch.cancelled = True
    # Archives still being unpacked stop at their next page (their worker finds them cancelled).
    session.execute(
        sa.update(Upload).where(Upload.batch_id == batch_id, Upload.status.in_([RunStatus.queued, RunStatus.running]))
        .values(status=RunStatus.cancelled, finished_at=utcnow(), updated_at=utcnow(), error="the batch was cancelled")
        .execution_options(synchronize_session=False))
    page_ids = sa.select(Page.id).where(Page.batch_id == batch_id).scalar_subquery()
    # A guarded UPDATE: on PostgreSQL it waits for a concurrent claim's row lock and re-checks the
    # status, so a render claimed a moment ago stays running (and its worker is told by the flag).
    cancelled = session.execute(
        sa.update(Render).where(Render.page_id.in_(page_ids), Render.status == RunStatus.queued)
        .values(status=RunStatus.cancelled, finished_at=utcnow(), error="cancelled")
        .returning(Render.id, Render.task_id)
        .execution_options(synchronize_session="fetch")
    ).all()
    check_render(RunStatus.queued, RunStatus.cancelled)
    for page in session.scalars(sa.select(Page).where(Page.batch_id == batch_id,
                                                      Page.status == RunStatus.queued)):
        check_page(page.status, RunStatus.cancelled)
        page.status = RunStatus.cancelled
    session.flush()
    log_event(session, "batch.cancelled", studio_id=batch.studio_id, batch_id=batch_id,
              data={"user_id": user_id, "renders_cancelled": [r.id for r in cancelled]})
    return [r.task_id for r in cancelled if r.task_id]


def is_cancelled(session: Session, render_id: int) -> bool:
    """True when the render was cancelled or its batch was: the worker checks this between panels."""
    row = session.execute(
        sa.select(Render.status, Batch.cancelled).join(Page, Render.page_id == Page.id).join(Batch)
        .where(Render.id == render_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"render {render_id} does not exist")
    return row[0] == RunStatus.cancelled or bool(row[1])
