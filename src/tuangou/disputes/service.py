"""Disputes: tiered response, platform pays first, recovery claims, stacked packages.

This module holds the dispute's life before and around the decision: opening one, the merchant contesting,
the buyer withdrawing, evidence, ops rejecting, and the SLA timer that escalates unanswered ones. The rest
lives in sub-modules and is re-exported here, so callers keep `from tuangou.disputes import service`:

- `remedies.py`: confirming a dispute and making the buyer whole (refund, coupons, rebooking, recovery);
- `casefile.py`: the dispute's view, visibility, log and notices, and the reads;
- `compensation.py`: compensation coupons and recovery claims other capabilities call.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from tuangou.core.audit import record_audit
from tuangou.core.auth import Principal, Role
from tuangou.core.db import UnitOfWork
from tuangou.core.errors import Conflict, NotFound, ValidationFailed
from tuangou.core.outbox import record_event
from tuangou.disputes import rules
from tuangou.disputes.casefile import (
    DisputeView,
    clean_evidence,
    get_dispute,
    list_disputes,
    load_dispute,
    log_action,
    tell_both,
    view_of,
)
from tuangou.disputes.compensation import (
    apply_coupon,
    book_recovery,
    compensation_paused,
    coupon_refund_share,
    issue_compensation_coupon,
    pause_compensation,
    restore_coupon,
)
from tuangou.disputes.models import Dispute
from tuangou.disputes.policy import current_policy
from tuangou.disputes.remedies import confirm, confirm_dispute
from tuangou.governance import service as governance
from tuangou.notify import service as notify
from tuangou.orders import service as orders

DISPUTABLE = ("paid", "completed")


def open_dispute(uow: UnitOfWork, actor: Principal, order_id: int, kind: str, description: str = "", *,
                 evidence: list[dict[str, Any]] | None = None, late_minutes: int | None = None,
                 gateway: Any = None, signals: dict[str, Any] | None = None) -> DisputeView:
    """A buyer, the merchant or ops open a dispute on a paid order.

    Where governance already recorded an over-sale incident for the order, the dispute is confirmed
    as over-selling at once; a merchant opening one admits it, so it is confirmed too.
    """
    if kind not in rules.DisputeKind.__members__.values():
        raise ValidationFailed(f"kind must be one of {', '.join(k.value for k in rules.DisputeKind)}")
    if late_minutes is not None and late_minutes < 0:
        raise ValidationFailed("late_minutes must not be negative")
    with uow:
        facts = orders.order_facts(uow, order_id)
        if not (actor.role == Role.OPS or (actor.role == Role.BUYER and facts["buyer_id"] == actor.user_id)
                or (actor.role == Role.MERCHANT and facts["merchant_id"] == actor.merchant_id)):
            raise NotFound(f"order {order_id} not found")
        if facts["status"] not in DISPUTABLE:
            raise Conflict(f"order is {facts['status']}; only paid or completed orders are disputed",
                           code="not_disputable")
        if uow.session.scalar(select(Dispute.id).where(Dispute.open_order_id == order_id)) is not None:
            raise Conflict("this order already has an open dispute", code="dispute_exists")
        policy = current_policy(uow)
        d = Dispute(order_id=order_id, open_order_id=order_id, buyer_id=facts["buyer_id"],
                    merchant_id=facts["merchant_id"], store_id=facts["store_id"], kind=kind,
                    tier=rules.classify(kind, late_minutes, policy), late_minutes=late_minutes,
                    status=rules.DisputeStatus.OPEN, opened_by=actor.user_id, opened_role=actor.role,
                    description=description[:2000], oversale=False, incident_ref="",
                    respond_by=rules.respond_by(uow.now, policy), opened_at=uow.now, remedy={},
                    signals=signals)
        uow.session.add(d)
        try:
            uow.session.flush()  # the unique open_order_id refuses a concurrent second dispute here
        except IntegrityError as exc:
            raise Conflict("this order already has an open dispute", code="dispute_exists") from exc
        log_action(uow, d, "opened", actor.user_id, actor.role, description[:2000], clean_evidence(evidence))
        record_event(uow.session, "DisputeOpened", {"dispute_id": d.id, "order_id": order_id, "kind": kind,
                                                    "tier": d.tier}, uow.now, merchant_id=d.merchant_id)
        incident = governance.oversale_incident_for_order(uow, order_id)
        if incident is not None:
            confirm(uow, d, policy, actor_id=None, role="system", reason="over-sale incident recorded by governance",
                     tier=d.tier, oversale=True, incident=incident, gateway=gateway)
        elif actor.role == Role.MERCHANT:
            confirm(uow, d, policy, actor_id=actor.user_id, role=actor.role, reason="the merchant cannot honour it",
                     tier=d.tier, oversale=False, incident=None, gateway=gateway)
        else:
            tell_both(uow, d, "dispute_opened", f"Dispute #{d.id} opened on order #{order_id}",
                       f"{kind}; a response is due by {d.respond_by.isoformat()}")
            notify.notify_ops(uow, "dispute_opened", f"Dispute #{d.id} ({d.tier})", description[:200],
                              {"dispute_id": d.id})
        uow.commit()
        return view_of(uow, d)


def _move(uow: UnitOfWork, d: Dispute, action: rules.DisputeAction, **values: Any) -> None:
    target = rules.next_status(d.status, action)
    moved = 0
    if target is not None:
        moved = uow.session.execute(update(Dispute).where(
            Dispute.id == d.id, Dispute.status.in_(rules.sources_of(action))).values(status=target, **values)
        ).rowcount  # type: ignore[attr-defined]
    if not moved:
        raise Conflict(f"dispute is {d.status}; cannot {action.value} it", code="invalid_transition")
    uow.session.refresh(d)


def contest_dispute(uow: UnitOfWork, actor: Principal, dispute_id: int, note: str,
                    evidence: list[dict[str, Any]] | None = None) -> DisputeView:
    """The merchant disagrees, with evidence; ops must decide within the response time."""
    actor.require(Role.MERCHANT)
    with uow:
        d = load_dispute(uow, actor, dispute_id)
        _move(uow, d, rules.DisputeAction.CONTEST, respond_by=rules.respond_by(uow.now, current_policy(uow)))
        log_action(uow, d, "contested", actor.user_id, actor.role, note, clean_evidence(evidence))
        tell_both(uow, d, "dispute_contested", f"Dispute #{d.id} contested by the merchant", note[:200])
        notify.notify_ops(uow, "dispute_contested", f"Dispute #{d.id} needs a decision", note[:200],
                          {"dispute_id": d.id})
        uow.commit()
        return view_of(uow, d)


def reject_dispute(uow: UnitOfWork, actor: Principal, dispute_id: int, reason: str) -> DisputeView:
    actor.require(Role.OPS)
    if not reason.strip():
        raise ValidationFailed("a reason is required", code="reason_required")
    with uow:
        d = load_dispute(uow, actor, dispute_id)
        _move(uow, d, rules.DisputeAction.REJECT, open_order_id=None, decided_at=uow.now)
        log_action(uow, d, "rejected", actor.user_id, actor.role, reason)
        record_audit(uow.session, actor_id=actor.user_id, actor_role=actor.role, action="reject_dispute",
                     target=f"dispute:{d.id}", reason=reason, now=uow.now)
        record_event(uow.session, "DisputeRejected", {"dispute_id": d.id}, uow.now, merchant_id=d.merchant_id)
        tell_both(uow, d, "dispute_rejected", f"Dispute #{d.id} was not upheld", reason)
        uow.commit()
        return view_of(uow, d)


def withdraw_dispute(uow: UnitOfWork, actor: Principal, dispute_id: int, note: str = "") -> DisputeView:
    actor.require(Role.BUYER)
    with uow:
        d = load_dispute(uow, actor, dispute_id)
        _move(uow, d, rules.DisputeAction.WITHDRAW, open_order_id=None, decided_at=uow.now)
        log_action(uow, d, "withdrawn", actor.user_id, actor.role, note)
        tell_both(uow, d, "dispute_withdrawn", f"Dispute #{d.id} withdrawn by the buyer", note[:200])
        uow.commit()
        return view_of(uow, d)


def add_evidence(uow: UnitOfWork, actor: Principal, dispute_id: int, note: str,
                 evidence: list[dict[str, Any]] | None) -> DisputeView:
    with uow:
        d = load_dispute(uow, actor, dispute_id)
        log_action(uow, d, "evidence_added", actor.user_id, actor.role, note, clean_evidence(evidence))
        tell_both(uow, d, "dispute_evidence", f"Dispute #{d.id}: new evidence from the {actor.role}", note[:200])
        uow.commit()
        return view_of(uow, d)


def escalate_overdue(uow: UnitOfWork, batch: int = 200) -> int:
    """SLA timer: disputes nobody answered in time go to ops; idempotent."""
    with uow:
        due = list(uow.session.scalars(select(Dispute).where(
            Dispute.status.in_(rules.sources_of(rules.DisputeAction.ESCALATE)), Dispute.respond_by <= uow.now)
            .order_by(Dispute.id).limit(batch)))
        n = 0
        for d in due:
            moved = uow.session.execute(update(Dispute).where(
                Dispute.id == d.id, Dispute.status.in_(rules.sources_of(rules.DisputeAction.ESCALATE)))
                .values(status=rules.DisputeStatus.ESCALATED)).rowcount  # type: ignore[attr-defined]
            if moved:
                n += 1
                log_action(uow, d, "escalated", None, "system", "no response within the agreed time")
                notify.notify_ops(uow, "dispute_escalated", f"Dispute #{d.id} is overdue", "",
                                  {"dispute_id": d.id}, severity="warning")
                tell_both(uow, d, "dispute_escalated", f"Dispute #{d.id} escalated to the platform")
        uow.commit()
        return n


__all__ = ["DISPUTABLE", "DisputeView", "add_evidence", "apply_coupon", "book_recovery", "compensation_paused",
           "confirm_dispute", "contest_dispute", "coupon_refund_share", "escalate_overdue", "get_dispute",
           "issue_compensation_coupon", "list_disputes", "open_dispute", "pause_compensation", "reject_dispute",
           "restore_coupon", "withdraw_dispute"]
