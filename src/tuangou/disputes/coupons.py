"""Coupons: issue (insert-if-absent per ref + buyer + kind), apply atomically, restore on refund.

Every coupon is a liability of the platform and goes through the ledger:
- issuing a fixed coupon moves its face value from the paying account (compensation or marketing)
  to `platform:coupons` (the liability);
- applying one moves the discount into escrow (so the merchant is settled the full price) and gives
  any unused face value back; a percentage coupon is paid from its account at use;
- a full refund reverses the use exactly, a partial refund returns the coupon's share to its account;
- an item voucher (compensation in kind, docs/adr/0006) moves its cost from `platform:compensation` to
  `platform:item_vouchers` and books the same cost as a recovery claim on the merchant that serves it;
  serving it (inkind.py) credits the merchant back, so the merchant pays in kind, never twice.
`issue`, `apply`, `restore`, `refund_share` run inside the caller's unit of work (through `service.py`);
`list_coupons` and `grant_coupon` are use cases of their own.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from tuangou.accounts import service as accounts
from tuangou.core import ledger
from tuangou.core.audit import record_audit
from tuangou.core.auth import Principal, Role
from tuangou.core.db import InTransaction, UnitOfWork, insert_ignore
from tuangou.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from tuangou.core.outbox import record_event
from tuangou.disputes import rules
from tuangou.disputes.models import Coupon, RecoveryClaim
from tuangou.notify import service as notify
from tuangou.orders import rules as order_rules

COUPONS = "platform:coupons"  # face value of fixed coupons issued and not yet used
MARKETING = "platform:marketing"  # pays for promotion coupons
ITEM_VOUCHERS = "platform:item_vouchers"  # cost of item vouchers issued and not yet served (in kind)
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def _account(origin: str) -> str:
    return ledger.COMPENSATION if origin == rules.CouponOrigin.COMPENSATION else MARKETING


def coupon_view(c: Coupon) -> dict[str, Any]:
    return {"id": c.id, "code": c.code, "buyer_id": c.buyer_id, "kind": c.kind, "value": c.value,
            "cap_cents": c.cap_cents, "threshold_cents": c.threshold_cents, "origin": c.origin,
            "merchant_id": c.merchant_id, "item": c.item, "reason": c.reason, "ref": c.ref, "status": c.status,
            "order_id": c.order_id, "discount_cents": c.discount_cents, "valid_until": c.valid_until.isoformat(),
            "issued_at": c.issued_at.isoformat()}


def issue(uow: InTransaction, *, buyer_id: int, kind: str, value: int, reason: str, ref: str, origin: str,
          threshold_cents: int = 0, valid_days: int = 30, cap_cents: int | None = None,
          merchant_id: int | None = None, liable_merchant_id: int | None = None, item: str | None = None
          ) -> dict[str, Any]:
    """Inside an open unit of work: give a buyer a coupon, once per (ref, buyer, kind). An item voucher
    (kind `item`) names the `item` and is served at `merchant_id`; its `value` is the item's cost."""
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(12))
    inserted = insert_ignore(uow.session, Coupon.__table__, {
        "code": code, "buyer_id": buyer_id, "kind": kind, "value": value, "cap_cents": cap_cents,
        "threshold_cents": threshold_cents, "origin": origin, "merchant_id": merchant_id,
        "liable_merchant_id": liable_merchant_id, "reason": reason[:200], "item": item, "ref": ref,
        "status": rules.CouponStatus.AVAILABLE, "order_id": None, "discount_cents": 0,
        "valid_until": uow.now + timedelta(days=valid_days), "issued_at": uow.now, "used_at": None},
        ["ref", "buyer_id", "kind"])
    coupon = uow.session.scalar(select(Coupon).where(Coupon.ref == ref, Coupon.buyer_id == buyer_id,
                                                     Coupon.kind == kind))
    assert coupon is not None
    if inserted:
        if kind == rules.CouponKind.AMOUNT:
            ledger.post(uow.session, "coupon_issued", [(_account(origin), -value), (COUPONS, value)], uow.now,
                        ref=f"coupon:{coupon.id}")
        elif kind == rules.CouponKind.ITEM:
            ledger.post(uow.session, "item_voucher_issued", [(_account(origin), -value), (ITEM_VOUCHERS, value)],
                        uow.now, ref=f"coupon:{coupon.id}")
        record_event(uow.session, "CouponIssued", {"coupon_id": coupon.id, "buyer_id": buyer_id, "kind": kind,
                                                   "value": value, "origin": origin, "ref": ref, "item": item},
                     uow.now)
        if kind == rules.CouponKind.ITEM:
            notify.notify_user(uow, buyer_id, "item_voucher_issued", f"{item or 'A free item'} for you",
                               f"{reason}. Show code {coupon.code} at the merchant; it serves it once, "
                               f"until {coupon.valid_until.date().isoformat()}.",
                               {"coupon_id": coupon.id, "code": coupon.code, "item": item,
                                "merchant_id": merchant_id})
        else:
            what = f"¥{value // 100} off" if kind == rules.CouponKind.AMOUNT else f"{value // 100}% off"
            notify.notify_user(uow, buyer_id, "coupon_issued", f"A {what} coupon for you", reason,
                               {"coupon_id": coupon.id, "code": coupon.code})
    return {**coupon_view(coupon), "created": bool(inserted)}


