"""Stacked compensation packages (A11) and recovery claims against merchants (A7).

Compensation does not stack by default; in a tier the policy allows (severe), the buyer may apply
for a package (refund + ¥50 coupon + 20% off the next order) that ops approve or reject.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from tuangou.core import ledger
from tuangou.core.audit import record_audit
from tuangou.core.auth import Principal, Role
from tuangou.core.db import UnitOfWork
from tuangou.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from tuangou.core.outbox import record_event
from tuangou.disputes import coupons, rules
from tuangou.disputes.casefile import get_dispute
from tuangou.disputes.models import Coupon, Dispute, DisputeEvent, RecoveryClaim, StackRequest
from tuangou.disputes.policy import current_policy
from tuangou.notify import service as notify


def _view(s: StackRequest) -> dict[str, Any]:
    return {"id": s.id, "dispute_id": s.dispute_id, "buyer_id": s.buyer_id, "note": s.note, "status": s.status,
            "decision_reason": s.decision_reason, "created_at": s.created_at.isoformat(),
            "decided_at": s.decided_at.isoformat() if s.decided_at else None}


def request_stack(uow: UnitOfWork, actor: Principal, dispute_id: int, note: str = "") -> dict[str, Any]:
    """The buyer of a confirmed severe dispute applies for a stacked package; once per dispute."""
    actor.require(Role.BUYER)
    with uow:
        d = uow.session.get(Dispute, dispute_id)
        if d is None or d.buyer_id != actor.user_id:
            raise NotFound(f"dispute {dispute_id} not found")
        problem = rules.stacking_problem(d.tier, d.status, current_policy(uow))
        if problem:
            raise Conflict(problem, code="stacking_not_allowed")
        req = StackRequest(dispute_id=d.id, buyer_id=d.buyer_id, note=note[:1000],
                           status=rules.StackStatus.PENDING, created_at=uow.now)
        uow.session.add(req)
        try:
            uow.session.flush()
        except IntegrityError as exc:
            raise Conflict("a package was already requested for this dispute", code="stack_already_requested") from exc
        uow.session.add(DisputeEvent(dispute_id=d.id, action="stack_requested", actor_id=actor.user_id,
                                     actor_role=actor.role, note=note[:1000], evidence=[], at=uow.now))
        notify.notify_ops(uow, "stack_requested", f"Dispute #{d.id}: stacked package requested", note[:200],
                          {"dispute_id": d.id, "stack_request_id": req.id})
        uow.commit()
        return _view(req)


def decide_stack(uow: UnitOfWork, actor: Principal, dispute_id: int, approve: bool, reason: str) -> dict[str, Any]:
    """Ops approve (the package is issued at once, the merchant's recovery grows) or reject it."""
    actor.require(Role.OPS)
    if not reason.strip():
        raise ValidationFailed("a reason is required", code="reason_required")
    with uow:
        req = uow.session.scalar(select(StackRequest).where(StackRequest.dispute_id == dispute_id))
        d = uow.session.get(Dispute, dispute_id)
        if req is None or d is None:
            raise NotFound(f"no stacked package request for dispute {dispute_id}")
        status = rules.StackStatus.APPROVED if approve else rules.StackStatus.REJECTED
        moved = uow.session.execute(update(StackRequest).where(
            StackRequest.id == req.id, StackRequest.status == rules.StackStatus.PENDING).values(
            status=status, decided_by=actor.user_id, decision_reason=reason, decided_at=uow.now)
        ).rowcount  # type: ignore[attr-defined]
        if not moved:
            raise Conflict(f"the request is already {req.status}", code="already_decided")
        uow.session.refresh(req)
        if approve:
            _issue_package(uow, d, req)
        uow.session.add(DisputeEvent(dispute_id=d.id, action=f"stack_{status}", actor_id=actor.user_id,
                                     actor_role=actor.role, note=reason, evidence=[], at=uow.now))
        record_audit(uow.session, actor_id=actor.user_id, actor_role=actor.role, action=f"stack_{status}",
                     target=f"dispute:{d.id}", reason=reason, now=uow.now)
        notify.notify_user(uow, d.buyer_id, f"stack_{status}", f"Your compensation package was {status}", reason,
                           {"dispute_id": d.id})
        if approve:
            notify.notify_merchant(uow, d.merchant_id, "stack_approved", f"Dispute #{d.id}: stacked package approved",
                                   "the package is added to what the platform recovers from you",
                                   {"dispute_id": d.id})
        uow.commit()
        return _view(req)


def _issue_package(uow: UnitOfWork, d: Dispute, req: StackRequest) -> None:
    policy = current_policy(uow)
    default = uow.session.scalar(select(Coupon).where(Coupon.ref == f"dispute:{d.id}", Coupon.buyer_id == d.buyer_id))
    default_value = default.value if default is not None else 0
    revoked = default is not None and coupons.revoke_if_unused(uow, default.id)
    used = default is not None and not revoked
    fixed = 0
    for item in rules.stacked_package(policy, default_value, used):
        coupons.issue(uow, buyer_id=d.buyer_id, kind=item.kind, value=item.value, cap_cents=item.cap_cents,
                      reason=f"stacked package for dispute #{d.id}", ref=f"stack:{req.id}",
                      origin=rules.CouponOrigin.COMPENSATION, valid_days=policy.coupon_valid_days,
                      liable_merchant_id=d.merchant_id)
        if item.kind == rules.CouponKind.AMOUNT:
            fixed += item.value
    coupons.book_recovery(uow, merchant_id=d.merchant_id, amount=fixed - (default_value if revoked else 0),
                          ref=f"stack:{req.id}", dispute_id=d.id)
    record_event(uow.session, "StackedPackageIssued", {"dispute_id": d.id, "stack_request_id": req.id}, uow.now,
                 merchant_id=d.merchant_id)


def stack_request_of(uow: UnitOfWork, actor: Principal, dispute_id: int) -> dict[str, Any]:
    get_dispute(uow, actor, dispute_id)  # visibility
    with uow:
        req = uow.session.scalar(select(StackRequest).where(StackRequest.dispute_id == dispute_id))
        if req is None:
            raise NotFound("no stacked package request")
        return _view(req)


# ---- recovery claims ----------------------------------------------------------------------------

def _claim_view(c: RecoveryClaim) -> dict[str, Any]:
    return {"id": c.id, "ref": c.ref, "merchant_id": c.merchant_id, "dispute_id": c.dispute_id,
            "amount_cents": c.amount_cents, "status": c.status, "booked_at": c.booked_at.isoformat(),
            "recovered_at": c.recovered_at.isoformat() if c.recovered_at else None}


def list_recoveries(uow: UnitOfWork, actor: Principal, *, merchant_id: int | None = None,
                    status: str | None = None) -> dict[str, Any]:
    """Claims against a merchant and its ledger balance (negative: it owes the platform)."""
    if actor.role == Role.MERCHANT:
        merchant_id = actor.merchant_id
    elif actor.role != Role.OPS:
        raise Forbidden("recovery claims are seen by the merchant and ops")
    with uow:
        q = select(RecoveryClaim).order_by(RecoveryClaim.id.desc()).limit(200)
        if merchant_id is not None:
            q = q.where(RecoveryClaim.merchant_id == merchant_id)
        if status:
            q = q.where(RecoveryClaim.status == status)
        items = [_claim_view(c) for c in uow.session.scalars(q)]
        balance = ledger.balance(uow.session, ledger.merchant_account(merchant_id)) if merchant_id else None
        return {"items": items, "merchant_balance_cents": balance,
                "compensation_balance_cents": ledger.balance(uow.session, ledger.COMPENSATION)
                if actor.role == Role.OPS else None}


def settle_recoveries(uow: UnitOfWork, batch: int = 500) -> int:
    """A claim is recovered once the merchant's settlements (or deposit top-ups) brought its ledger
    account back to zero or above; idempotent."""
    with uow:
        merchants = list(uow.session.scalars(select(RecoveryClaim.merchant_id).where(
            RecoveryClaim.status == rules.RecoveryStatus.OPEN).distinct().limit(batch)))
        n = 0
        owed = ledger.balances_of(uow.session, [ledger.merchant_account(m) for m in merchants])
        for merchant_id in merchants:
            if owed[ledger.merchant_account(merchant_id)] >= 0:
                n += int(uow.session.execute(update(RecoveryClaim).where(
                    RecoveryClaim.merchant_id == merchant_id, RecoveryClaim.status == rules.RecoveryStatus.OPEN).values(
                    status=rules.RecoveryStatus.RECOVERED, recovered_at=uow.now)).rowcount)  # type: ignore[attr-defined]
        uow.commit()
        return n
