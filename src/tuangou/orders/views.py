"""Reading orders and the small in-transaction steps placing, paying and refunding share."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from tuangou.catalog import service as catalog
from tuangou.core.auth import Principal, Role
from tuangou.core.db import InTransaction, table
from tuangou.core.errors import Forbidden, NotFound
from tuangou.core.outbox import record_event
from tuangou.orders import rules
from tuangou.orders.models import BuyerDealCount, Order, Voucher
from tuangou.orders.participants import registry


@dataclass
class OrderView:
    id: int
    buyer_id: int
    deal_id: int
    merchant_id: int
    store_id: int
    quantity: int
    unit_price_cents: int
    amount_cents: int
    service_date: str | None
    slot: str | None
    status: str
    expires_at: str
    created_at: str
    paid_at: str | None
    vouchers: list[dict[str, Any]] = field(default_factory=list)
    payment: dict[str, Any] | None = None


def voucher_view(code: str, status: str, redeemed_at: Any = None) -> dict[str, Any]:
    return {"code": code, "qr": rules.qr_payload(code), "status": status,
            "redeemed_at": redeemed_at.isoformat() if redeemed_at else None}


def view(tx: InTransaction, o: Order, with_vouchers: bool = True) -> OrderView:
    vouchers = []
    if with_vouchers and o.status not in (rules.OrderStatus.RESERVED, rules.OrderStatus.EXPIRED,
                                          rules.OrderStatus.CANCELLED):
        vouchers = [voucher_view(v.code, v.status, v.redeemed_at) for v in tx.session.scalars(
            select(Voucher).where(Voucher.order_id == o.id).order_by(Voucher.id))]
    return OrderView(o.id, o.buyer_id, o.deal_id, o.merchant_id, o.store_id, o.quantity, o.unit_price_cents,
                     o.amount_cents, o.service_date.isoformat() if o.service_date else None, o.slot, o.status,
                     o.expires_at.isoformat(), o.created_at.isoformat(),
                     o.paid_at.isoformat() if o.paid_at else None, vouchers)


def visible(actor: Principal, buyer_id: int, merchant_id: int) -> bool:
    return (actor.role == Role.OPS or (actor.role == Role.BUYER and buyer_id == actor.user_id)
            or (actor.role == Role.MERCHANT and merchant_id == actor.merchant_id))


def own_order(tx: InTransaction, actor: Principal, order_id: int, lock: bool = False) -> Order:
    """The order if `actor` may see it: 404 when there is none, 403 when it is someone else's."""
    q = select(Order).where(Order.id == order_id)
    if lock:
        q = q.with_for_update()
    order = tx.session.scalar(q)
    if order is None:
        raise NotFound(f"order {order_id} not found")
    if not visible(actor, order.buyer_id, order.merchant_id):
        raise Forbidden("this order belongs to another account")
    return order


def snapshot_of(o: Order, participant: dict[str, Any] | None = None) -> rules.OrderSnapshot:
    return rules.OrderSnapshot(o.id, o.buyer_id, o.deal_id, o.merchant_id, o.store_id, o.quantity,
                               o.unit_price_cents, o.amount_cents, o.status, o.expires_at, list(o.buckets or []),
                               o.pay_attempt, dict(o.extra or {}), participant or {})


def uncount(tx: InTransaction, order: Order, qty: int) -> None:
    """Give back units counted against the per-buyer limit (only deals with a limit count)."""
    tx.conn.execute(update(table(BuyerDealCount)).where(BuyerDealCount.deal_id == order.deal_id,
                                                           BuyerDealCount.buyer_id == order.buyer_id)
                    .values(qty=BuyerDealCount.qty - qty))


def settle(tx: InTransaction, order: Order) -> None:
    statuses = list(tx.session.scalars(select(Voucher.status).where(Voucher.order_id == order.id)))
    final = rules.settled_status(statuses)
    if final is not None:
        tx.session.execute(update(Order).where(Order.id == order.id, Order.status == rules.OrderStatus.PAID)
                           .values(status=final))


def end_reservation(tx: InTransaction, order: Order, status: rules.OrderStatus,
                    from_status: rules.OrderStatus = rules.OrderStatus.RESERVED) -> bool:
    """Inside an open unit of work: end an unpaid hold (cancelled, expired); its units return at once.
    False, changing nothing, when the order was no longer reserved (or held, with `from_status`)."""
    moved = tx.session.execute(update(Order).where(Order.id == order.id, Order.status == from_status)
                               .values(status=status)).rowcount  # type: ignore[attr-defined]
    if not moved:
        return False
    catalog.release_reserved(tx, order.deal_id, order.buckets, order.quantity)
    uncount(tx, order, order.quantity)
    tx.session.refresh(order)
    snap = snapshot_of(order)
    for p in registry.items:
        if p.wants_ended(snap):
            p.on_ended(tx, snap)
    record_event(tx.session, f"Order{status.value.capitalize()}", {"order_id": order.id}, tx.now,
                 merchant_id=order.merchant_id)
    return True


def hold_for_review(tx: InTransaction, order_id: int) -> bool:
    """Inside an open unit of work: a reserved order waits for a review (risk). It keeps its units, cannot
    be paid and does not expire until released (`release_held`) or ended (`end_reservation`)."""
    return bool(tx.session.execute(update(Order).where(Order.id == order_id, Order.status == rules.OrderStatus.RESERVED)
                                   .values(status=rules.OrderStatus.HELD)).rowcount)  # type: ignore[attr-defined]


def release_held(tx: InTransaction, order_id: int, expires_at: datetime) -> bool:
    """Inside an open unit of work: a held order goes on as a reservation, payable until `expires_at`."""
    return bool(tx.session.execute(update(Order).where(Order.id == order_id, Order.status == rules.OrderStatus.HELD)
                                   .values(status=rules.OrderStatus.RESERVED, expires_at=expires_at))
                .rowcount)  # type: ignore[attr-defined]
