"""Webhooks: a studio's endpoints (URL and signing secret) and the log of every delivery (its
event, payload, attempts, last answer and next try); when a batch last had its end announced;
an index on pages' updated_at, so the janitor finds batches that just ended without a scan.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 10:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'webhook',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('studio_id', sa.Integer(), nullable=False),
        sa.Column('url', sa.String(length=2000), nullable=False),
        sa.Column('secret', sa.String(length=64), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['studio_id'], ['studio.id'], name=op.f('fk_webhook_studio_id_studio'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'],
                                name=op.f('fk_webhook_created_by_id_user_account'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook')),
    )
    op.create_index(op.f('ix_webhook_studio_id'), 'webhook', ['studio_id'], unique=False)
    op.create_table(
        'webhook_delivery',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('webhook_id', sa.Integer(), nullable=False),
        sa.Column('studio_id', sa.Integer(), nullable=False),
        sa.Column('batch_id', sa.Integer(), nullable=True),
        sa.Column('event', sa.String(length=32), nullable=False),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('status', sa.Enum('pending', 'delivered', 'failed', name='delivery_status', native_enum=False,
                                    length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_status_code', sa.Integer(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['webhook_id'], ['webhook.id'], name=op.f('fk_webhook_delivery_webhook_id_webhook'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['studio_id'], ['studio.id'], name=op.f('fk_webhook_delivery_studio_id_studio'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['batch_id'], ['batch.id'], name=op.f('fk_webhook_delivery_batch_id_batch'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_delivery')),
    )
    op.create_index(op.f('ix_webhook_delivery_webhook_id'), 'webhook_delivery', ['webhook_id'], unique=False)
    op.create_index(op.f('ix_webhook_delivery_studio_id'), 'webhook_delivery', ['studio_id'], unique=False)
    op.create_index('ix_webhook_delivery_status_next_attempt_at', 'webhook_delivery',
                    ['status', 'next_attempt_at'], unique=False)
    with op.batch_alter_table('batch', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notified_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f('ix_page_updated_at'), 'page', ['updated_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_page_updated_at'), table_name='page')
    with op.batch_alter_table('batch', schema=None) as batch_op:
        batch_op.drop_column('notified_at')
    op.drop_index('ix_webhook_delivery_status_next_attempt_at', table_name='webhook_delivery')
    op.drop_index(op.f('ix_webhook_delivery_studio_id'), table_name='webhook_delivery')
    op.drop_index(op.f('ix_webhook_delivery_webhook_id'), table_name='webhook_delivery')
    op.drop_table('webhook_delivery')
    op.drop_index(op.f('ix_webhook_studio_id'), table_name='webhook')
    op.drop_table('webhook')
