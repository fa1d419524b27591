"""Dispute and coupon facts for risk's after-the-fact rules and store reputation (read-only)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from tuangou.core.db import InTransaction
from tuangou.disputes import rules
from tuangou.disputes.models import Coupon, Dispute


def disputes_by_buyer(uow: InTransaction, since: datetime) -> dict[int, int]:
    return {int(b): int(n) for b, n in uow.session.execute(select(Dispute.buyer_id, func.count()).where(
        Dispute.opened_at >= since).group_by(Dispute.buyer_id))}


def compensation_coupons(uow: InTransaction, since: datetime) -> list[tuple[int, int, int]]:
    """(coupon id, buyer, cents) of amount coupons issued as compensation since then."""
    return [(int(i), int(b), int(v)) for i, b, v in uow.session.execute(
        select(Coupon.id, Coupon.buyer_id, Coupon.value).where(
            Coupon.issued_at >= since, Coupon.origin == rules.CouponOrigin.COMPENSATION,
            Coupon.kind == rules.CouponKind.AMOUNT))]


def merchant_disputes(uow: InTransaction, merchant_id: int, since: datetime) -> list[tuple[str, str]]:
    """(kind, status) of the merchant's disputes opened since then."""
    return [(str(k), str(s)) for k, s in uow.session.execute(select(Dispute.kind, Dispute.status).where(
        Dispute.merchant_id == merchant_id, Dispute.opened_at >= since))]


def disputes_of_buyers(uow: InTransaction, buyer_ids: set[int], limit: int = 200) -> list[dict[str, object]]:
    """The buyers' disputes with where each was opened from (keyed hashes), newest first."""
    rows = uow.session.execute(select(Dispute.id, Dispute.buyer_id, Dispute.kind, Dispute.status, Dispute.signals)
                               .where(Dispute.buyer_id.in_(sorted(buyer_ids))).order_by(Dispute.id.desc())
                               .limit(limit))
    return [{"id": i, "buyer_id": b, "kind": k, "status": s, "device": (sig or {}).get("device"),
             "ip": (sig or {}).get("ip")} for i, b, k, s, sig in rows]
