"""Order core: the current payment attempt of an order (its gateway key is derived from it).

Revision ID: 0760
Revises: 0700
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0760"
down_revision = "0700"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("pay_attempt", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("pay_attempt")
