"""Merchant accountability. STUB interface until the accountability work lands: other
capabilities call `record_violation` inside their own unit of work."""

from __future__ import annotations

from tuangou.core.db import UnitOfWork
from tuangou.core.outbox import record_event


def record_violation(uow: UnitOfWork, *, merchant_id: int, category: str, kind: str, ref: str, reason: str) -> None:
    """Inside an open unit of work: a confirmed violation (`oversale`, `false_claim`,
    `non_shipment`, `fake_shipment`) of a merchant in a category; `ref` names the incident."""
    record_event(uow.session, "ViolationRecorded", {"merchant_id": merchant_id, "category": category, "kind": kind,
                                                    "ref": ref, "reason": reason}, uow.now, merchant_id=merchant_id)
