"""capacity_refresh: when each deal's caps next need the refresh job (so a tick recomputes only those).

Revision ID: 0830
Revises: 0800
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tuangou.core.db

revision = "0830"
down_revision = "0800"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "capacity_refresh",
        sa.Column("deal_id", sa.Integer(), nullable=False),
        sa.Column("due_at", tuangou.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["deal_id"], ["deals.id"], name=op.f("fk_capacity_refresh_deal_id_deals")),
        sa.PrimaryKeyConstraint("deal_id", name=op.f("pk_capacity_refresh")),
    )
    op.create_index(op.f("ix_capacity_refresh_due_at"), "capacity_refresh", ["due_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_capacity_refresh_due_at"), table_name="capacity_refresh")
    op.drop_table("capacity_refresh")
