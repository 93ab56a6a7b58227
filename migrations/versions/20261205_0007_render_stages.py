"""Render stages: where a running render is (colouring, waiting for finishing, finishing), the key
of the colours handed to finishing, and when its current task was last sent (the janitor's guard).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 10:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('render', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stage', sa.Enum('colouring', 'waiting', 'finishing', name='render_stage',
                                                       native_enum=False, length=16), nullable=True))
        batch_op.add_column(sa.Column('handoff_key', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('render', schema=None) as batch_op:
        batch_op.drop_column('sent_at')
        batch_op.drop_column('handoff_key')
        batch_op.drop_column('stage')
