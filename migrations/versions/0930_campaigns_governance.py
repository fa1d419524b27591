"""Campaigns hold on the day of service: the final tier price frozen when entry closes, each member's
price settled once, and a formed group cancelled with a reason and a responsible party.

Revision ID: 0930
Revises: 0900
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0930"
down_revision = "0900"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("final_price_cents", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("cancel_reason", sa.String(500), nullable=False, server_default=""))
        batch.add_column(sa.Column("responsible_party", sa.String(16), nullable=False, server_default=""))
    with op.batch_alter_table("campaign_members") as batch:
        batch.add_column(sa.Column("price_settled_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaign_members") as batch:
        batch.drop_column("price_settled_at")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("responsible_party")
        batch.drop_column("cancel_reason")
        batch.drop_column("cancelled_at")
        batch.drop_column("final_price_cents")
