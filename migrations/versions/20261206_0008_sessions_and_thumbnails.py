"""Users carry a session version: a session cookie names the version it was made under, and logging
out, disabling the user or changing the password moves it on, so every copy of the cookie ends.
Pages record the thumbnails of their line art, made by the io worker that ingests them.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 09:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_version', sa.Integer(), server_default='0', nullable=False))
    with op.batch_alter_table('page', schema=None) as batch_op:
        batch_op.add_column(sa.Column('thumbnails', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('page', schema=None) as batch_op:
        batch_op.drop_column('thumbnails')
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('session_version')
