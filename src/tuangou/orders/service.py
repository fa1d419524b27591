"""Orders: the reservation hot path, payment, vouchers, redemption (核销) and refunds.

Every state change is a conditional UPDATE on the row's current status, so a
retried or concurrent call finds the row already moved and changes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from tuangou.catalog import rules as catalog_rules
from tuangou.catalog import service as catalog
from tuangou.core import ledger
from tuangou.core.audit import record_audit
from tuangou.core.auth import Principal, Role
from tuangou.core.db import UnitOfWork, upsert_add
from tuangou.core.errors import (
    Conflict,
    Forbidden,
    IdempotencyConflict,
    NotFound,
    ValidationFailed,
)
from tuangou.core.money import percent_of, yuan
from tuangou.core.outbox import record_event
from tuangou.disputes import rules as coupon_rules
from tuangou.notify import service as notify
from tuangou.orders import rules
from tuangou.orders.gateway import GatewayResult, GatewayTimeout, PaymentGateway
from tuangou.orders.models import BuyerDealCount, Order, Payment, Refund, Voucher

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


# ---- paying -------------------------------------------------------------------------------------

def pay_order(uow: UnitOfWork, buyer: Principal, order_id: int, client_key: str, gateway: PaymentGateway,
              outcome: str | None = None) -> tuple[OrderView, dict[str, Any]]:
    """Charge a reserved order. Three short transactions around the gateway call,
    so no database lock is held while the gateway thinks."""
    client_key = client_key or f"anon-{uuid.uuid4().hex}"
    with uow:
        order = _own_order(uow, buyer, order_id)
        existing = uow.session.scalar(select(Payment).where(Payment.order_id == order_id,
                                                            Payment.client_key == client_key))
        if existing is not None and existing.status != rules.PaymentStatus.PENDING:
            return _view(uow, order), _payment_view(existing)
        if order.status == rules.OrderStatus.PAID:
            return _view(uow, order), {"status": "succeeded", "replayed": True}
        if order.status != rules.OrderStatus.RESERVED:
            raise Conflict(f"order is {order.status}; it cannot be paid", code="not_payable")
        if order.expires_at <= uow.now:
            _end_reservation(uow, order, rules.OrderStatus.EXPIRED)
            uow.commit()
            raise Conflict("the reservation expired before payment", code="reservation_expired")
        if existing is None:
            existing = Payment(order_id=order_id, key=f"pay_{uuid.uuid4().hex}", client_key=client_key,
                               amount_cents=order.amount_cents, status=rules.PaymentStatus.PENDING,
                               created_at=uow.now)
            uow.session.add(existing)
            try:
                uow.commit()
            except IntegrityError as exc:
                raise Conflict("a payment for this order is already in flight; retry in a minute",
                               code="payment_in_progress") from exc
        payment_id, key, amount = existing.id, existing.key, existing.amount_cents
    try:
        result: GatewayResult | None = gateway.charge(key, amount, outcome)
    except GatewayTimeout:
        result = None
    payment = apply_charge(uow, payment_id, result)
    # The answer is read after commit on the read engine: no write transaction, no SQLite write lock.
    reader = UnitOfWork(uow.db, uow.clock, readonly=True)
    with reader:
        final = reader.session.get(Order, order_id)
        assert final is not None
        return _view(reader, final), payment


def _payment_view(p: Payment) -> dict[str, Any]:
    return {"id": p.id, "status": p.status, "amount_cents": p.amount_cents, "message": p.message,
            "gateway_ref": p.gateway_ref}


def apply_charge(uow: UnitOfWork, payment_id: int, result: GatewayResult | None) -> dict[str, Any]:
    """Record the gateway's answer (None = no answer). Idempotent per payment."""
    with uow:
        payment = uow.session.get(Payment, payment_id)
        assert payment is not None
        open_states = (rules.PaymentStatus.PENDING, rules.PaymentStatus.UNKNOWN)
        if result is None:
            uow.session.execute(update(Payment).where(Payment.id == payment_id, Payment.status.in_(open_states))
                                .values(status=rules.PaymentStatus.UNKNOWN, message="gateway timeout"))
            uow.session.refresh(payment)  # before commit: no second transaction just to read it back
            uow.commit()
            return _payment_view(payment)
        status = rules.PaymentStatus.SUCCEEDED if result.ok else rules.PaymentStatus.FAILED
        moved = uow.session.execute(update(Payment).where(Payment.id == payment_id, Payment.status.in_(open_states))
                                    .values(status=status, gateway_ref=result.reference, message=result.message,
                                            decided_at=uow.now)).rowcount  # type: ignore[attr-defined]
        if moved and result.ok:
            _capture(uow, payment, result.reference)
        uow.session.refresh(payment)  # before commit: no second transaction just to read it back
        uow.commit()
        return _payment_view(payment)


