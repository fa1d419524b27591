"""accountability: intake units given back by the order that took them (A8).

Revision ID: 0920
Revises: 0900
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0920"
down_revision = "0900"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "merchant_intake_holds",
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_merchant_intake_holds")),
    )


def downgrade() -> None:
    op.drop_table("merchant_intake_holds")
