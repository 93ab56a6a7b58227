"""Panel check: each panel's detection confidence and when it was retired by an edit (kept for its
renders and reviews), and per page the layout's confidence and whether its panels await a person's
check before colouring (or were confirmed).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 10:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('panel', schema=None) as batch_op:
        batch_op.add_column(sa.Column('confidence', sa.Float(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('page', schema=None) as batch_op:
        batch_op.add_column(sa.Column('layout_confidence', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('panel_check', sa.Enum('awaiting', 'confirmed', name='panel_check',
                                                             native_enum=False, length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('page', schema=None) as batch_op:
        batch_op.drop_column('panel_check')
        batch_op.drop_column('layout_confidence')
    with op.batch_alter_table('panel', schema=None) as batch_op:
        batch_op.drop_column('retired_at')
        batch_op.drop_column('confidence')
