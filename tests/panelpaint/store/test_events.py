"""The event log: appended by the services, listed per studio, and never changed or deleted."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from panelpaint.store.errors import AppendOnlyViolation
from panelpaint.store.events import list_events, log_event
from panelpaint.store.schema import Event


def test_events_are_scoped_and_ordered(store, world):
    with store.session() as s:
        kinds = [e.kind for e in list_events(s, world.a.studio, batch_id=world.a.batch)]
        assert kinds == ["batch.created", "page.added", "page.added"]
        assert all(e.studio_id == world.b.studio for e in list_events(s, world.b.studio))
        first = list_events(s, world.a.studio, limit=1)[0]
        later = list_events(s, world.a.studio, after_id=first.id)
        assert later and all(e.id > first.id for e in later)
        ev = log_event(s, "custom", studio_id=world.a.studio, data={"k": 1})
        assert list_events(s, world.a.studio, kind="custom")[0].data == {"k": 1} and ev.id


def test_event_log_is_append_only(store, world):
    with store.session() as s:
        event_id = list_events(s, world.a.studio)[0].id
    with pytest.raises(AppendOnlyViolation):
        with store.session() as s:
            s.get(Event, event_id).kind = "rewritten"
    with pytest.raises(AppendOnlyViolation):
        with store.session() as s:
            s.delete(s.get(Event, event_id))
    with pytest.raises(AppendOnlyViolation):
        with store.session() as s:
            s.execute(sa.update(Event).values(kind="x"))
    with pytest.raises(AppendOnlyViolation):
        with store.session() as s:
            s.execute(sa.delete(Event).where(Event.id == event_id))
    with store.session() as s:
        assert s.get(Event, event_id).kind == "studio.created"


def test_database_refuses_raw_updates_of_events(store, world):
    with pytest.raises(sa.exc.DatabaseError, match="append-only"):
        with store.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE event SET kind = 'rewritten'")
    with store.session() as s:
        assert "rewritten" not in {e.kind for e in list_events(s, world.a.studio)}
