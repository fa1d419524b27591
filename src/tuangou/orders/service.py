"""Orders: the reservation hot path, payment, vouchers, redemption (核销) and refunds.

Every state change is a conditional UPDATE on the row's current status, so a
retried or concurrent call finds the row already moved and changes nothing.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from tuangou.catalog import service as catalog
from tuangou.core import ledger
from tuangou.core.audit import record_audit, require_reason
from tuangou.core.auth import Principal, Role
from tuangou.core.db import InTransaction, UnitOfWork, retry_on_deadlock
from tuangou.core.errors import Conflict, NotFound
from tuangou.core.money import percent_of
from tuangou.core.outbox import record_event
from tuangou.notify import service as notify
from tuangou.orders import expiry, rules
from tuangou.orders.gateway import PaymentGateway
from tuangou.orders.models import Order, Refund, Voucher
from tuangou.orders.participants import OrderParticipant, Placing, registry
from tuangou.orders.payments import (
    capture,
    pay_order,
    reconcile_payments,
    record_charge,
)
from tuangou.orders.placing import place_order
from tuangou.orders.redating import (
    decide_redating,
    list_redatings,
    move_by_agreement,
    offer_redating,
    redate_options,
    request_redating,
)
from tuangou.orders.refunds import (
    REFUNDS_PAYABLE,
    owe_extra_refund,
    process_refunds,
    refund_for_dispute,
    refund_in_uow,
    refund_vouchers,
    refuse_payment,
    reprice_in_uow,
)
from tuangou.orders.views import OrderView, end_reservation, own_order, settle, view


@retry_on_deadlock
def cancel_order(uow: UnitOfWork, buyer: Principal, order_id: int) -> OrderView:
    """A buyer gives up an unpaid reservation; its capacity returns at once."""
    with uow:
        order = own_order(uow, buyer, order_id)
        if not end_reservation(uow, order, rules.OrderStatus.CANCELLED):
            raise Conflict(f"order is {order.status}, only a reserved order can be cancelled",
                           code="not_cancellable")
        uow.commit()
        return view(uow, order)


def expire_due(uow: UnitOfWork, gateway: PaymentGateway | None = None, batch: int = 500) -> int:
    """Expire reservations past their time, a batch in a few set-based statements (orders/expiry.py);
    idempotent. With a gateway, each one's current payment key is looked up first: money captured by a
    process that died before recording it is kept (the order becomes paid), never lost."""
    ids = expiry.due_ids(uow, batch)
    if gateway is not None:
        ids = expiry.settle_charged(uow, gateway, ids)
    return expiry.expire(uow, ids)


# ---- vouchers -----------------------------------------------------------------------------------

@retry_on_deadlock
def redeem_voucher(uow: UnitOfWork, actor: Principal, code: str, commission_bps: int,
                   reason: str = "") -> dict[str, Any]:
    """The merchant redeems (核销) a voucher once; a second attempt, even at the same instant, is refused.
    Ops redeeming on the merchant's behalf state why."""
    actor.require(Role.MERCHANT, Role.OPS)
    if actor.role == Role.OPS:
        require_reason(reason)
    with uow:
        voucher = uow.session.scalar(select(Voucher).where(Voucher.code == code.strip().upper()))
        if voucher is None or (actor.role == Role.MERCHANT and voucher.merchant_id != actor.merchant_id):
            raise NotFound("no such voucher")
        order = uow.session.scalar(select(Order).where(Order.id == voucher.order_id).with_for_update())
        assert order is not None
        ctx = catalog.deal_context(uow, voucher.deal_id)
        if ctx.valid_until <= uow.now:
            raise Conflict("this voucher's deal is no longer valid", code="voucher_expired")
        today = uow.now.astimezone(ZoneInfo(ctx.timezone)).date()
        if voucher.status == rules.VoucherStatus.ISSUED and order.service_date not in (None, today):
            # a booking binds its day (预约): another day takes an agreed re-dating (orders/redating.py)
            raise Conflict(f"this voucher is booked for {order.service_date}, not today ({today})",
                           code="voucher_wrong_date", service_date=order.service_date.isoformat(),
                           slot=order.slot, today=today.isoformat())
        moved = uow.session.execute(update(Voucher).where(Voucher.id == voucher.id,
                                                          Voucher.status == rules.VoucherStatus.ISSUED)
                                    .values(status=rules.VoucherStatus.REDEEMED, redeemed_at=uow.now,
                                            redeemed_by=actor.user_id)).rowcount  # type: ignore[attr-defined]
        if not moved:
            uow.session.refresh(voucher)
            code_ = "already_redeemed" if voucher.status == rules.VoucherStatus.REDEEMED else "voucher_not_usable"
            raise Conflict(f"voucher is {voucher.status}", code=code_)
        if actor.role == Role.OPS:
            record_audit(uow.session, actor_id=actor.user_id, actor_role="ops", action="redeem_voucher",
                         target=f"voucher:{voucher.id}", reason=reason, now=uow.now)
        commission = percent_of(voucher.price_cents, commission_bps)
        ledger.post(uow.session, "settlement", [(ledger.ESCROW, -voucher.price_cents),
                                                (ledger.merchant_account(voucher.merchant_id),
                                                 voucher.price_cents - commission),
                                                (ledger.REVENUE, commission)], uow.now, ref=f"order:{order.id}")
        settle(uow, order)
        record_event(uow.session, "VoucherRedeemed", {"order_id": order.id, "deal_id": voucher.deal_id,
                                                      "voucher_id": voucher.id}, uow.now,
                     merchant_id=voucher.merchant_id)
        notify.notify_user(uow, voucher.buyer_id, "voucher_redeemed", f"Voucher used for {ctx.title}",
                           "", {"order_id": order.id})
        uow.commit()
        return {"code": voucher.code, "status": rules.VoucherStatus.REDEEMED, "order_id": order.id,
                "deal_id": voucher.deal_id, "redeemed_at": uow.now.isoformat()}