def _capture(uow: UnitOfWork, payment: Payment, charge_ref: str) -> None:
    order = uow.session.get(Order, payment.order_id)
    assert order is not None
    ref = f"order:{order.id}"
    ledger.post(uow.session, "payment", [(ledger.EXTERNAL_BUYERS, -payment.amount_cents),
                                         (ledger.ESCROW, payment.amount_cents)], uow.now, ref=ref)
    paid = uow.session.execute(update(Order).where(Order.id == order.id, Order.status == rules.OrderStatus.RESERVED)
                               .values(status=rules.OrderStatus.PAID, paid_at=uow.now,
                                       extra={**(order.extra or {}), "charge_ref": charge_ref})).rowcount  # type: ignore[attr-defined]
    if not paid:
        # The reservation ended while the gateway was charging: give the money back.
        _owe_refund(uow, order, payment.amount_cents, f"late:{payment.key}", charge_ref,
                    "payment arrived after the reservation ended")
        return
    catalog.confirm_sold(uow, order.deal_id, order.buckets, order.quantity)
    codes = []
    for _ in range(order.quantity):
        code = rules.new_voucher_code()
        codes.append(code)
        uow.session.add(Voucher(code=code, order_id=order.id, deal_id=order.deal_id, merchant_id=order.merchant_id,
                                buyer_id=order.buyer_id, price_cents=order.unit_price_cents,
                                status=rules.VoucherStatus.ISSUED, issued_at=uow.now))
    uow.session.refresh(order)
    record_event(uow.session, "OrderPaid", {"order_id": order.id, "amount_cents": order.amount_cents,
                                            "deal_id": order.deal_id, "vouchers": len(codes)}, uow.now,
                 merchant_id=order.merchant_id)
    notify.notify_user(uow, order.buyer_id, "order_paid", f"Paid {yuan(order.amount_cents)} for order #{order.id}",
                       f"{len(codes)} voucher(s) ready to use.", {"order_id": order.id})
    for hook in ORDER_PAID_HOOKS:
        hook(uow, order)


def _owe_refund(uow: UnitOfWork, order: Order, amount: int, key: str, charge_ref: str, reason: str,
                source: str = ledger.ESCROW) -> int:
    """Book money owed back to the buyer; the refund job pays it out. Unique per key."""
    uow.session.add(Refund(key=key, order_id=order.id, buyer_id=order.buyer_id, amount_cents=amount,
                           charge_ref=charge_ref, reason=reason, status=rules.RefundStatus.PENDING, attempts=0,
                           next_attempt_at=uow.now, created_at=uow.now))
    ledger.post(uow.session, "refund_owed", [(source, -amount), (REFUNDS_PAYABLE, amount)], uow.now,
                ref=f"order:{order.id}")
    record_event(uow.session, "RefundOwed", {"order_id": order.id, "amount_cents": amount, "reason": reason},
                 uow.now, merchant_id=order.merchant_id)
    return amount


REFUNDS_PAYABLE = "platform:refunds_payable"


def reconcile_payments(uow: UnitOfWork, gateway: PaymentGateway, older_than_s: int = 60) -> int:
    """Ask the gateway about payments left unknown or pending (a timeout, a crash)."""
    with uow:
        ids = list(uow.session.scalars(select(Payment.id).where(
            Payment.status.in_((rules.PaymentStatus.UNKNOWN, rules.PaymentStatus.PENDING)),
            Payment.created_at <= uow.now - timedelta(seconds=older_than_s)).limit(200)))
        keys = {pid: uow.session.get(Payment, pid).key for pid in ids}  # type: ignore[union-attr]
    for pid, key in keys.items():
        found = gateway.lookup(key)
        apply_charge(uow, pid, found if found is not None else GatewayResult(False, "", "never reached the gateway"))
    return len(keys)


# ---- vouchers -----------------------------------------------------------------------------------

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


# ---- refunds ------------------------------------------------------------------------------------

