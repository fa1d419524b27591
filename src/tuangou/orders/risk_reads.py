"""Order facts for risk reviews (evidence graphs, rings, after-the-fact rules) and the two moves a review
makes on a held order. Nothing here is on the hot path."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select

from tuangou.core.db import InTransaction
from tuangou.orders import rules, views
from tuangou.orders.models import Order

SIGNAL_COLUMNS = {"device": Order.device_h, "address": Order.address_h, "payment": Order.payment_h}
PAID = (rules.OrderStatus.PAID, rules.OrderStatus.COMPLETED, rules.OrderStatus.REFUNDED)


@dataclass(frozen=True)
class OrderFacts:
    id: int
    buyer_id: int
    merchant_id: int
    deal_id: int
    store_id: int
    status: str
    signals: dict[str, str | None]  # device, address, payment (keyed hashes)


def _facts(o: Order) -> OrderFacts:
    return OrderFacts(o.id, o.buyer_id, o.merchant_id, o.deal_id, o.store_id, o.status,
                      {"device": o.device_h, "address": o.address_h, "payment": o.payment_h})


def _many(uow: InTransaction, where: Any, limit: int) -> list[OrderFacts]:
    return [_facts(o) for o in uow.session.scalars(select(Order).where(where).order_by(Order.id.desc()).limit(limit))]


def order(uow: InTransaction, order_id: int) -> OrderFacts | None:
    found = uow.session.get(Order, order_id)
    return _facts(found) if found is not None else None


def of_buyers(uow: InTransaction, buyer_ids: set[int], limit: int) -> list[OrderFacts]:
    return _many(uow, Order.buyer_id.in_(sorted(buyer_ids)), limit) if buyer_ids else []


def with_signal(uow: InTransaction, scope: str, value: str, limit: int) -> list[OrderFacts]:
    return _many(uow, SIGNAL_COLUMNS[scope] == value, limit)


def sharing(uow: InTransaction, values: dict[str, set[str]], limit: int) -> list[OrderFacts]:
    """Orders with any of these devices, addresses or payment accounts (indexed columns)."""
    shared = [SIGNAL_COLUMNS[scope].in_(sorted(v)) for scope, v in values.items() if v]
    return _many(uow, or_(*shared), limit) if shared else []


def paid_by_buyer(uow: InTransaction, since: datetime) -> dict[int, int]:
    return {int(b): int(n) for b, n in uow.session.execute(select(Order.buyer_id, func.count()).where(
        Order.paid_at >= since, Order.status.in_(PAID)).group_by(Order.buyer_id))}


def paid_of_merchant(uow: InTransaction, merchant_id: int, since: datetime) -> int:
    """Paid orders that stand (refunded ones, e.g. fake orders removed by a review, do not count)."""
    return int(uow.session.scalar(select(func.count()).select_from(Order).where(
        Order.merchant_id == merchant_id, Order.paid_at >= since,
        Order.status.in_((rules.OrderStatus.PAID, rules.OrderStatus.COMPLETED)))) or 0)


def signals_of_buyers(uow: InTransaction, buyer_ids: set[int]) -> list[tuple[int, str, str]]:
    """(buyer, scope, value) for every device, address and payment account the buyers ordered with."""
    found = set()
    for scope, column in SIGNAL_COLUMNS.items():
        for buyer_id, value in uow.session.execute(select(Order.buyer_id, column).distinct().where(
                Order.buyer_id.in_(sorted(buyer_ids)), column.is_not(None))):
            found.add((int(buyer_id), scope, str(value)))
    return sorted(found)


def cancel_held(uow: InTransaction, order_id: int) -> int | None:
    """End a held order (a review found it fake): its units return at once. Returns its buyer, or None
    when the order was not held (any more)."""
    found = uow.session.get(Order, order_id)
    if found is None or not views.end_reservation(uow, found, rules.OrderStatus.CANCELLED,
                                                  from_status=rules.OrderStatus.HELD):
        return None
    return found.buyer_id
