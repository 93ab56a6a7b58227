"""Event log append-only in the database too: a trigger refuses any UPDATE of an event row.

The ORM guards in panelpaint.store.events catch changes made through a Session; this catches
raw SQL as well. DELETE stays possible so that deleting a studio or batch can cascade.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 15:16:00
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MESSAGE = "the event log is append-only"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"CREATE TRIGGER event_no_update BEFORE UPDATE ON event "
                   f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END")
        return
    op.execute(f"CREATE FUNCTION event_append_only() RETURNS trigger LANGUAGE plpgsql AS "
               f"$$ BEGIN RAISE EXCEPTION '{MESSAGE}'; END $$")
    op.execute("CREATE TRIGGER event_no_update BEFORE UPDATE ON event "
               "FOR EACH ROW EXECUTE FUNCTION event_append_only()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS event_no_update")
        return
    op.execute("DROP TRIGGER IF EXISTS event_no_update ON event")
    op.execute("DROP FUNCTION IF EXISTS event_append_only()")
