"""Reversible review decisions: a decision that was undone keeps its row, marked with when and by
whom it was undone (the event log keeps both the decision and its undoing).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 10:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('review', schema=None) as batch_op:
        batch_op.add_column(sa.Column('undone_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('undone_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_review_undone_by_id_user_account'), 'user_account',
                                    ['undone_by_id'], ['id'], ondelete='SET NULL')


def downgrade() -> None:
    with op.batch_alter_table('review', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_review_undone_by_id_user_account'), type_='foreignkey')
        batch_op.drop_column('undone_by_id')
        batch_op.drop_column('undone_at')
