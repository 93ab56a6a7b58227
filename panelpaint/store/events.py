"""The append-only event log: what happened to which batch, page and render, and when.

`log_event` adds a row; nothing may change or remove one. The guard is enforced three times: a
`before_flush` hook refuses dirty or deleted `Event` objects, a `do_orm_execute` hook refuses
bulk `UPDATE`/`DELETE` statements on the event table issued through any ORM session, and a
database trigger (migration 0002) refuses an UPDATE even from raw SQL.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, ORMExecuteState

from panelpaint.limits import EVENTS_LISTED_MAX
from panelpaint.store.errors import AppendOnlyViolation
from panelpaint.store.schema import Event


def log_event(
    session: Session,
    kind: str,
    *,
    studio_id: int | None = None,
    batch_id: int | None = None,
    page_id: int | None = None,
    render_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> Event:
    """Append one event (e.g. kind="render.claimed") and return it (flushed, so it has an id)."""
    ev = Event(
        kind=kind, studio_id=studio_id, batch_id=batch_id, page_id=page_id, render_id=render_id,
        data=dict(data or {}),
    )
    session.add(ev)
    session.flush()
    return ev


def list_events(
    session: Session,
    studio_id: int,
    *,
    batch_id: int | None = None,
    page_id: int | None = None,
    render_id: int | None = None,
    kind: str | None = None,
    after_id: int | None = None,
    limit: int = 200,
) -> list[Event]:
    """Events of one studio, oldest first, optionally narrowed; `after_id` pages through a long log."""
    q = sa.select(Event).where(Event.studio_id == studio_id)
    if batch_id is not None:
        q = q.where(Event.batch_id == batch_id)
    if page_id is not None:
        q = q.where(Event.page_id == page_id)
    if render_id is not None:
        q = q.where(Event.render_id == render_id)
    if kind is not None:
        q = q.where(Event.kind == kind)
    if after_id is not None:
        q = q.where(Event.id > after_id)
    return list(session.scalars(q.order_by(Event.id).limit(max(1, min(limit, EVENTS_LISTED_MAX)))))


@sa_event.listens_for(Session, "before_flush")
def _refuse_event_changes(session: Session, _ctx, _instances) -> None:  # noqa: ANN001
    for obj in session.deleted:
        if isinstance(obj, Event):
            raise AppendOnlyViolation(f"event {obj.id} may not be deleted: the event log is append-only")
    for obj in session.dirty:
        if isinstance(obj, Event) and session.is_modified(obj, include_collections=False):
            raise AppendOnlyViolation(f"event {obj.id} may not be changed: the event log is append-only")


@sa_event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_event_changes(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if table is not None and table.name == Event.__tablename__:
        raise AppendOnlyViolation("the event log is append-only: bulk UPDATE/DELETE of events is refused")
