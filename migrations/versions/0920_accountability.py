"""accountability: intake units given back by the order that took them (A8), deposit top-ups (C7),
exam papers drawn per attempt in a language, the shipped questions keyed (A12).

Revision ID: 0920
Revises: 0900
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tuangou.core.db

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

    op.create_table(
        "merchant_deposit_top_ups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reference", sa.String(length=128), nullable=False),
        sa.Column("created_at", tuangou.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("settled_at", tuangou.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"],
                                name=op.f("fk_merchant_deposit_top_ups_merchant_id_merchants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchant_deposit_top_ups")),
        sa.UniqueConstraint("merchant_id", "idempotency_key",
                            name=op.f("uq_merchant_deposit_top_ups_merchant_id_idempotency_key")),
    )

    with op.batch_alter_table("exam_questions") as batch:
        batch.add_column(sa.Column("language", sa.String(length=8), nullable=False, server_default="zh-CN"))
        batch.add_column(sa.Column("seed_key", sa.String(length=40), nullable=True))
        batch.create_unique_constraint(op.f("uq_exam_questions_seed_key"), ["seed_key"])
    with op.batch_alter_table("exam_attempts") as batch:
        batch.add_column(sa.Column("question_ids", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("language", sa.String(length=8), nullable=False, server_default="zh-CN"))
        batch.add_column(sa.Column("submitted_at", tuangou.core.db.UTCDateTime(timezone=True), nullable=True))
    # attempts made before papers existed were graded at once: they are handed in, not open
    op.execute("UPDATE exam_attempts SET submitted_at = at")
    with op.batch_alter_table("exam_questions") as batch:
        batch.alter_column("language", server_default=None)
    with op.batch_alter_table("exam_attempts") as batch:
        batch.alter_column("question_ids", server_default=None)
        batch.alter_column("language", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("exam_attempts") as batch:
        batch.drop_column("submitted_at")
        batch.drop_column("language")
        batch.drop_column("question_ids")
    with op.batch_alter_table("exam_questions") as batch:
        batch.drop_constraint(op.f("uq_exam_questions_seed_key"), type_="unique")
        batch.drop_column("seed_key")
        batch.drop_column("language")
    op.drop_table("merchant_deposit_top_ups")
    op.drop_table("merchant_intake_holds")
