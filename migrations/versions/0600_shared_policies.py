"""shared policies: one `policies` table instead of governance_policies, dispute_policies, accountability_settings

Revision ID: 0600
Revises: 0100, 0200, 0400
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tuangou.core.db

revision = '0600'
down_revision = ('0100', '0200', '0400')
branch_labels = None
depends_on = None

# (new policy name, old table, old key column, old key value, old data column, old updated_by column or NULL)
_OLD = (
    ("governance", "governance_policies", "name", "governance", "value", "updated_by"),
    ("disputes", "dispute_policies", "key", "default", "data", "updated_by"),
    ("accountability", "accountability_settings", "key", "default", "values", "NULL"),
)


def upgrade() -> None:
    op.create_table('policies',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('updated_at', tuangou.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_policies'))
    )
    for name, table, key, key_value, data, updated_by in _OLD:
        by = updated_by if updated_by == "NULL" else f'"{updated_by}"'
        op.execute(sa.text(
            f'INSERT INTO policies (name, data, updated_at, updated_by) '
            f'SELECT :name, "{data}", updated_at, {by} FROM {table} WHERE "{key}" = :key'
        ).bindparams(name=name, key=key_value))
        op.drop_table(table)


def downgrade() -> None:
    op.create_table('governance_policies',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('value', sa.JSON(), nullable=False),
    sa.Column('updated_at', tuangou.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_governance_policies'))
    )
    op.create_table('dispute_policies',
    sa.Column('key', sa.String(length=32), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('updated_at', tuangou.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_dispute_policies'))
    )
    op.create_table('accountability_settings',
    sa.Column('key', sa.String(length=32), nullable=False),
    sa.Column('values', sa.JSON(), nullable=False),
    sa.Column('updated_at', tuangou.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_accountability_settings'))
    )
    for name, table, key, key_value, data, updated_by in _OLD:
        columns = f'"{key}", "{data}", updated_at' + ("" if updated_by == "NULL" else f', "{updated_by}"')
        values = ":key, data, updated_at" + ("" if updated_by == "NULL" else ", updated_by")
        op.execute(sa.text(
            f'INSERT INTO {table} ({columns}) SELECT {values} FROM policies WHERE name = :name'
        ).bindparams(name=name, key=key_value))
    op.drop_table('policies')
