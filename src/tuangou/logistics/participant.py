"""Logistics as an order participant: paying a goods order starts its shipping clock in the paying
transaction (SPEC C2), so no scan has to find it and the merchant's warning is never a tick late.

Whether the deal ships (and its category, and a group-buy's delivery time) rides in the paying
snapshot as correlated columns: paying a voucher order costs logistics no statement, a goods order
one INSERT … SELECT … ON CONFLICT DO NOTHING (docs/adr/0012).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, String, bindparam, literal, select

from tuangou.campaigns import service as campaigns
from tuangou.catalog import columns as deals
from tuangou.core import policy as policies
from tuangou.core.db import InTransaction, UTCDateTime, table, upsertable_insert
from tuangou.logistics import rules
from tuangou.logistics.models import ShippingOrder
from tuangou.logistics.policy import POLICY
from tuangou.orders import rules as order_rules
from tuangou.orders import shipping_reads
from tuangou.orders.participants import OrderParticipant, extra_of

_built: dict[str, Any] = {}


def _policy(tx: InTransaction) -> rules.LogisticsPolicy:
    # the process's copy (refreshed every second, dropped at once where ops change it): no statement
    return policies.cached(tx.session, POLICY, lambda d: rules.policy_from_dict(d) if d is not None
                           else rules.LogisticsPolicy())


def _start_clock(dialect: str) -> Any:
    """The shipping record, copied from the order row as it stands in this transaction: an order a
    participant before us moved on (a group-buy refunding a late payment) gets no clock."""
    stmt = _built.get(dialect)
    if stmt is None:
        o, r = shipping_reads.still_paid(bindparam("oid")).subquery().c, table(ShippingOrder)
        when = UTCDateTime()
        rows = select(o.id, o.merchant_id, o.buyer_id, o.deal_id, bindparam("category", type_=String()), o.quantity,
                      o.amount_cents, o.paid_at, bindparam("due_at", type_=when), bindparam("warn_at", type_=when),
                      literal(0), literal(rules.OrderShipping.AWAITING.value), literal(0), literal(0),
                      literal(False)).where(o.id.is_not(None))  # SQLite: ON CONFLICT after a SELECT needs a WHERE
        cols = ["order_id", "merchant_id", "buyer_id", "deal_id", "category", "quantity", "amount_cents", "paid_at",
                "due_at", "warn_at", "paused_minutes", "status", "shipped_units", "compensation_cents", "defect"]
        stmt = _built[dialect] = upsertable_insert(dialect, r).from_select(cols, rows) \
            .on_conflict_do_nothing(index_elements=["order_id"])
    return stmt


class ShippingClock(OrderParticipant):
    name = "logistics.shipping_clock"
    moves_order_when_paid = False  # it starts a clock; the order stays as paid

    def order_columns(self, orders: Any) -> dict[str, ColumnElement[Any]]:
        return {"goods_category": deals.goods_category(orders.deal_id),
                "delivery_at": campaigns.delivery_at_column(orders.deal_id)}

    def wants_paid(self, order: order_rules.OrderSnapshot) -> bool:
        return extra_of(order.participant, self.name).get("goods_category") is not None

    def on_paid(self, tx: InTransaction, order: order_rules.OrderSnapshot) -> None:
        facts = extra_of(order.participant, self.name)
        policy = _policy(tx)
        due = rules.ship_deadline(tx.now, facts["goods_category"], policy, facts.get("delivery_at"))
        tx.conn.execute(_start_clock(tx.conn.dialect.name), {
            "oid": order.id, "category": facts["goods_category"], "due_at": due,
            "warn_at": rules.warn_at(due, policy)})
