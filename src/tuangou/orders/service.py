"""Orders: the reservation hot path, payment, vouchers, redemption (核销) and refunds.

Every state change is a conditional UPDATE on the row's current status, so a
retried or concurrent call finds the row already moved and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from tuangou.catalog import rules as catalog_rules
from tuangou.catalog import service as catalog
from tuangou.core import ledger
from tuangou.core.audit import record_audit
from tuangou.core.auth import Principal, Role
from tuangou.core.db import UnitOfWork, retry_on_deadlock, upsert_add
from tuangou.core.errors import (
    Conflict,
    Forbidden,
    IdempotencyConflict,
    NotFound,
    ValidationFailed,
)
from tuangou.core.money import percent_of
from tuangou.core.outbox import record_event
from tuangou.notify import service as notify
from tuangou.orders import rules
from tuangou.orders.models import BuyerDealCount, Order, Refund, Voucher

# Hooks other capabilities register at import: called inside the placing unit of work
# with (uow, deal context, order, bucket states after the hold). They may raise to refuse.
ORDER_PLACED_HOOKS: list[Any] = []
# Called inside the capturing unit of work with (uow, order) once an order is paid (campaigns count
# paid participants here). They may book a refund for the order with refund_in_uow.
ORDER_PAID_HOOKS: list[Any] = []


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


def _view(uow: UnitOfWork, o: Order, with_vouchers: bool = True) -> OrderView:
    vouchers = []
    if with_vouchers and o.status not in (rules.OrderStatus.RESERVED, rules.OrderStatus.EXPIRED,
                                          rules.OrderStatus.CANCELLED):
        vouchers = [{"code": v.code, "qr": rules.qr_payload(v.code), "status": v.status,
                     "redeemed_at": v.redeemed_at.isoformat() if v.redeemed_at else None}
                    for v in uow.session.scalars(select(Voucher).where(Voucher.order_id == o.id).order_by(Voucher.id))]
    return OrderView(o.id, o.buyer_id, o.deal_id, o.merchant_id, o.store_id, o.quantity, o.unit_price_cents,
                     o.amount_cents, o.service_date.isoformat() if o.service_date else None, o.slot, o.status,
                     o.expires_at.isoformat(), o.created_at.isoformat(),
                     o.paid_at.isoformat() if o.paid_at else None, vouchers)


def _visible(actor: Principal, o: Order) -> bool:
    return (actor.role == Role.OPS or (actor.role == Role.BUYER and o.buyer_id == actor.user_id)
            or (actor.role == Role.MERCHANT and o.merchant_id == actor.merchant_id))


# ---- placing ------------------------------------------------------------------------------------

def place_order(uow: UnitOfWork, buyer: Principal, deal_id: int, quantity: int, idempotency_key: str, *,
                service_date: date | None = None, slot: str | None = None, ttl_minutes: int = 15,
                coupon_code: str | None = None) -> tuple[OrderView, bool]:
    """Reserve `quantity` units of a deal for `buyer`; returns (order, replayed).

    Preconditions: buyer role. The same idempotency key returns the same order
    (replayed=True); the same key with another body raises idempotency_conflict.
    """
    buyer.require(Role.BUYER)
    if not 0 < quantity <= 1000:
        raise ValidationFailed("quantity must be between 1 and 1000")
    if not idempotency_key or len(idempotency_key) > 128:
        raise ValidationFailed("an Idempotency-Key header (1-128 characters) is required",
                               code="idempotency_key_required")
    body = {"deal": deal_id, "q": quantity, "d": service_date, "s": slot}
    if coupon_code:
        body["c"] = coupon_code
    fingerprint = rules.request_fingerprint(body)
    with uow:
        replay = _replay(uow, buyer.user_id, idempotency_key, fingerprint)
        if replay is not None:
            return replay, True
        ctx = catalog.deal_context(uow, deal_id)
        if ctx.status != catalog_rules.DealStatus.PUBLISHED:
            raise Conflict(f"deal {deal_id} is not on sale", code="not_on_sale")
        if ctx.per_buyer_limit is not None and quantity > ctx.per_buyer_limit:
            raise Conflict(f"at most {ctx.per_buyer_limit} per buyer", code="per_buyer_limit")
        day = _service_day(uow, ctx, service_date, slot)
        keys = catalog_rules.buckets_for_order(ctx.kind, day, slot, ctx.has_total_cap)
        order = Order(buyer_id=buyer.user_id, deal_id=deal_id, merchant_id=ctx.merchant_id, store_id=ctx.store_id,
                      quantity=quantity, unit_price_cents=ctx.price_cents, amount_cents=ctx.price_cents * quantity,
                      service_date=day, slot=slot, buckets=keys, status=rules.OrderStatus.RESERVED,
                      idempotency_key=idempotency_key, fingerprint=fingerprint,
                      expires_at=rules.reservation_expiry(uow.now, ttl_minutes), created_at=uow.now, extra={})
        uow.session.add(order)
        try:
            uow.session.flush()
        except IntegrityError:
            uow.rollback()  # a concurrent request with the same key won; answer with its order
            replay = _replay(uow, buyer.user_id, idempotency_key, fingerprint)
            if replay is None:
                raise
            return replay, True
        states = catalog.reserve(uow, ctx, keys, quantity)
        if not upsert_add(uow.session, BuyerDealCount.__table__, {"deal_id": deal_id, "buyer_id": buyer.user_id,
                          "qty": quantity}, ["deal_id", "buyer_id"], "qty", ctx.per_buyer_limit):
            raise Conflict(f"at most {ctx.per_buyer_limit} per buyer", code="per_buyer_limit")
        for hook in ORDER_PLACED_HOOKS:
            hook(uow, ctx, order, states)
        if coupon_code:
            _apply_coupon(uow, order, coupon_code)
        record_event(uow.session, "OrderPlaced", {"order_id": order.id, "deal_id": deal_id, "quantity": quantity,
                                                  "buyer_id": buyer.user_id}, uow.now, merchant_id=ctx.merchant_id)
        uow.commit()
        return _view(uow, order, with_vouchers=False), False


def _apply_coupon(uow: UnitOfWork, order: Order, code: str) -> None:
    """Coupons live in disputes; one conditional UPDATE there makes a coupon usable once."""
    from tuangou.disputes import service as disputes
    discount = disputes.apply_coupon(uow, buyer_id=order.buyer_id, code=code, order_id=order.id,
                                     merchant_id=order.merchant_id, order_cents=order.amount_cents)
    order.amount_cents -= discount
    order.extra = {**(order.extra or {}), "coupon_code": code.strip().upper(), "coupon_discount_cents": discount}
    uow.session.flush()


def _replay(uow: UnitOfWork, buyer_id: int, key: str, fingerprint: str) -> OrderView | None:
    existing = uow.session.scalar(select(Order).where(Order.buyer_id == buyer_id, Order.idempotency_key == key))
    if existing is None:
        return None
    if existing.fingerprint != fingerprint:
        raise IdempotencyConflict("this Idempotency-Key was used for a different order")
    return _view(uow, existing)


def _service_day(uow: UnitOfWork, ctx: catalog.DealContext, service_date: date | None, slot: str | None
                 ) -> date | None:
    if ctx.kind == catalog_rules.DealKind.GOODS:
        if service_date is not None or slot is not None:
            raise ValidationFailed("goods deals take no service_date or slot")
        return None
    zone = ZoneInfo(ctx.timezone)
    today = uow.now.astimezone(zone).date()
    day = service_date or today
    problem = catalog_rules.service_date_problem(day, today, ctx.valid_from.astimezone(zone).date(),
                                                 ctx.valid_until.astimezone(zone).date())
    if problem:
        raise ValidationFailed(problem, code="invalid_service_date")
    if ctx.slots and slot not in ctx.slots:
        raise ValidationFailed(f"slot must be one of {', '.join(sorted(ctx.slots))}", code="invalid_slot")
    if not ctx.slots and slot is not None:
        raise ValidationFailed("this deal has no time slots", code="invalid_slot")
    return day


@retry_on_deadlock
def cancel_order(uow: UnitOfWork, buyer: Principal, order_id: int) -> OrderView:
    """A buyer gives up an unpaid reservation; its capacity returns at once."""
    with uow:
        order = _own_order(uow, buyer, order_id)
        if not _end_reservation(uow, order, rules.OrderStatus.CANCELLED):
            raise Conflict(f"order is {order.status}, only a reserved order can be cancelled",
                           code="not_cancellable")
        uow.commit()
        return _view(uow, order)


def _end_reservation(uow: UnitOfWork, order: Order, status: rules.OrderStatus) -> bool:
    moved = uow.session.execute(update(Order).where(Order.id == order.id, Order.status == rules.OrderStatus.RESERVED)
                                .values(status=status)).rowcount  # type: ignore[attr-defined]
    if not moved:
        return False
    catalog.release_reserved(uow, order.deal_id, order.buckets, order.quantity)
    _uncount(uow, order, order.quantity)
    if (order.extra or {}).get("coupon_code"):
        from tuangou.disputes import service as disputes
        disputes.restore_coupon(uow, order.id)
    uow.session.refresh(order)
    record_event(uow.session, f"Order{status.value.capitalize()}", {"order_id": order.id}, uow.now,
                 merchant_id=order.merchant_id)
    return True


def _uncount(uow: UnitOfWork, order: Order, qty: int) -> None:
    uow.session.execute(update(BuyerDealCount).where(BuyerDealCount.deal_id == order.deal_id,
                                                     BuyerDealCount.buyer_id == order.buyer_id)
                        .values(qty=BuyerDealCount.qty - qty))


@retry_on_deadlock
def expire_due(uow: UnitOfWork, batch: int = 500) -> int:
    """Expire reservations past their time; idempotent."""
    with uow:
        ids = list(uow.session.scalars(select(Order.id).where(Order.status == rules.OrderStatus.RESERVED,
                                                              Order.expires_at <= uow.now).limit(batch)))
        n = 0
        for order_id in ids:
            order = uow.session.get(Order, order_id)
            if order is not None and _end_reservation(uow, order, rules.OrderStatus.EXPIRED):
                n += 1
                notify.notify_user(uow, order.buyer_id, "order_expired", f"Order #{order.id} expired",
                                   "It was not paid in time; the units went back on sale.", {"order_id": order.id})
        uow.commit()
        return n


# ---- vouchers -----------------------------------------------------------------------------------

@retry_on_deadlock
def redeem_voucher(uow: UnitOfWork, actor: Principal, code: str, commission_bps: int) -> dict[str, Any]:
    """The merchant redeems (核销) a voucher once; a second attempt, even at the same instant, is refused."""
    actor.require(Role.MERCHANT, Role.OPS)
    with uow:
        voucher = uow.session.scalar(select(Voucher).where(Voucher.code == code.strip().upper()))
        if voucher is None or (actor.role == Role.MERCHANT and voucher.merchant_id != actor.merchant_id):
            raise NotFound("no such voucher")
        order = uow.session.scalar(select(Order).where(Order.id == voucher.order_id).with_for_update())
        assert order is not None
        ctx = catalog.deal_context(uow, voucher.deal_id)
        if ctx.valid_until <= uow.now:
            raise Conflict("this voucher's deal is no longer valid", code="voucher_expired")
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
                         target=f"voucher:{voucher.id}", reason="redeemed by ops", now=uow.now)
        commission = percent_of(voucher.price_cents, commission_bps)
        ledger.post(uow.session, "settlement", [(ledger.ESCROW, -voucher.price_cents),
                                                (ledger.merchant_account(voucher.merchant_id),
                                                 voucher.price_cents - commission),
                                                (ledger.REVENUE, commission)], uow.now, ref=f"order:{order.id}")
        _settle(uow, order)
        record_event(uow.session, "VoucherRedeemed", {"order_id": order.id, "deal_id": voucher.deal_id,
                                                      "voucher_id": voucher.id}, uow.now,
                     merchant_id=voucher.merchant_id)
        notify.notify_user(uow, voucher.buyer_id, "voucher_redeemed", f"Voucher used for {ctx.title}",
                           "", {"order_id": order.id})
        uow.commit()
        return {"code": voucher.code, "status": rules.VoucherStatus.REDEEMED, "order_id": order.id,
                "deal_id": voucher.deal_id, "redeemed_at": uow.now.isoformat()}


def _settle(uow: UnitOfWork, order: Order) -> None:
    statuses = list(uow.session.scalars(select(Voucher.status).where(Voucher.order_id == order.id)))
    final = rules.settled_status(statuses)
    if final is not None:
        uow.session.execute(update(Order).where(Order.id == order.id, Order.status == rules.OrderStatus.PAID)
                            .values(status=final))


def lookup_voucher(uow: UnitOfWork, actor: Principal, code: str) -> dict[str, Any]:
    with uow:
        v = uow.session.scalar(select(Voucher).where(Voucher.code == code.strip().upper()))
        if v is None or not (actor.role == Role.OPS or v.merchant_id == actor.merchant_id
                             or v.buyer_id == actor.user_id):
            raise NotFound("no such voucher")
        return {"code": v.code, "qr": rules.qr_payload(v.code), "status": v.status, "order_id": v.order_id,
                "deal_id": v.deal_id, "price_cents": v.price_cents,
                "redeemed_at": v.redeemed_at.isoformat() if v.redeemed_at else None}


# ---- reading ------------------------------------------------------------------------------------

def _own_order(uow: UnitOfWork, actor: Principal, order_id: int, lock: bool = False) -> Order:
    """The order if `actor` may see it: 404 when there is none, 403 when it is someone else's."""
    q = select(Order).where(Order.id == order_id)
    if lock:
        q = q.with_for_update()
    order = uow.session.scalar(q)
    if order is None:
        raise NotFound(f"order {order_id} not found")
    if not _visible(actor, order):
        raise Forbidden("this order belongs to another account")
    return order


