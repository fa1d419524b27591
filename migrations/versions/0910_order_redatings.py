"""Booking binds the day (预约): re-datings of an order move its vouchers and capacity units by agreement;
the circuit breaker pauses one date (with a reason) instead of delisting the whole deal.

Revision ID: 0910
Revises: 0900
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tuangou.core.db import UTCDateTime

revision = "0910"
down_revision = "0900"
branch_labels = None
depends_on = None

OPEN = sa.text("status IN ('offered', 'proposed')")


def upgrade() -> None:
    op.create_table(
        "order_redatings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("order_id", sa.Integer(), sa.ForeignKey("orders.id"), nullable=False),
        sa.Column("buyer_id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("deal_id", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("from_date", sa.Date(), nullable=False),
        sa.Column("from_slot", sa.String(16), nullable=True),
        sa.Column("to_date", sa.Date(), nullable=True),
        sa.Column("to_slot", sa.String(16), nullable=True),
        sa.Column("window_first", sa.Date(), nullable=False),
        sa.Column("window_last", sa.Date(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
    )
    op.create_index("ix_order_redatings_order_id", "order_redatings", ["order_id"])
    op.create_index("ix_order_redatings_merchant", "order_redatings", ["merchant_id", "status"])
    op.create_index("uq_order_redatings_open", "order_redatings", ["order_id"], unique=True,
                    sqlite_where=OPEN, postgresql_where=OPEN)
    with op.batch_alter_table("capacity_buckets") as batch:
        batch.add_column(sa.Column("pause_reason", sa.String(300), nullable=True))
        batch.add_column(sa.Column("paused_at", UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("capacity_buckets") as batch:
        batch.drop_column("paused_at")
        batch.drop_column("pause_reason")
    op.drop_index("uq_order_redatings_open", table_name="order_redatings")
    op.drop_index("ix_order_redatings_merchant", table_name="order_redatings")
    op.drop_index("ix_order_redatings_order_id", table_name="order_redatings")
    op.drop_table("order_redatings")
