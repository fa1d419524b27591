"""Read-only order facts for logistics (shipping, SLA): nothing here writes.

Kept apart from the order hot path (its modules are tuned statement by statement).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select

from tuangou.core.db import UnitOfWork, table
from tuangou.orders import rules
from tuangou.orders.models import Order, Voucher


def still_paid(order_id: Any) -> Select[Any]:
    """The order's row as it stands in the current transaction, when it is still `paid` (a participant
    that ran before may have refunded it): its id, merchant, buyer, deal, quantity, amount and paid_at."""
    o = table(Order).c
    return select(o.id, o.merchant_id, o.buyer_id, o.deal_id, o.quantity, o.amount_cents, o.paid_at).where(
        o.id == order_id, o.status == rules.OrderStatus.PAID.value)


def issued_voucher_codes(uow: UnitOfWork, order_id: int) -> list[str]:
    """Inside an open unit of work: the order's units not yet redeemed or refunded (their codes), in order."""
    return list(uow.session.scalars(select(Voucher.code).where(
        Voucher.order_id == order_id, Voucher.status == rules.VoucherStatus.ISSUED).order_by(Voucher.id)))