def get_order(uow: UnitOfWork, actor: Principal, order_id: int) -> OrderView:
    with uow:
        return _view(uow, _own_order(uow, actor, order_id))


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
        return [_view(uow, o) for o in uow.session.scalars(q)]


def order_facts(uow: UnitOfWork, order_id: int) -> dict[str, Any]:
    """Inside an open unit of work: plain facts of an order for other capabilities."""
    o = uow.session.get(Order, order_id)
    if o is None:
        raise NotFound(f"order {order_id} not found")
    return {"id": o.id, "buyer_id": o.buyer_id, "deal_id": o.deal_id, "merchant_id": o.merchant_id,
            "store_id": o.store_id, "quantity": o.quantity, "amount_cents": o.amount_cents,
            "unit_price_cents": o.unit_price_cents, "status": o.status, "service_date": o.service_date,
            "slot": o.slot, "buckets": list(o.buckets), "created_at": o.created_at, "paid_at": o.paid_at,
            "charge_ref": (o.extra or {}).get("charge_ref", "")}


def paid_orders_on(uow: UnitOfWork, deal_id: int, bucket: str) -> list[dict[str, Any]]:
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

def cancel_reservations_on(uow: UnitOfWork, deal_id: int, bucket: str, reason: str,
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
        if bucket in (order.buckets or []) and _end_reservation(uow, order, rules.OrderStatus.CANCELLED):
            notify.notify_user(uow, order.buyer_id, "order_cancelled", f"Order #{order.id} cancelled", reason,
                               {"order_id": order.id})
            released += order.quantity
    return released


def postpone_order_in_uow(uow: UnitOfWork, order_id: int, new_date: date, new_day_cap: int) -> bool:
    """Inside an open unit of work: move a paid order's unused vouchers to `new_date` if they fit there.

    The units are taken on the new date's bucket with one conditional UPDATE
    (never past its cap; `new_day_cap` if the bucket does not exist yet) and only
    then released on the old one. Returns False, changing nothing, if they do not fit.
    """
    order = uow.session.scalar(select(Order).where(Order.id == order_id).with_for_update())
    if order is None or order.status != rules.OrderStatus.PAID or order.service_date is None:
        return False
    qty = len(list(uow.session.scalars(select(Voucher.id).where(Voucher.order_id == order.id,
                                                                 Voucher.status == rules.VoucherStatus.ISSUED))))
    old_key = catalog_rules.date_bucket(order.service_date, order.slot)
    new_key = catalog_rules.date_bucket(new_date, order.slot)
    if qty == 0 or new_key == old_key or not catalog.take_sold(uow, order.deal_id, new_key, qty, new_day_cap):
        return False
    catalog.release_sold(uow, order.deal_id, [old_key], qty)
    old_date = order.service_date
    order.service_date = new_date
    order.buckets = sorted(new_key if k == old_key else k for k in order.buckets)
    record_event(uow.session, "OrderPostponed", {"order_id": order.id, "from": old_date.isoformat(),
                                                 "to": new_date.isoformat(), "units": qty}, uow.now,
                 merchant_id=order.merchant_id)
    return True


# Paying and refunding live in their own modules; this module stays the capability's one entry point.
from tuangou.orders.payments import (  # noqa: E402
    apply_charge,
    pay_order,
    reconcile_payments,
)
from tuangou.orders.refunds import (  # noqa: E402
    REFUNDS_PAYABLE,
    owe_extra_refund,
    process_refunds,
    refund_for_dispute,
    refund_in_uow,
    refund_vouchers,
)

__all__ = ["ORDER_PAID_HOOKS", "ORDER_PLACED_HOOKS", "REFUNDS_PAYABLE", "OrderView", "apply_charge",
           "cancel_order", "expire_due", "get_order", "list_orders", "lookup_voucher", "owe_extra_refund",
           "pay_order", "place_order", "process_refunds", "reconcile_payments", "redeem_voucher",
           "refund_for_dispute", "refund_in_uow", "refund_vouchers"]
