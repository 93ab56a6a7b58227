"""Initial schema of the job store: studios, users, tokens, styles, batches, pages, panels, renders, reviews, events.

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 14:56:08.712024
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # page.current_render_id and render.page_id point at each other. SQLite accepts a key to a table
    # made later, in CREATE TABLE; PostgreSQL gets it by ALTER TABLE once both tables exist.
    sqlite = op.get_bind().dialect.name == 'sqlite'
    page_fks = [sa.ForeignKeyConstraint(['current_render_id'], ['render.id'],
                                        name=op.f('fk_page_current_render_id_render'), ondelete='SET NULL')]
    if not sqlite:
        page_fks = []
    op.create_table('studio',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_studio')),
    sa.UniqueConstraint('name', name=op.f('uq_studio_name'))
    )
    op.create_table('user_account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('studio_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.Enum('admin', 'artist', 'reviewer', name='role', native_enum=False, length=16), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['studio_id'], ['studio.id'], name=op.f('fk_user_account_studio_id_studio'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_account')),
    sa.UniqueConstraint('email', name=op.f('uq_user_account_email'))
    )
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_account_studio_id'), ['studio_id'], unique=False)

    op.create_table('api_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=12), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_api_token_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_token')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_token_token_hash'))
    )
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_token_user_id'), ['user_id'], unique=False)

    op.create_table('style_reference',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('studio_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('image_key', sa.String(length=128), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_style_reference_created_by_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['studio_id'], ['studio.id'], name=op.f('fk_style_reference_studio_id_studio'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_style_reference'))
    )
    with op.batch_alter_table('style_reference', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_style_reference_studio_id'), ['studio_id'], unique=False)

    op.create_table('batch',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('studio_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('default_style_id', sa.Integer(), nullable=True),
    sa.Column('direction', sa.Enum('ltr', 'rtl', name='direction', native_enum=False, length=16), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('cancelled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_batch_created_by_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['default_style_id'], ['style_reference.id'], name=op.f('fk_batch_default_style_id_style_reference'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['studio_id'], ['studio.id'], name=op.f('fk_batch_studio_id_studio'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_batch'))
    )
    with op.batch_alter_table('batch', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_batch_studio_id'), ['studio_id'], unique=False)

    op.create_table('page',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('source_name', sa.String(length=255), nullable=False),
    sa.Column('source_key', sa.String(length=128), nullable=True),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('style_id', sa.Integer(), nullable=True),
    sa.Column('direction', sa.Enum('ltr', 'rtl', name='direction', native_enum=False, length=16), nullable=True),
    sa.Column('status', sa.Enum('queued', 'running', 'succeeded', 'failed', 'cancelled', name='run_status', native_enum=False, length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('review_status', sa.Enum('pending', 'approved', 'rejected', name='review_status', native_enum=False, length=16), nullable=False),
    sa.Column('panels_done', sa.Integer(), nullable=False),
    sa.Column('panels_total', sa.Integer(), nullable=False),
    sa.Column('current_render_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['batch.id'], name=op.f('fk_page_batch_id_batch'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['style_id'], ['style_reference.id'], name=op.f('fk_page_style_id_style_reference'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_page')),
    sa.UniqueConstraint('batch_id', 'position', name=op.f('uq_page_batch_id')),
    *page_fks,
    )
    with op.batch_alter_table('page', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_page_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_page_status'), ['status'], unique=False)

    op.create_table('panel',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('page_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('x', sa.Integer(), nullable=False),
    sa.Column('y', sa.Integer(), nullable=False),
    sa.Column('w', sa.Integer(), nullable=False),
    sa.Column('h', sa.Integer(), nullable=False),
    sa.Column('polygon', sa.JSON(), nullable=False),
    sa.Column('style_id', sa.Integer(), nullable=True),
    sa.Column('hints', sa.JSON(), nullable=False),
    sa.Column('review_status', sa.Enum('pending', 'approved', 'rejected', name='review_status', native_enum=False, length=16), nullable=False),
    sa.ForeignKeyConstraint(['page_id'], ['page.id'], name=op.f('fk_panel_page_id_page'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['style_id'], ['style_reference.id'], name=op.f('fk_panel_style_id_style_reference'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_panel')),
    sa.UniqueConstraint('page_id', 'position', name=op.f('uq_panel_page_id'))
    )
    with op.batch_alter_table('panel', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_panel_page_id'), ['page_id'], unique=False)

    op.create_table('render',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('page_id', sa.Integer(), nullable=False),
    sa.Column('panel_id', sa.Integer(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('style_id', sa.Integer(), nullable=True),
    sa.Column('seed', sa.BigInteger(), nullable=True),
    sa.Column('model_version', sa.String(length=64), nullable=True),
    sa.Column('status', sa.Enum('queued', 'running', 'succeeded', 'failed', 'cancelled', name='run_status', native_enum=False, length=16), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('worker', sa.String(length=200), nullable=True),
    sa.Column('task_id', sa.String(length=64), nullable=True),
    sa.Column('hints', sa.JSON(), nullable=False),
    sa.Column('timings', sa.JSON(), nullable=False),
    sa.Column('outputs', sa.JSON(), nullable=False),
    sa.Column('degraded', sa.String(length=200), nullable=True),
    sa.Column('queued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['page_id'], ['page.id'], name=op.f('fk_render_page_id_page'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['panel_id'], ['panel.id'], name=op.f('fk_render_panel_id_panel'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['style_id'], ['style_reference.id'], name=op.f('fk_render_style_id_style_reference'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_render')),
    sa.UniqueConstraint('page_id', 'panel_id', 'version', name=op.f('uq_render_page_id'))
    )
    with op.batch_alter_table('render', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_render_page_id'), ['page_id'], unique=False)
        batch_op.create_index('ix_render_status_queued_at', ['status', 'queued_at'], unique=False)
        batch_op.create_index('ux_render_page_version', ['page_id', 'version'], unique=True,
                              sqlite_where=sa.text('panel_id IS NULL'), postgresql_where=sa.text('panel_id IS NULL'))

    if not sqlite:
        op.create_foreign_key(op.f('fk_page_current_render_id_render'), 'page', 'render', ['current_render_id'],
                              ['id'], ondelete='SET NULL')

    op.create_table('event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('studio_id', sa.Integer(), nullable=True),
    sa.Column('batch_id', sa.Integer(), nullable=True),
    sa.Column('page_id', sa.Integer(), nullable=True),
    sa.Column('render_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['batch.id'], name=op.f('fk_event_batch_id_batch'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['page_id'], ['page.id'], name=op.f('fk_event_page_id_page'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['render_id'], ['render.id'], name=op.f('fk_event_render_id_render'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['studio_id'], ['studio.id'], name=op.f('fk_event_studio_id_studio'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_event'))
    )
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_event_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_event_studio_id'), ['studio_id'], unique=False)

    op.create_table('review',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('page_id', sa.Integer(), nullable=False),
    sa.Column('panel_id', sa.Integer(), nullable=True),
    sa.Column('render_id', sa.Integer(), nullable=True),
    sa.Column('decision', sa.Enum('pending', 'approved', 'rejected', name='review_status', native_enum=False, length=16), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('reviewer_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['page_id'], ['page.id'], name=op.f('fk_review_page_id_page'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['panel_id'], ['panel.id'], name=op.f('fk_review_panel_id_panel'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['render_id'], ['render.id'], name=op.f('fk_review_render_id_render'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['reviewer_id'], ['user_account.id'], name=op.f('fk_review_reviewer_id_user_account'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review'))
    )
    with op.batch_alter_table('review', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_review_page_id'), ['page_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('review', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_review_page_id'))

    op.drop_table('review')
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_event_studio_id'))
        batch_op.drop_index(batch_op.f('ix_event_batch_id'))

    op.drop_table('event')
    if op.get_bind().dialect.name != 'sqlite':
        op.drop_constraint(op.f('fk_page_current_render_id_render'), 'page', type_='foreignkey')

    with op.batch_alter_table('render', schema=None) as batch_op:
        batch_op.drop_index('ux_render_page_version', sqlite_where=sa.text('panel_id IS NULL'), postgresql_where=sa.text('panel_id IS NULL'))
        batch_op.drop_index('ix_render_status_queued_at')
        batch_op.drop_index(batch_op.f('ix_render_page_id'))

    op.drop_table('render')
    with op.batch_alter_table('panel', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_panel_page_id'))

    op.drop_table('panel')
    with op.batch_alter_table('page', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_page_status'))
        batch_op.drop_index(batch_op.f('ix_page_batch_id'))

    op.drop_table('page')
    with op.batch_alter_table('batch', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_batch_studio_id'))

    op.drop_table('batch')
    with op.batch_alter_table('style_reference', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_style_reference_studio_id'))

    op.drop_table('style_reference')
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_token_user_id'))

    op.drop_table('api_token')
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_account_studio_id'))

    op.drop_table('user_account')
    op.drop_table('studio')
