"""Inventory change approval (A10) and stock reconciliation (C5).

Raising a cap or stock takes a change request with a reason and evidence (kept
with its SHA-256); only an ops approval changes the cap. Decreases never wait.
"""

from __future__ import annotations

import hashlib
from datetime import date
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update

from tuangou.capacity import service as capacity
from tuangou.catalog import rules as catalog_rules
from tuangou.catalog import service as catalog
from tuangou.core.audit import record_audit
from tuangou.core.auth import Principal, Role
from tuangou.core.db import UnitOfWork, retry_on_deadlock
from tuangou.core.errors import Conflict, NotFound, ValidationFailed
from tuangou.core.outbox import record_event
from tuangou.governance import service as governance
from tuangou.governance.models import InventoryChangeRequest, StockCount
from tuangou.merchants import service as merchants
from tuangou.notify import service as notify

MAX_EVIDENCE_BYTES = 5 * 1024 * 1024


class ChangeStatus(StrEnum):
    PENDING = "pending"  # waiting for ops
    APPROVED = "approved"  # ops approved; the cap was raised
    REJECTED = "rejected"  # ops refused; nothing changed
    FALSE_CLAIM = "false_claim"  # ops found the evidence false; the merchant is penalised


DECISIONS = {"approve": ChangeStatus.APPROVED, "reject": ChangeStatus.REJECTED,
             "false_claim": ChangeStatus.FALSE_CLAIM}


def _view(r: InventoryChangeRequest) -> dict[str, Any]:
    return {"id": r.id, "deal_id": r.deal_id, "merchant_id": r.merchant_id, "bucket": r.bucket,
            "current_cap": r.current_cap, "requested_cap": r.requested_cap, "reason": r.reason,
            "evidence": {"name": r.evidence_name, "content_type": r.evidence_type, "sha256": r.evidence_sha256,
                         "size": len(r.evidence), "url": f"/api/v1/inventory-change-requests/{r.id}/evidence"},
            "status": r.status, "decided_by": r.decided_by,
            "decided_at": r.decided_at.isoformat() if r.decided_at else None, "decision_reason": r.decision_reason,
            "created_at": r.created_at.isoformat()}


def _check_key(key: str) -> None:
    if key in (catalog_rules.STOCK_BUCKET, catalog_rules.TOTAL_BUCKET):
        return
    try:
        date.fromisoformat(key.split("@", 1)[0])
    except ValueError as exc:
        raise ValidationFailed(f"bucket {key!r} is not a date, date@slot, 'total' or 'stock'") from exc


def file_change_request(uow: UnitOfWork, actor: Principal, deal_id: int, *, bucket: str, requested_cap: int,
                        reason: str, evidence_name: str, evidence_type: str, evidence: bytes) -> dict[str, Any]:
    """A merchant asks to raise a bucket's cap (or a goods deal's stock), with a reason and evidence."""
    actor.require(Role.MERCHANT)
    if not reason.strip():
        raise ValidationFailed("a reason is required")
    if not evidence:
        raise ValidationFailed("evidence (a purchase order photo or file) is required", code="evidence_required")
    if len(evidence) > MAX_EVIDENCE_BYTES:
        raise ValidationFailed(f"evidence is larger than {MAX_EVIDENCE_BYTES} bytes")
    _check_key(bucket)
    with uow:
        deal = catalog.own_deal(uow, actor, deal_id)
        current = capacity.current_offer(uow, deal_id, bucket)
        if requested_cap <= current:
            raise ValidationFailed(f"{requested_cap} is not above the current {current}; decreases apply at once "
                                   f"through PUT /api/v1/deals/{deal_id}/capacity", code="not_an_increase")
        req = InventoryChangeRequest(deal_id=deal_id, merchant_id=deal.merchant_id, category=deal.category,
                                     bucket=bucket, current_cap=current, requested_cap=requested_cap,
                                     reason=reason, evidence_name=evidence_name[:200] or "evidence",
                                     evidence_type=evidence_type[:100] or "application/octet-stream",
                                     evidence_sha256=hashlib.sha256(evidence).hexdigest(), evidence=evidence,
                                     status=ChangeStatus.PENDING, requested_by=actor.user_id, created_at=uow.now)
        uow.session.add(req)
        uow.session.flush()
        record_event(uow.session, "InventoryChangeRequested", {"request_id": req.id, "deal_id": deal_id,
                                                               "bucket": bucket, "requested_cap": requested_cap},
                     uow.now, merchant_id=deal.merchant_id)
        notify.notify_ops(uow, "inventory_change_requested", f"Change request #{req.id}: {bucket} "
                          f"{current} -> {requested_cap}", reason, {"request_id": req.id})
        uow.commit()
        return _view(req)


