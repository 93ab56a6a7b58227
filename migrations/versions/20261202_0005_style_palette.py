"""Styles carry a colour key: their palette (editable), whether flats snap to it, and what the
background of a panel becomes (paper or coloured).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 10:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('style_reference', schema=None) as batch_op:
        batch_op.add_column(sa.Column('palette', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('snap_palette', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('background', sa.Enum('paper', 'coloured', name='background',
                                                            native_enum=False, length=16),
                                      server_default='paper', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('style_reference', schema=None) as batch_op:
        batch_op.drop_column('background')
        batch_op.drop_column('snap_palette')
        batch_op.drop_column('palette')