def refund_vouchers(uow: UnitOfWork, actor: Principal, order_id: int, codes: list[str] | None,
                    reason: str = "") -> OrderView:
    """A buyer (or ops) refunds unredeemed vouchers; capacity returns, money is owed back at once."""
    with uow:
        order = _own_order(uow, actor, order_id, lock=True)
        if actor.role not in (Role.BUYER, Role.OPS):
            raise Forbidden("only the buyer or ops refund an order")
        amount = refund_in_uow(uow, order, codes, reason or "refund requested by buyer")
        if actor.role == Role.OPS:
            record_audit(uow.session, actor_id=actor.user_id, actor_role="ops", action="refund_order",
                         target=f"order:{order.id}", reason=reason, now=uow.now, details={"amount_cents": amount})
        uow.commit()
        return _view(uow, order)


def refund_in_uow(uow: UnitOfWork, order: Order | int, codes: list[str] | None, reason: str,
                  source: str = ledger.ESCROW) -> int:
    """Inside an open unit of work: refund the order's issued vouchers (all, or `codes`).

    Returns the amount owed back (cents); 0 if nothing was left to refund and
    `codes` was None. `source` is ESCROW normally; disputes pay from COMPENSATION.
    """
    if isinstance(order, int):
        found = uow.session.scalar(select(Order).where(Order.id == order).with_for_update())
        if found is None:
            raise NotFound(f"order {order} not found")
        order = found
    if order.status not in (rules.OrderStatus.PAID,):
        raise Conflict(f"order is {order.status}; nothing to refund", code="not_refundable")
    refunded_before = int(uow.session.scalar(select(func.count()).select_from(Voucher).where(
        Voucher.order_id == order.id, Voucher.status == rules.VoucherStatus.REFUNDED)) or 0)
    q = select(Voucher).where(Voucher.order_id == order.id, Voucher.status == rules.VoucherStatus.ISSUED)
    if codes:
        wanted = {c.strip().upper() for c in codes}
        q = q.where(Voucher.code.in_(wanted))
    vouchers = list(uow.session.scalars(q.order_by(Voucher.id)))
    if codes and len(vouchers) != len({c.strip().upper() for c in codes}):
        raise Conflict("some vouchers are not refundable (redeemed, refunded or unknown)", code="not_refundable")
    refunded = []
    for v in vouchers:
        if uow.session.execute(update(Voucher).where(Voucher.id == v.id, Voucher.status == rules.VoucherStatus.ISSUED)
                               .values(status=rules.VoucherStatus.REFUNDED, refunded_at=uow.now)).rowcount:  # type: ignore[attr-defined]
            refunded.append(v)
    if not refunded:
        if codes is None:
            return 0
        raise Conflict("nothing left to refund", code="not_refundable")
    amount = sum(v.price_cents for v in refunded)
    if (order.extra or {}).get("coupon_code"):
        # the coupon's part of these vouchers is not the buyer's cash: it goes back to the coupon
        from tuangou.disputes import service as disputes
        amount -= disputes.coupon_refund_share(uow, order.id, order.quantity, refunded_before, len(refunded))
    catalog.release_sold(uow, order.deal_id, order.buckets, len(refunded))
    _uncount(uow, order, len(refunded))
    if source != ledger.ESCROW:
        # the platform pays first; escrow still holds the buyer's money and goes to the platform
        ledger.post(uow.session, "escrow_to_compensation", [(ledger.ESCROW, -amount),
                                                            (ledger.COMPENSATION, amount)], uow.now,
                    ref=f"order:{order.id}")
    if amount:
        _owe_refund(uow, order, amount, f"vouchers:{order.id}:{refunded[0].id}:{len(refunded)}",
                    (order.extra or {}).get("charge_ref", ""), reason, source)
    _settle(uow, order)
    uow.session.refresh(order)
    record_event(uow.session, "VouchersRefunded", {"order_id": order.id, "count": len(refunded),
                                                   "amount_cents": amount, "reason": reason}, uow.now,
                 merchant_id=order.merchant_id)
    notify.notify_user(uow, order.buyer_id, "refund_started", f"Refund of {yuan(amount)} on its way",
                       reason, {"order_id": order.id, "amount_cents": amount})
    return amount


