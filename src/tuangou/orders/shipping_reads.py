"""Read-only order facts for logistics (shipping, SLA): nothing here writes.

Kept apart from the order hot path so logistics can find paid goods orders without a hook there.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from tuangou.core.db import UnitOfWork
from tuangou.orders import rules
from tuangou.orders.models import Order, Voucher


def paid_orders_since(uow: UnitOfWork, since: datetime, limit: int = 5000) -> list[tuple[int, int, datetime]]:
    """Inside an open unit of work: (order id, deal id, paid_at) of orders still `paid` that were paid at or
    after `since`, oldest payment first."""
    rows = uow.session.execute(select(Order.id, Order.deal_id, Order.paid_at).where(
        Order.status == rules.OrderStatus.PAID, Order.paid_at >= since).order_by(Order.paid_at, Order.id).limit(limit))
    return [(int(i), int(d), p) for i, d, p in rows if p is not None]


def issued_voucher_codes(uow: UnitOfWork, order_id: int) -> list[str]:
    """Inside an open unit of work: the order's units not yet redeemed or refunded (their codes), in order."""
    return list(uow.session.scalars(select(Voucher.code).where(
        Voucher.order_id == order_id, Voucher.status == rules.VoucherStatus.ISSUED).order_by(Voucher.id)))
