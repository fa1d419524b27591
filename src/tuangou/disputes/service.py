"""Disputes and compensation. STUB interface until that work lands."""

from __future__ import annotations

from typing import Any

from tuangou.core.db import UnitOfWork
from tuangou.core.outbox import record_event


def issue_compensation_coupon(uow: UnitOfWork, *, buyer_id: int, amount_cents: int, reason: str, ref: str,
                              threshold_cents: int = 0, valid_days: int = 30) -> dict[str, Any]:
    """Inside an open unit of work: give a buyer a compensation coupon (no threshold by default)."""
    record_event(uow.session, "CouponIssued", {"buyer_id": buyer_id, "amount_cents": amount_cents, "reason": reason,
                                               "ref": ref}, uow.now)
    return {"buyer_id": buyer_id, "amount_cents": amount_cents}