def _terms(c: Coupon) -> rules.CouponTerms:
    return rules.CouponTerms(c.kind, c.value, c.threshold_cents, c.cap_cents, c.valid_until, c.merchant_id)


def _use_lines(c: Coupon, discount: int) -> list[tuple[str, int]]:
    if c.kind == rules.CouponKind.AMOUNT:
        return [(COUPONS, -c.value), (ledger.ESCROW, discount), (_account(c.origin), c.value - discount)]
    return [(_account(c.origin), -discount), (ledger.ESCROW, discount)]


def apply(uow: InTransaction, *, buyer_id: int, code: str, order_id: int, merchant_id: int, order_cents: int) -> int:
    """Inside an open unit of work: use a coupon on an order; returns the discount in cents.

    The coupon moves with one conditional UPDATE (status = 'available'), so two orders racing
    for one coupon cannot both get it.
    """
    c = uow.session.scalar(select(Coupon).where(Coupon.code == code.strip().upper(), Coupon.buyer_id == buyer_id))
    if c is None:
        raise NotFound("no such coupon")
    problem = rules.coupon_problem(_terms(c), order_cents=order_cents, merchant_id=merchant_id, now=uow.now)
    if problem:
        raise Conflict(problem, code="coupon_not_applicable")
    discount = rules.coupon_discount(_terms(c), order_cents)
    moved = uow.session.execute(update(Coupon).where(Coupon.id == c.id, Coupon.status == rules.CouponStatus.AVAILABLE)
                                .values(status=rules.CouponStatus.USED, order_id=order_id, discount_cents=discount,
                                        used_at=uow.now)).rowcount  # type: ignore[attr-defined]
    if not moved:
        raise Conflict("this coupon was already used", code="coupon_unavailable")
    ledger.post(uow.session, "coupon_used", _use_lines(c, discount), uow.now, ref=f"order:{order_id}")
    if c.kind == rules.CouponKind.PERCENT and c.liable_merchant_id is not None and discount:
        book_recovery(uow, merchant_id=c.liable_merchant_id, amount=discount, ref=f"coupon:{c.id}:order:{order_id}",
                      dispute_id=None)
    record_event(uow.session, "CouponUsed", {"coupon_id": c.id, "order_id": order_id, "discount_cents": discount},
                 uow.now)
    return discount