@retry_on_deadlock
def decide_change_request(uow: UnitOfWork, actor: Principal, request_id: int, decision: str, reason: str
                          ) -> dict[str, Any]:
    """Ops approve (the cap is raised), reject, or mark the request a false claim (a violation)."""
    actor.require(Role.OPS)
    if decision not in DECISIONS:
        raise ValidationFailed(f"decision must be one of {', '.join(DECISIONS)}")
    if not reason.strip():
        raise ValidationFailed("a reason is required")
    status = DECISIONS[decision]
    with uow:
        req = uow.session.get(InventoryChangeRequest, request_id)
        if req is None:
            raise NotFound(f"change request {request_id} not found")
        moved = uow.session.execute(update(InventoryChangeRequest).where(
            InventoryChangeRequest.id == request_id, InventoryChangeRequest.status == ChangeStatus.PENDING)
            .values(status=status, decided_by=actor.user_id, decided_at=uow.now, decision_reason=reason)).rowcount  # type: ignore[attr-defined]
        if not moved:
            raise Conflict("the request was already decided", code="request_decided")
        uow.session.refresh(req)
        result = None
        if status == ChangeStatus.APPROVED:
            result = governance.set_cap(uow, req.deal_id, req.bucket, req.requested_cap, may_raise=True,
                                        cause=f"change request {request_id} approved")
        elif status == ChangeStatus.FALSE_CLAIM:
            merchants.record_violation(uow, merchant_id=req.merchant_id, category=req.category, kind="false_claim",
                                       ref=f"change_request:{request_id}", reason=reason)
        record_audit(uow.session, actor_id=actor.user_id, actor_role="ops", action=f"{decision}_change_request",
                     target=f"change_request:{request_id}", reason=reason, now=uow.now,
                     details={"deal_id": req.deal_id, "bucket": req.bucket, "requested_cap": req.requested_cap})
        record_event(uow.session, f"InventoryChange{status.value.title().replace('_', '')}",
                     {"request_id": request_id, "deal_id": req.deal_id}, uow.now, merchant_id=req.merchant_id)
        notify.notify_merchant(uow, req.merchant_id, "inventory_change_decided",
                               f"Change request #{request_id} {status.value.replace('_', ' ')}", reason,
                               {"request_id": request_id}, "warning" if status == ChangeStatus.FALSE_CLAIM else "info")
        view = {**_view(req), "cap": result}
        uow.commit()
        return view


def list_change_requests(uow: UnitOfWork, actor: Principal, status: str | None, deal_id: int | None
                         ) -> list[dict[str, Any]]:
    with uow:
        q = select(InventoryChangeRequest).order_by(InventoryChangeRequest.id.desc()).limit(200)
        merchant_id = actor.merchant_scope()
        if merchant_id is not None:
            q = q.where(InventoryChangeRequest.merchant_id == merchant_id)
        if status:
            q = q.where(InventoryChangeRequest.status == status)
        if deal_id:
            q = q.where(InventoryChangeRequest.deal_id == deal_id)
        return [_view(r) for r in uow.session.scalars(q)]


def evidence_of(uow: UnitOfWork, actor: Principal, request_id: int) -> tuple[str, str, bytes]:
    with uow:
        req = uow.session.get(InventoryChangeRequest, request_id)
        if req is None or not (actor.role == Role.OPS or actor.merchant_id == req.merchant_id):
            raise NotFound(f"change request {request_id} not found")
        return req.evidence_name, req.evidence_type, req.evidence


# ---- stock counts (C5) ------------------------------------------------------------------------------

def _count_view(c: StockCount) -> dict[str, Any]:
    return {"id": c.id, "deal_id": c.deal_id, "counted": c.counted, "online": c.online,
            "difference": c.difference, "note": c.note, "counted_by": c.counted_by, "at": c.at.isoformat()}


@retry_on_deadlock
def record_stock_count(uow: UnitOfWork, actor: Principal, deal_id: int, counted: int, note: str) -> dict[str, Any]:
    """A physical count of a goods deal's stock: the difference to the online stock is kept; a count
    below the online stock lowers the online stock at once; a low count raises an alert."""
    if counted < 0:
        raise ValidationFailed("counted must be >= 0")
    with uow:
        deal = catalog.own_deal(uow, actor, deal_id)
        if deal.kind != catalog_rules.DealKind.GOODS:
            raise ValidationFailed("stock counts are for goods deals", code="not_goods")
        stock = next(b for b in catalog.buckets_of(uow, deal_id) if b.key == catalog_rules.STOCK_BUCKET)
        online = stock.remaining
        count = StockCount(deal_id=deal_id, merchant_id=deal.merchant_id, counted=counted, online=online,
                           difference=counted - online, note=note, counted_by=actor.user_id, at=uow.now)
        uow.session.add(count)
        uow.session.flush()
        if counted < online:
            governance.set_cap(uow, deal_id, catalog_rules.STOCK_BUCKET, stock.sold + stock.reserved + counted,
                               may_raise=False, cause=f"stock count {count.id}: {counted} on hand")
        low = capacity.policy(uow).low_stock_units
        if counted <= low:
            notify.notify_merchant(uow, deal.merchant_id, "low_stock", f"Low stock: {counted} left of {deal.title}",
                                   f"At or below the alert level of {low}.", {"deal_id": deal_id}, "warning")
        record_event(uow.session, "StockCounted", _count_view(count), uow.now, merchant_id=deal.merchant_id)
        view = _count_view(count)
        uow.commit()
        return view


def list_stock_counts(uow: UnitOfWork, actor: Principal, deal_id: int) -> dict[str, Any]:
    with uow:
        catalog.own_deal(uow, actor, deal_id)
        stock = next((b for b in catalog.buckets_of(uow, deal_id) if b.key == catalog_rules.STOCK_BUCKET), None)
        counts = uow.session.scalars(select(StockCount).where(StockCount.deal_id == deal_id)
                                     .order_by(StockCount.id.desc()).limit(200))
        return {"online": stock.remaining if stock else None, "items": [_count_view(c) for c in counts]}
