"""Uploads: archives (and the images sent with them) that an io worker unpacks into pages, off
the web request, resuming from (next_file, next_entry) after a lost worker.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 19:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('upload',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('files', sa.JSON(), nullable=False),
    sa.Column('style_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.Enum('queued', 'running', 'succeeded', 'failed', 'cancelled', name='run_status',
                                native_enum=False, length=16), nullable=False),
    sa.Column('next_file', sa.Integer(), nullable=False),
    sa.Column('next_entry', sa.Integer(), nullable=False),
    sa.Column('pages_added', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('task_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['batch_id'], ['batch.id'], name=op.f('fk_upload_batch_id_batch'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_upload_created_by_id_user_account'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['style_id'], ['style_reference.id'], name=op.f('fk_upload_style_id_style_reference'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_upload'))
    )
    with op.batch_alter_table('upload', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_upload_batch_id'), ['batch_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('upload', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_upload_batch_id'))
    op.drop_table('upload')