def refund_for_dispute(uow: UnitOfWork, order_id: int, reason: str, key: str, source: str) -> dict[str, int]:
    """Inside an open unit of work: make an order free for a confirmed dispute, paid from `source`.

    Issued vouchers are refunded (their escrow moves through `source`); vouchers already redeemed
    were settled to the merchant, so the platform advances their price from `source` as well.
    Returns {"escrow_cents", "advanced_cents"}: what escrow covered and what the platform advanced.
    """
    order = uow.session.scalar(select(Order).where(Order.id == order_id).with_for_update())
    if order is None:
        raise NotFound(f"order {order_id} not found")
    escrow = refund_in_uow(uow, order, None, reason, source=source) if order.status == rules.OrderStatus.PAID else 0
    redeemed = list(uow.session.scalars(select(Voucher.price_cents).where(
        Voucher.order_id == order.id, Voucher.status == rules.VoucherStatus.REDEEMED)))
    discount = int((order.extra or {}).get("coupon_discount_cents", 0))
    advanced = max(0, sum(redeemed) - coupon_rules.coupon_share(discount, order.quantity, 0, len(redeemed)))
    if advanced:
        _owe_refund(uow, order, advanced, f"{key}:redeemed", (order.extra or {}).get("charge_ref", ""), reason,
                    source)
    return {"escrow_cents": escrow, "advanced_cents": advanced}


def owe_extra_refund(uow: UnitOfWork, order_id: int, amount: int, key: str, reason: str, source: str) -> None:
    """Inside an open unit of work: pay a buyer `amount` back on an order from `source` (after-sales
    discount or return paid by the merchant's account); one refund per key."""
    order = uow.session.get(Order, order_id)
    if order is None:
        raise NotFound(f"order {order_id} not found")
    if not 0 < amount <= order.amount_cents:
        raise ValidationFailed("the amount must be positive and at most what the order cost")
    _owe_refund(uow, order, amount, key, (order.extra or {}).get("charge_ref", ""), reason, source)


def process_refunds(uow: UnitOfWork, gateway: PaymentGateway, batch: int = 100, order_id: int | None = None
                    ) -> dict[str, int]:
    """Push owed refunds through the gateway until each succeeds; safe to run twice.

    The gateway refund is idempotent by the refund's key, so a crash after the
    gateway paid but before we recorded it pays nothing twice on the next run.
    """
    counts = {"succeeded": 0, "retrying": 0}
    with uow:
        due = select(Refund.id).where(Refund.status == rules.RefundStatus.PENDING, Refund.next_attempt_at <= uow.now)
        if order_id is not None:  # an immediate attempt for one order (disputes pay out right after commit)
            due = due.where(Refund.order_id == order_id)
        ids = list(uow.session.scalars(due.limit(batch)))
    for refund_id in ids:
        with uow:
            claimed = uow.session.execute(update(Refund).where(
                Refund.id == refund_id, Refund.status == rules.RefundStatus.PENDING,
                Refund.next_attempt_at <= uow.now).values(attempts=Refund.attempts + 1,
                                                          next_attempt_at=uow.now + timedelta(seconds=60))).rowcount  # type: ignore[attr-defined]
            refund = uow.session.get(Refund, refund_id)
            assert refund is not None
            uow.commit()
        if not claimed:
            continue
        try:
            result: GatewayResult | None = gateway.refund(refund.key, refund.charge_ref, refund.amount_cents)
        except GatewayTimeout:
            result = None
        with uow:
            r = uow.session.get(Refund, refund_id)
            assert r is not None
            if result is not None and result.ok:
                done = uow.session.execute(update(Refund).where(Refund.id == refund_id,
                                                                Refund.status == rules.RefundStatus.PENDING)
                                           .values(status=rules.RefundStatus.SUCCEEDED, done_at=uow.now,
                                                   gateway_ref=result.reference, last_error="")).rowcount  # type: ignore[attr-defined]
                if done:
                    ledger.post(uow.session, "refund_paid", [(REFUNDS_PAYABLE, -r.amount_cents),
                                                             (ledger.EXTERNAL_BUYERS, r.amount_cents)],
                                uow.now, ref=f"order:{r.order_id}")
                    record_event(uow.session, "RefundSucceeded", {"order_id": r.order_id, "refund_id": r.id,
                                                                  "amount_cents": r.amount_cents}, uow.now)
                    notify.notify_user(uow, r.buyer_id, "refund_done", f"{yuan(r.amount_cents)} refunded",
                                       r.reason, {"order_id": r.order_id})
                    counts["succeeded"] += 1
            else:
                r.next_attempt_at = uow.now + rules.refund_backoff(r.attempts)
                r.last_error = (result.message if result else "gateway timeout")[:200]
                counts["retrying"] += 1
            uow.commit()
    return counts


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
