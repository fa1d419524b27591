"""Compensation in kind and one safe-sales rule.

- `coupons.item`: what an item voucher (coupon kind `item`) gives for free, e.g. a side dish.
- The safe-sales ratio had two owners: the accountability policy's `safe_sales_percent` and capacity
  governance's `safe_sales_ratio`. Governance keeps it. A stored accountability override that differs from
  the seed's 80 moves to governance unless governance already stores a ratio of its own (that one was the
  one the calculator used); the old field is dropped from the stored accountability policy either way.

Revision ID: 0960
Revises: 0900
"""
from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0960"
down_revision = "0900"
branch_labels = None
depends_on = None

SEED_PERCENT = 80


def upgrade() -> None:
    with op.batch_alter_table("coupons") as batch:
        batch.add_column(sa.Column("item", sa.String(length=100), nullable=True))
    _move_safe_sales()


def _load(conn: sa.Connection, policies: sa.Table, name: str) -> dict[str, object] | None:
    raw = conn.execute(sa.select(policies.c.data).where(policies.c.name == name)).scalar()
    if raw is None:
        return None
    return dict(json.loads(raw) if isinstance(raw, str) else raw)


def _move_safe_sales() -> None:
    conn = op.get_bind()
    policies = sa.Table("policies", sa.MetaData(), sa.Column("name", sa.String(40), primary_key=True),
                        sa.Column("data", sa.JSON), sa.Column("updated_at", sa.DateTime(timezone=True)),
                        sa.Column("updated_by", sa.Integer))
    accountability = _load(conn, policies, "accountability")
    if accountability is None or "safe_sales_percent" not in accountability:
        return
    percent = accountability.pop("safe_sales_percent")
    conn.execute(policies.update().where(policies.c.name == "accountability").values(data=accountability))
    if not isinstance(percent, int) or percent == SEED_PERCENT or not 0 < percent <= 100:
        return
    governance = _load(conn, policies, "governance")
    if governance is None:
        now = datetime.now(UTC)
        conn.execute(policies.insert().values(name="governance", data={"safe_sales_ratio": percent / 100},
                                              updated_at=now.replace(tzinfo=None) if conn.dialect.name == "sqlite"
                                              else now, updated_by=None))
    elif governance.get("safe_sales_ratio", 0.8) == 0.8:
        governance["safe_sales_ratio"] = percent / 100
        conn.execute(policies.update().where(policies.c.name == "governance").values(data=governance))


def downgrade() -> None:
    with op.batch_alter_table("coupons") as batch:
        batch.drop_column("item")
