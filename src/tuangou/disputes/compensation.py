"""Compensation coupons and recovery claims: the interface other capabilities call.

Orders' checkout applies and restores coupons; logistics, governance and campaigns pay buyers first and
book the recovery against the merchant; risk pauses compensation for confirmed abuse. Each runs inside
the caller's unit of work; the coupon mechanics themselves are in `coupons.py`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tuangou.core.db import InTransaction, UnitOfWork, insert_ignore
from tuangou.core.outbox import record_event
from tuangou.disputes import coupons, rules
from tuangou.disputes.models import CompensationPause, Coupon


def issue_compensation_coupon(uow: InTransaction, *, buyer_id: int, amount_cents: int, reason: str, ref: str,
                              threshold_cents: int = 0, valid_days: int = 30,
                              liable_merchant_id: int | None = None) -> dict[str, Any]:
    """Inside an open unit of work: give a buyer a compensation coupon (no threshold by default).
    Idempotent per `ref` + buyer: a second call returns the first coupon. With `liable_merchant_id`,
    the platform books a recovery claim of the coupon's value against that merchant."""
    coupon = coupons.issue(uow, buyer_id=buyer_id, kind=rules.CouponKind.AMOUNT, value=amount_cents, reason=reason,
                           ref=ref, origin=rules.CouponOrigin.COMPENSATION, threshold_cents=threshold_cents,
                           valid_days=valid_days, liable_merchant_id=liable_merchant_id)
    if liable_merchant_id is not None:
        coupons.book_recovery(uow, merchant_id=liable_merchant_id, amount=amount_cents, ref=f"coupon:{coupon['id']}",
                              dispute_id=None)
    return coupon


def book_recovery(uow: InTransaction, *, merchant_id: int, amount_cents: int, ref: str) -> bool:
    """Inside an open unit of work: the platform paid a buyer first (e.g. late-shipment compensation);
    book a recovery claim of `amount_cents` against the merchant, once per `ref`."""
    return coupons.book_recovery(uow, merchant_id=merchant_id, amount=amount_cents, ref=ref, dispute_id=None)


def apply_coupon(uow: InTransaction, *, buyer_id: int, code: str, order_id: int, merchant_id: int,
                 order_cents: int) -> int:
    """Inside an open unit of work (orders' checkout): use a coupon once; returns the discount."""
    return coupons.apply(uow, buyer_id=buyer_id, code=code, order_id=order_id, merchant_id=merchant_id,
                         order_cents=order_cents)


def restore_coupon(uow: InTransaction, order_id: int) -> int:
    """Inside an open unit of work: an unpaid order ended; its coupon is usable again."""
    return coupons.restore(uow, order_id)


def coupon_refund_share(uow: InTransaction, order_id: int, quantity: int, refunded_before: int,
                        refunded_now: int) -> int:
    """Inside an open unit of work: the coupon part of vouchers being refunded (not paid in cash)."""
    return coupons.refund_share(uow, order_id, quantity, refunded_before, refunded_now)


def pause_compensation(uow: UnitOfWork, *, buyer_id: int, reason: str, ref: str) -> list[int]:
    """Inside an open unit of work: confirmed abuse. The buyer's future upheld disputes bring no coupons
    (refunds of what was paid still happen) and the unused compensation coupons are revoked through the
    ledger (their value goes back). Idempotent; returns the ids of the coupons revoked now."""
    insert_ignore(uow.session, CompensationPause.__table__, {
        "buyer_id": buyer_id, "reason": reason[:200], "ref": ref, "paused_at": uow.now}, ["buyer_id"])
    unused = list(uow.session.scalars(select(Coupon.id).where(
        Coupon.buyer_id == buyer_id, Coupon.origin == rules.CouponOrigin.COMPENSATION,
        Coupon.status == rules.CouponStatus.AVAILABLE).order_by(Coupon.id)))
    revoked = [c for c in unused if coupons.revoke_if_unused(uow, c)]
    record_event(uow.session, "CompensationPaused", {"buyer_id": buyer_id, "ref": ref, "coupons_revoked": revoked},
                 uow.now)
    return revoked


def compensation_paused(uow: InTransaction, buyer_id: int) -> bool:
    return uow.session.get(CompensationPause, buyer_id) is not None