def restore(uow: InTransaction, order_id: int) -> int:
    """Inside an open unit of work: the coupon used on an order becomes available again (the order
    ended unpaid or was refunded whole); the use posting is reversed. Returns the discount restored."""
    c = uow.session.scalar(select(Coupon).where(Coupon.order_id == order_id, Coupon.status == rules.CouponStatus.USED))
    if c is None:
        return 0
    discount = c.discount_cents
    moved = uow.session.execute(update(Coupon).where(Coupon.id == c.id, Coupon.status == rules.CouponStatus.USED)
                                .values(status=rules.CouponStatus.AVAILABLE, order_id=None, discount_cents=0,
                                        used_at=None)).rowcount  # type: ignore[attr-defined]
    if not moved:
        return 0
    ledger.post(uow.session, "coupon_restored", [(a, -x) for a, x in _use_lines(c, discount)], uow.now,
                ref=f"order:{order_id}")
    cancel_recovery(uow, f"coupon:{c.id}:order:{order_id}")
    notify.notify_user(uow, c.buyer_id, "coupon_restored", "Your coupon is back", "",
                       {"coupon_id": c.id, "code": c.code})
    return discount


def refund_share(uow: InTransaction, order_id: int, quantity: int, refunded_before: int, refunded_now: int) -> int:
    """Inside an open unit of work: the coupon part of refunded vouchers (not paid back in cash).

    A whole order refunded at once gets its coupon back; a partial refund returns the coupon's
    share of those vouchers from escrow to the account that paid for it.
    """
    c = uow.session.scalar(select(Coupon).where(Coupon.order_id == order_id, Coupon.status == rules.CouponStatus.USED))
    if c is None or not c.discount_cents:
        return 0
    if refunded_before == 0 and refunded_now == quantity:
        return restore(uow, order_id)
    share = order_rules.coupon_share(c.discount_cents, quantity, refunded_before, refunded_now)
    if share:
        ledger.post(uow.session, "coupon_share_returned", [(ledger.ESCROW, -share), (_account(c.origin), share)],
                    uow.now, ref=f"order:{order_id}")
    return share


def revoke_if_unused(uow: UnitOfWork, coupon_id: int) -> bool:
    """Inside an open unit of work: withdraw an unused coupon (replaced by a package); value goes back."""
    c = uow.session.get(Coupon, coupon_id)
    if c is None:
        return False
    moved = uow.session.execute(update(Coupon).where(Coupon.id == coupon_id,
                                                     Coupon.status == rules.CouponStatus.AVAILABLE)
                                .values(status=rules.CouponStatus.REVOKED)).rowcount  # type: ignore[attr-defined]
    if moved and c.kind == rules.CouponKind.AMOUNT:
        ledger.post(uow.session, "coupon_revoked", [(COUPONS, -c.value), (_account(c.origin), c.value)], uow.now,
                    ref=f"coupon:{c.id}")
    if moved and c.kind == rules.CouponKind.ITEM:
        release_item(uow, c, "item_voucher_revoked")
    return bool(moved)


def release_item(uow: InTransaction, c: Coupon, kind: str) -> None:
    """Inside an open unit of work, after the item voucher left `available` without being served
    (revoked, expired): its cost goes back to the platform and the merchant owes nothing for it."""
    ledger.post(uow.session, kind, [(ITEM_VOUCHERS, -c.value), (_account(c.origin), c.value)], uow.now,
                ref=f"coupon:{c.id}")
    # settlements may have marked the claim recovered meanwhile; the item was still never served
    cancel_recovery(uow, f"coupon:{c.id}", (rules.RecoveryStatus.OPEN, rules.RecoveryStatus.RECOVERED))


def cancel_recovery(uow: InTransaction, ref: str, statuses: tuple[str, ...] = (rules.RecoveryStatus.OPEN,)) -> bool:
    """Inside an open unit of work: reverse the claim booked under `ref` while it is in `statuses` (once)."""
    claim = uow.session.scalar(select(RecoveryClaim).where(RecoveryClaim.ref == ref))
    if claim is None:
        return False
    moved = uow.session.execute(update(RecoveryClaim).where(
        RecoveryClaim.id == claim.id, RecoveryClaim.status.in_(statuses)).values(
        status=rules.RecoveryStatus.CANCELLED)).rowcount  # type: ignore[attr-defined]
    if moved:
        ledger.post(uow.session, "recovery_cancelled", [(ledger.merchant_account(claim.merchant_id), claim.amount_cents),
                                                        (ledger.COMPENSATION, -claim.amount_cents)], uow.now,
                    ref=claim.ref)
    return bool(moved)


