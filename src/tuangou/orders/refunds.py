"""Refunds: money owed back is booked at once; the worker pays it through the gateway until it succeeds."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from tuangou.catalog import service as catalog
from tuangou.core import ledger
from tuangou.core.audit import record_audit, require_reason
from tuangou.core.auth import Principal, Role
from tuangou.core.db import InTransaction, UnitOfWork, insert_ignore, retry_on_deadlock
from tuangou.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from tuangou.core.money import yuan
from tuangou.core.outbox import record_event
from tuangou.notify import service as notify
from tuangou.orders import rules, views
from tuangou.orders.gateway import GatewayResult, GatewayTimeout, PaymentGateway
from tuangou.orders.models import Order, Refund, Voucher
from tuangou.orders.participants import registry

REFUNDS_PAYABLE = "platform:refunds_payable"


def owe_refund(uow: InTransaction, order: Order, amount: int, key: str, charge_ref: str, reason: str,
               source: str = ledger.ESCROW, *, price_adjustment: bool = False) -> int:
    """Book money owed back to the buyer; the refund job pays it out. Once per key: a second call
    with the same key (a retry, a concurrent request) books nothing and returns 0. A `price_adjustment`
    (the sale ended up cheaper, e.g. a group-buy's tier) says so in its event: it is no refund in the KPIs."""
    if not insert_ignore(uow.session, Refund.__table__, {
            "key": key, "order_id": order.id, "buyer_id": order.buyer_id, "amount_cents": amount,
            "charge_ref": charge_ref, "reason": reason, "status": rules.RefundStatus.PENDING.value, "attempts": 0,
            "next_attempt_at": uow.now, "created_at": uow.now, "last_error": "", "gateway_ref": ""}, ["key"]):
        return 0
    ledger.post(uow.session, "refund_owed", [(source, -amount), (REFUNDS_PAYABLE, amount)], uow.now,
                ref=f"order:{order.id}")
    payload: dict[str, object] = {"order_id": order.id, "amount_cents": amount, "reason": reason}
    if price_adjustment:
        payload["price_adjustment"] = True
    record_event(uow.session, "RefundOwed", payload, uow.now, merchant_id=order.merchant_id)
    return amount


# ---- refunds ------------------------------------------------------------------------------------

@retry_on_deadlock
def refund_vouchers(uow: UnitOfWork, actor: Principal, order_id: int, codes: list[str] | None,
                    reason: str = "") -> views.OrderView:
    """A buyer (or ops, with a reason) refunds unredeemed vouchers; capacity returns, money is owed back at once."""
    if actor.role == Role.OPS:
        require_reason(reason)
    with uow:
        order = views.own_order(uow, actor, order_id, lock=True)
        if actor.role not in (Role.BUYER, Role.OPS):
            raise Forbidden("only the buyer or ops refund an order")
        amount = refund_in_uow(uow, order, codes, reason or "refund requested by buyer")
        if actor.role == Role.OPS:
            record_audit(uow.session, actor_id=actor.user_id, actor_role="ops", action="refund_order",
                         target=f"order:{order.id}", reason=reason, now=uow.now, details={"amount_cents": amount})
        uow.commit()
        return views.view(uow, order)


def refund_in_uow(uow: InTransaction, order: Order | int, codes: list[str] | None, reason: str,
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
    snap = views.snapshot_of(order)
    for p in registry.items:  # a coupon's part of these vouchers is not the buyer's cash
        if p.wants_refund(snap):
            amount -= p.on_refund(uow, snap, refunded_before, len(refunded))
    catalog.release_sold(uow, order.deal_id, order.buckets, len(refunded))
    views.uncount(uow, order, len(refunded))
    if source != ledger.ESCROW:
        # the platform pays first; escrow still holds the buyer's money and goes to the platform
        ledger.post(uow.session, "escrow_to_compensation", [(ledger.ESCROW, -amount),
                                                            (ledger.COMPENSATION, amount)], uow.now,
                    ref=f"order:{order.id}")
    if amount:
        owe_refund(uow, order, amount, f"vouchers:{order.id}:{refunded[0].id}:{len(refunded)}",
                    (order.extra or {}).get("charge_ref", ""), reason, source)
    views.settle(uow, order)
    uow.session.refresh(order)
    record_event(uow.session, "VouchersRefunded", {"order_id": order.id, "count": len(refunded),
                                                   "amount_cents": amount, "reason": reason}, uow.now,
                 merchant_id=order.merchant_id)
    notify.notify_user(uow, order.buyer_id, "refund_started", f"Refund of {yuan(amount)} on its way",
                       reason, {"order_id": order.id, "amount_cents": amount})
    return amount


def reprice_in_uow(uow: InTransaction, order_id: int, unit_price_cents: int, key: str, reason: str) -> int:
    """Inside an open unit of work: the order's final unit price fell to `unit_price_cents` (a group-buy's
    price tier). Its issued vouchers now cost that, and the difference is owed back to the buyer through the
    refund job, once per `key`: a second call (a rerun, a killed worker's retry) finds nothing cheaper to
    make and books nothing. Returns the cents owed back (0 when nothing was left to reprice)."""
    order = uow.session.scalar(select(Order).where(Order.id == order_id).with_for_update())
    if order is None:
        raise NotFound(f"order {order_id} not found")
    if order.status != rules.OrderStatus.PAID:
        return 0
    # locked: a voucher redeemed meanwhile would settle the old price to the merchant
    vouchers = list(uow.session.scalars(select(Voucher).where(
        Voucher.order_id == order.id, Voucher.status == rules.VoucherStatus.ISSUED,
        Voucher.price_cents > unit_price_cents).order_by(Voucher.id).with_for_update()))
    amount = rules.repricing([v.price_cents for v in vouchers], unit_price_cents)
    if not amount or not owe_refund(uow, order, amount, key, (order.extra or {}).get("charge_ref", ""), reason,
                                    price_adjustment=True):
        return 0
    uow.session.execute(update(Voucher).where(Voucher.id.in_([v.id for v in vouchers]),
                                              Voucher.status == rules.VoucherStatus.ISSUED)
                        .values(price_cents=unit_price_cents))
    notify.notify_user(uow, order.buyer_id, "refund_started", f"Refund of {yuan(amount)} on its way", reason,
                       {"order_id": order.id, "amount_cents": amount})
    return amount


def refuse_payment(uow: InTransaction, order_id: int, code: str, message: str, refunded_cents: int) -> None:
    """Inside the paying unit of work: a participant gave back the payment it was just handed (a group-buy
    whose entry had closed). The payer is answered with this refusal (409 `code`), now and on every retry."""
    order = uow.session.get(Order, order_id)
    assert order is not None
    refusal = {"code": code, "message": message, "refunded_cents": refunded_cents}
    uow.session.execute(update(Order).where(Order.id == order_id).values(extra={**(order.extra or {}),
                                                                              "refused": refusal}))


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
    advanced = max(0, sum(redeemed) - rules.coupon_share(discount, order.quantity, 0, len(redeemed)))
    if advanced:
        owe_refund(uow, order, advanced, f"{key}:redeemed", (order.extra or {}).get("charge_ref", ""), reason,
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
    owe_refund(uow, order, amount, key, (order.extra or {}).get("charge_ref", ""), reason, source)


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
