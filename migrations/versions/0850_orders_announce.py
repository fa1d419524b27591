"""Order core: the order row is the outbox of its own OrderPlaced / OrderPaid events.

Orders that exist already had their events written at the time, so they start fully announced.

Revision ID: 0850
Revises: 0800
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0850"
down_revision = "0800"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("announced", sa.SmallInteger(), nullable=False, server_default="0"))
    op.execute("UPDATE orders SET announced = 2")
    op.create_index("ix_orders_unannounced", "orders", ["announced", "id"],
                    sqlite_where=sa.text("announced < 2"), postgresql_where=sa.text("announced < 2"))


def downgrade() -> None:
    op.drop_index("ix_orders_unannounced", table_name="orders")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("announced")
