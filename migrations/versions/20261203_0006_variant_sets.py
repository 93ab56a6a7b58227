"""Variant sets: N renders of a page with N random seeds, asked for together; one is picked as the
page's result.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 10:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('variant_set',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('page_id', sa.Integer(), nullable=False),
    sa.Column('style_id', sa.Integer(), nullable=True),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('picked_render_id', sa.Integer(), nullable=True),
    sa.Column('picked_by_id', sa.Integer(), nullable=True),
    sa.Column('picked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['page_id'], ['page.id'], name=op.f('fk_variant_set_page_id_page'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['style_id'], ['style_reference.id'],
                            name=op.f('fk_variant_set_style_id_style_reference'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'],
                            name=op.f('fk_variant_set_created_by_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['picked_render_id'], ['render.id'],
                            name=op.f('fk_variant_set_picked_render_id_render'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['picked_by_id'], ['user_account.id'],
                            name=op.f('fk_variant_set_picked_by_id_user_account'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_variant_set'))
    )
    with op.batch_alter_table('variant_set', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_variant_set_page_id'), ['page_id'], unique=False)
    with op.batch_alter_table('render', schema=None) as batch_op:
        batch_op.add_column(sa.Column('variant_set_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_render_variant_set_id'), ['variant_set_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_render_variant_set_id_variant_set'), 'variant_set',
                                    ['variant_set_id'], ['id'], ondelete='CASCADE')


def downgrade() -> None:
    with op.batch_alter_table('render', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_render_variant_set_id_variant_set'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_render_variant_set_id'))
        batch_op.drop_column('variant_set_id')
    with op.batch_alter_table('variant_set', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_variant_set_page_id'))
    op.drop_table('variant_set')