def book_recovery(uow: InTransaction, *, merchant_id: int, amount: int, ref: str, dispute_id: int | None) -> bool:
    """Inside an open unit of work: the merchant owes the platform `amount` (once per ref)."""
    if amount <= 0:
        return False
    inserted = insert_ignore(uow.session, RecoveryClaim.__table__, {
        "ref": ref, "merchant_id": merchant_id, "dispute_id": dispute_id, "amount_cents": amount, "status": rules.RecoveryStatus.OPEN,
        "booked_at": uow.now, "recovered_at": None}, ["ref"])
    if inserted:
        ledger.post(uow.session, "recovery_booked", [(ledger.merchant_account(merchant_id), -amount),
                                                     (ledger.COMPENSATION, amount)], uow.now, ref=ref)
        record_event(uow.session, "RecoveryBooked", {"merchant_id": merchant_id, "amount_cents": amount, "ref": ref},
                     uow.now, merchant_id=merchant_id)
    return bool(inserted)


def buyer_coupons(uow: UnitOfWork, buyer_id: int | None, status: str | None, limit: int = 100
                  ) -> list[dict[str, Any]]:
    q = select(Coupon).order_by(Coupon.id.desc()).limit(limit)
    if buyer_id is not None:
        q = q.where(Coupon.buyer_id == buyer_id)
    if status:
        q = q.where(Coupon.status == status)
    return [coupon_view(c) for c in uow.session.scalars(q)]


def coupons_for_refs(uow: UnitOfWork, refs: list[str]) -> list[dict[str, Any]]:
    return [coupon_view(c) for c in uow.session.scalars(select(Coupon).where(Coupon.ref.in_(refs))
                                                         .order_by(Coupon.id))]


def list_coupons(uow: UnitOfWork, actor: Principal, *, buyer_id: int | None = None, status: str | None = None
                 ) -> list[dict[str, Any]]:
    with uow:
        if actor.role == Role.BUYER:
            buyer_id = actor.user_id
        elif actor.role != Role.OPS:
            raise Forbidden("coupons are seen by their buyer and by ops")
        return buyer_coupons(uow, buyer_id, status)


def grant_coupon(uow: UnitOfWork, actor: Principal, *, buyer_id: int, kind: str, value: int, origin: str,
                 reason: str, idempotency_key: str, threshold_cents: int = 0, valid_days: int = 30,
                 cap_cents: int | None = None) -> dict[str, Any]:
    """Ops give a coupon (promotion or goodwill); the Idempotency-Key makes a retry return the same one."""
    actor.require(Role.OPS)
    if not reason.strip():
        raise ValidationFailed("a reason is required", code="reason_required")
    if not idempotency_key:
        raise ValidationFailed("an Idempotency-Key header is required", code="idempotency_key_required")
    if kind == rules.CouponKind.PERCENT and not 0 < value <= 10000:
        raise ValidationFailed("a percent coupon's value is basis points (1-10000)")
    with uow:
        if accounts.role_of(uow, buyer_id) != Role.BUYER:
            raise NotFound(f"no buyer {buyer_id}")
        coupon = issue(uow, buyer_id=buyer_id, kind=kind, value=value, reason=reason,
                               ref=f"grant:{idempotency_key}", origin=origin, threshold_cents=threshold_cents,
                               valid_days=valid_days, cap_cents=cap_cents)
        if coupon["created"]:
            record_audit(uow.session, actor_id=actor.user_id, actor_role=actor.role, action="grant_coupon",
                         target=f"coupon:{coupon['id']}", reason=reason, now=uow.now,
                         details={"buyer_id": buyer_id, "kind": kind, "value": value})
        uow.commit()
        return coupon