def lookup_voucher(uow: UnitOfWork, actor: Principal, code: str) -> dict[str, Any]:
    with uow:
        v = uow.session.scalar(select(Voucher).where(Voucher.code == code.strip().upper()))
        if v is None or not (actor.role == Role.OPS or v.merchant_id == actor.merchant_id
                             or v.buyer_id == actor.user_id):
            raise NotFound("no such voucher")
        order = uow.session.get(Order, v.order_id)
        assert order is not None
        return {"code": v.code, "qr": rules.qr_payload(v.code), "status": v.status, "order_id": v.order_id,
                "deal_id": v.deal_id, "price_cents": v.price_cents,
                "service_date": order.service_date.isoformat() if order.service_date else None, "slot": order.slot,
                "redeemed_at": v.redeemed_at.isoformat() if v.redeemed_at else None}


# ---- reading ------------------------------------------------------------------------------------

def get_order(uow: UnitOfWork, actor: Principal, order_id: int) -> OrderView:
    with uow:
        return view(uow, own_order(uow, actor, order_id))


def list_orders(uow: UnitOfWork, actor: Principal, *, status: str | None = None, deal_id: int | None = None,
                cursor: int | None = None, limit: int = 50) -> list[OrderView]:
    with uow:
        q = select(Order).order_by(Order.id.desc()).limit(limit)
        if actor.role == Role.BUYER:
            q = q.where(Order.buyer_id == actor.user_id)
        elif actor.role == Role.MERCHANT:
            q = q.where(Order.merchant_id == actor.merchant_id)
        if status:
            q = q.where(Order.status == status)
        if deal_id:
            q = q.where(Order.deal_id == deal_id)
        if cursor:
            q = q.where(Order.id < cursor)
        return [view(uow, o) for o in uow.session.scalars(q)]


def order_facts(uow: InTransaction, order_id: int) -> dict[str, Any]:
    """Inside an open unit of work: plain facts of an order for other capabilities."""
    o = uow.session.get(Order, order_id)
    if o is None:
        raise NotFound(f"order {order_id} not found")
    return {"id": o.id, "buyer_id": o.buyer_id, "deal_id": o.deal_id, "merchant_id": o.merchant_id,
            "store_id": o.store_id, "quantity": o.quantity, "amount_cents": o.amount_cents,
            "unit_price_cents": o.unit_price_cents, "status": o.status, "service_date": o.service_date,
            "slot": o.slot, "buckets": list(o.buckets), "created_at": o.created_at, "paid_at": o.paid_at,
            "charge_ref": (o.extra or {}).get("charge_ref", "")}


def paid_orders_on(uow: InTransaction, deal_id: int, bucket: str) -> list[dict[str, Any]]:
    """Inside an open unit of work: paid orders holding units in a bucket, newest first."""
    rows = uow.session.scalars(select(Order).where(Order.deal_id == deal_id, Order.status == rules.OrderStatus.PAID)
                               .order_by(Order.created_at.desc(), Order.id.desc()))
    return [order_facts(uow, o.id) for o in rows if bucket in (o.buckets or [])]


def open_refund_count(uow: UnitOfWork, order_ids: list[int]) -> int:
    """Inside an open unit of work: refunds of these orders the gateway has not paid yet."""
    if not order_ids:
        return 0
    return len(list(uow.session.scalars(select(Refund.id).where(Refund.order_id.in_(order_ids),
                                                                Refund.status == rules.RefundStatus.PENDING))))


# ---- for capacity governance (governance/ circuit breaker) ---------------------------------------------

def cancel_reservations_on(uow: InTransaction, deal_id: int, bucket: str, reason: str,
                           units: int | None = None) -> int:
    """Inside an open unit of work: end unpaid holds on a bucket, newest first, until `units` are
    released (all of them with None); their units return at once. Returns the units released."""
    rows = list(uow.session.scalars(select(Order).where(Order.deal_id == deal_id,
                                                         Order.status == rules.OrderStatus.RESERVED)
                                    .order_by(Order.created_at.desc(), Order.id.desc())))
    released = 0
    for order in rows:
        if units is not None and released >= units:
            break
        if bucket in (order.buckets or []) and end_reservation(uow, order, rules.OrderStatus.CANCELLED):
            notify.notify_user(uow, order.buyer_id, "order_cancelled", f"Order #{order.id} cancelled", reason,
                               {"order_id": order.id})
            released += order.quantity
    return released


__all__ = ["REFUNDS_PAYABLE", "OrderParticipant", "OrderView", "Placing", "cancel_order", "capture",
           "decide_redating", "list_redatings", "move_by_agreement", "offer_redating", "redate_options",
           "request_redating", "expire_due", "get_order", "list_orders", "lookup_voucher", "owe_extra_refund", "pay_order",
           "place_order", "process_refunds", "reconcile_payments", "record_charge", "redeem_voucher",
           "refund_for_dispute", "refund_in_uow", "refund_vouchers", "refuse_payment", "registry",
           "reprice_in_uow"]
