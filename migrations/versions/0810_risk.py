"""Risk: order and dispute signals (keyed hashes), window counters, review cases, questions to buyers,
merchant links; disputes' compensation pauses.

Revision ID: 0810
Revises: 0800
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tuangou.core.db import UTCDateTime

revision = "0810"
down_revision = "0800"
branch_labels = None
depends_on = None

SIGNALS = ("device_h", "ip_h", "address_h", "phone_h", "payment_h")
INDEXED = ("device_h", "address_h", "payment_h")


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        for name in SIGNALS:
            batch.add_column(sa.Column(name, sa.String(24), nullable=True))
    for name in INDEXED:  # partial: an order without the signal writes no index entry
        op.create_index(f"ix_orders_{name}", "orders", [name], sqlite_where=sa.text(f"{name} IS NOT NULL"),
                        postgresql_where=sa.text(f"{name} IS NOT NULL"))
    op.create_table(
        "risk_counters",
        sa.Column("scope", sa.String(8), primary_key=True),
        sa.Column("key", sa.String(24), primary_key=True),
        sa.Column("win", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("prev_n", sa.Integer(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("prev_units", sa.Integer(), nullable=False),
        sa.Column("accts", sa.Text(), nullable=False),
        sa.Column("prev_accts", sa.Integer(), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "risk_cases",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("ref", sa.String(64), nullable=False, unique=True),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("buyer_id", sa.Integer(), nullable=True),
        sa.Column("merchant_id", sa.Integer(), nullable=True),
        sa.Column("hits", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.String(24), nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=False),
        sa.Column("effects", sa.JSON(), nullable=False),
        sa.Column("opened_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", UTCDateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_risk_cases_status", "risk_cases", ["status", "id"])
    op.create_index("ix_risk_cases_buyer_id", "risk_cases", ["buyer_id"])
    op.create_index("ix_risk_cases_merchant_id", "risk_cases", ["merchant_id"])
    op.create_table(
        "risk_questions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("case_id", sa.Integer(), nullable=False, unique=True),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("buyer_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.String(200), nullable=False),
        sa.Column("answer", sa.String(8), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("asked_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("answered_at", UTCDateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_risk_questions_buyer_id", "risk_questions", ["buyer_id"])
    op.create_table(
        "risk_merchant_links",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value_h", sa.String(24), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("added_at", UTCDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("merchant_id", "kind", "value_h"),
    )
    op.create_index("ix_risk_links_merchant_value", "risk_merchant_links", ["merchant_id", "value_h"])
    with op.batch_alter_table("disputes") as batch:
        batch.add_column(sa.Column("signals", sa.JSON(), nullable=True))
    op.create_table(
        "compensation_pauses",
        sa.Column("buyer_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("ref", sa.String(64), nullable=False),
        sa.Column("paused_at", UTCDateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("compensation_pauses")
    with op.batch_alter_table("disputes") as batch:
        batch.drop_column("signals")
    op.drop_table("risk_merchant_links")
    op.drop_table("risk_questions")
    op.drop_table("risk_cases")
    op.drop_table("risk_counters")
    for name in INDEXED:
        op.drop_index(f"ix_orders_{name}", "orders")
    with op.batch_alter_table("orders") as batch:
        for name in SIGNALS:
            batch.drop_column(name)
