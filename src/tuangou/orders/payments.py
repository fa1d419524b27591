"""Paying an order: three short transactions around the gateway call, and reconciliation."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from tuangou.catalog import service as catalog
from tuangou.core import ledger
from tuangou.core.auth import Principal
from tuangou.core.db import UnitOfWork, retry_on_deadlock
from tuangou.core.errors import Conflict
from tuangou.core.money import yuan
from tuangou.core.outbox import record_event
from tuangou.notify import service as notify
from tuangou.orders import refunds, rules
from tuangou.orders import service as orders
from tuangou.orders.gateway import GatewayResult, GatewayTimeout, PaymentGateway
from tuangou.orders.models import Order, Payment, Voucher

# ---- paying -------------------------------------------------------------------------------------

def pay_order(uow: UnitOfWork, buyer: Principal, order_id: int, client_key: str, gateway: PaymentGateway,
              outcome: str | None = None) -> tuple[orders.OrderView, dict[str, Any]]:
    """Charge a reserved order. Three short transactions around the gateway call,
    so no database lock is held while the gateway thinks."""
    client_key = client_key or f"anon-{uuid.uuid4().hex}"
    with uow:
        order = orders._own_order(uow, buyer, order_id)
        existing = uow.session.scalar(select(Payment).where(Payment.order_id == order_id,
                                                            Payment.client_key == client_key))
        if existing is not None and existing.status != rules.PaymentStatus.PENDING:
            return orders._view(uow, order), _payment_view(existing)
        if order.status == rules.OrderStatus.PAID:
            return orders._view(uow, order), {"status": "succeeded", "replayed": True}
        if order.status != rules.OrderStatus.RESERVED:
            raise Conflict(f"order is {order.status}; it cannot be paid", code="not_payable")
        if order.expires_at <= uow.now:
            orders._end_reservation(uow, order, rules.OrderStatus.EXPIRED)
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
        return orders._view(reader, final), payment


def _payment_view(p: Payment) -> dict[str, Any]:
    return {"id": p.id, "status": p.status, "amount_cents": p.amount_cents, "message": p.message,
            "gateway_ref": p.gateway_ref}


@retry_on_deadlock
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
        refunds.owe_refund(uow, order, payment.amount_cents, f"late:{payment.key}", charge_ref,
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
    for hook in orders.ORDER_PAID_HOOKS:
        hook(uow, order)





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
