"""Disputes: tiered response, platform pays first, recovery claims, stacked packages.

A confirmed dispute is remedied in the confirming transaction: the refund is owed from
`platform:compensation`, the coupons are issued, and the recovery claim against the merchant is
booked, all at once; the gateway payout follows right after commit (and by the refund job).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from tuangou.capacity import service as capacity
from tuangou.catalog import service as catalog
from tuangou.core import ledger
from tuangou.core.audit import record_audit
from tuangou.core.auth import Principal, Role
from tuangou.core.db import InTransaction, UnitOfWork, insert_ignore
from tuangou.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from tuangou.core.outbox import record_event
from tuangou.disputes import coupons, inkind, rules
from tuangou.disputes.models import CompensationPause, Coupon, Dispute, DisputeEvent, StackRequest
from tuangou.disputes.policy import current_policy
from tuangou.governance import service as governance
from tuangou.merchants import service as merchants
from tuangou.notify import service as notify
from tuangou.orders import rules as order_rules
from tuangou.orders import service as orders

DISPUTABLE = ("paid", "completed")

log = logging.getLogger("tuangou.disputes")


# ---- coupons: the interface other capabilities call --------------------------------------------

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


# ---- views --------------------------------------------------------------------------------------

@dataclass
class DisputeView:
    id: int
    order_id: int
    buyer_id: int
    merchant_id: int
    kind: str
    tier: str
    status: str
    description: str
    oversale: bool
    opened_role: str
    opened_at: str
    respond_by: str
    decided_at: str | None
    remedy: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    coupons: list[dict[str, Any]] = field(default_factory=list)
    stack_request: dict[str, Any] | None = None


def _view(uow: UnitOfWork, d: Dispute, full: bool = True) -> DisputeView:
    view = DisputeView(d.id, d.order_id, d.buyer_id, d.merchant_id, d.kind, d.tier, d.status, d.description,
                       d.oversale, d.opened_role, d.opened_at.isoformat(), d.respond_by.isoformat(),
                       d.decided_at.isoformat() if d.decided_at else None, dict(d.remedy or {}))
    if full:
        view.history = [{"action": e.action, "actor_id": e.actor_id, "actor_role": e.actor_role, "note": e.note,
                         "evidence": e.evidence, "at": e.at.isoformat()}
                        for e in uow.session.scalars(select(DisputeEvent).where(DisputeEvent.dispute_id == d.id)
                                                     .order_by(DisputeEvent.id))]
        stack = uow.session.scalar(select(StackRequest).where(StackRequest.dispute_id == d.id))
        refs = [f"dispute:{d.id}", f"dispute:{d.id}:side"] + ([f"stack:{stack.id}"] if stack else [])
        view.coupons = coupons.coupons_for_refs(uow, refs)
        if stack is not None:
            view.stack_request = {"id": stack.id, "status": stack.status, "note": stack.note,
                                  "decision_reason": stack.decision_reason}
    return view


def _visible(actor: Principal, d: Dispute) -> bool:
    return (actor.role == Role.OPS or (actor.role == Role.BUYER and d.buyer_id == actor.user_id)
            or (actor.role == Role.MERCHANT and d.merchant_id == actor.merchant_id))


def _load(uow: UnitOfWork, actor: Principal, dispute_id: int) -> Dispute:
    d = uow.session.get(Dispute, dispute_id)
    if d is None or not _visible(actor, d):
        raise NotFound(f"dispute {dispute_id} not found")
    return d


def _log(uow: UnitOfWork, d: Dispute, action: str, actor_id: int | None, role: str, note: str = "",
         evidence: list[dict[str, Any]] | None = None) -> None:
    uow.session.add(DisputeEvent(dispute_id=d.id, action=action, actor_id=actor_id, actor_role=role, note=note,
                                 evidence=evidence or [], at=uow.now))


def _tell_both(uow: UnitOfWork, d: Dispute, kind: str, title: str, body: str = "") -> None:
    data = {"dispute_id": d.id, "order_id": d.order_id}
    notify.notify_user(uow, d.buyer_id, kind, title, body, data)
    notify.notify_merchant(uow, d.merchant_id, kind, title, body, data)


def get_dispute(uow: UnitOfWork, actor: Principal, dispute_id: int) -> DisputeView:
    with uow:
        return _view(uow, _load(uow, actor, dispute_id))


def list_disputes(uow: UnitOfWork, actor: Principal, *, status: str | None = None, cursor: int | None = None,
                  limit: int = 50) -> list[DisputeView]:
    with uow:
        q = select(Dispute).order_by(Dispute.id.desc()).limit(limit)
        if actor.role == Role.BUYER:
            q = q.where(Dispute.buyer_id == actor.user_id)
        elif actor.role == Role.MERCHANT:
            q = q.where(Dispute.merchant_id == actor.merchant_id)
        elif actor.role != Role.OPS:
            raise Forbidden("disputes are seen by their buyer, merchant and ops")
        if status:
            q = q.where(Dispute.status == status)
        if cursor:
            q = q.where(Dispute.id < cursor)
        return [_view(uow, d, full=False) for d in uow.session.scalars(q)]


# ---- commands -----------------------------------------------------------------------------------

def _clean_evidence(evidence: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [{k: str(v)[:500] for k, v in e.items()} for e in (evidence or [])][:20]


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
        _log(uow, d, "opened", actor.user_id, actor.role, description[:2000], _clean_evidence(evidence))
        record_event(uow.session, "DisputeOpened", {"dispute_id": d.id, "order_id": order_id, "kind": kind,
                                                    "tier": d.tier}, uow.now, merchant_id=d.merchant_id)
        incident = governance.oversale_incident_for_order(uow, order_id)
        if incident is not None:
            _confirm(uow, d, policy, actor_id=None, role="system", reason="over-sale incident recorded by governance",
                     tier=d.tier, oversale=True, incident=incident, gateway=gateway)
        elif actor.role == Role.MERCHANT:
            _confirm(uow, d, policy, actor_id=actor.user_id, role=actor.role, reason="the merchant cannot honour it",
                     tier=d.tier, oversale=False, incident=None, gateway=gateway)
        else:
            _tell_both(uow, d, "dispute_opened", f"Dispute #{d.id} opened on order #{order_id}",
                       f"{kind}; a response is due by {d.respond_by.isoformat()}")
            notify.notify_ops(uow, "dispute_opened", f"Dispute #{d.id} ({d.tier})", description[:200],
                              {"dispute_id": d.id})
        uow.commit()
        return _view(uow, d)


def _confirm(uow: UnitOfWork, d: Dispute, policy: rules.DisputePolicy, *, actor_id: int | None, role: str,
             reason: str, tier: str, oversale: bool, incident: dict[str, Any] | None, gateway: Any) -> None:
    """Inside an open unit of work: uphold a dispute and make the buyer whole from the platform."""
    moved = uow.session.execute(update(Dispute).where(
        Dispute.id == d.id, Dispute.status.in_(rules.sources_of(rules.DisputeAction.CONFIRM))).values(
        status=rules.DisputeStatus.CONFIRMED, open_order_id=None, decided_at=uow.now, tier=tier,
        oversale=oversale, incident_ref=(incident or {}).get("ref", ""))).rowcount  # type: ignore[attr-defined]
    if not moved:
        raise Conflict(f"dispute is {d.status}; it cannot be confirmed", code="not_confirmable")
    uow.session.refresh(d)
    remedy = rules.remedy_for(tier, policy)
    refund = {"escrow_cents": 0, "advanced_cents": 0}
    if remedy.refund:
        try:
            with uow.session.begin_nested():
                uow.session.execute(update(Dispute).where(Dispute.id == d.id).values(refunded_order_id=d.order_id))
        except IntegrityError as exc:
            raise Conflict("another dispute already refunded this order", code="already_refunded") from exc
        refund = orders.refund_for_dispute(uow, d.order_id, f"dispute #{d.id} ({tier}): the platform pays first",
                                           f"dispute:{d.id}", ledger.COMPENSATION)
    issued = []
    paused = compensation_paused(uow, d.buyer_id)
    if paused:  # confirmed abuse: what was paid comes back, nothing on top
        remedy = replace(remedy, coupon_cents=0, side_item_cents=0)
    if remedy.coupon_cents:
        issued.append(coupons.issue(uow, buyer_id=d.buyer_id, kind=rules.CouponKind.AMOUNT, value=remedy.coupon_cents,
                                    reason=f"compensation for dispute #{d.id}", ref=f"dispute:{d.id}",
                                    origin=rules.CouponOrigin.COMPENSATION, valid_days=policy.coupon_valid_days,
                                    liable_merchant_id=d.merchant_id))
    advanced = refund["advanced_cents"] + sum(c["value"] for c in issued)
    coupons.book_recovery(uow, merchant_id=d.merchant_id, amount=advanced, ref=f"dispute:{d.id}", dispute_id=d.id)
    in_kind = 0
    if rules.gives_item(remedy):  # in kind: the merchant serves it; its cost is a claim of its own (inkind.py)
        issued.append(inkind.issue_item_voucher(uow, buyer_id=d.buyer_id, merchant_id=d.merchant_id,
                                                item=remedy.side_item, cost_cents=remedy.side_item_cents,
                                                reason=f"{remedy.side_item} for dispute #{d.id}",
                                                ref=f"dispute:{d.id}:side", valid_days=policy.coupon_valid_days,
                                                dispute_id=d.id))
        in_kind = remedy.side_item_cents
    rebook_until = (uow.now + timedelta(days=remedy.rebook_days)).isoformat() if remedy.rebook_days else None
    rebook = _offer_rebooking(uow, d, remedy.rebook_days) if remedy.rebook_days and not remedy.refund else None
    d.remedy = {"tier": tier, "refund_cents": refund["escrow_cents"] + refund["advanced_cents"],
                "coupon_cents": remedy.coupon_cents, "side_item": remedy.side_item if in_kind else "",
                "side_item_cents": in_kind, "rebook_until": rebook_until, "rebook": rebook,
                "recovery_cents": advanced}
    if oversale and incident is None:  # no disruption explained it: the declared capacity was not real
        facts = orders.order_facts(uow, d.order_id)
        if facts["service_date"] is not None:
            capacity.record_shortfall(uow, facts["deal_id"], facts["service_date"], f"dispute:{d.id}", actor_id)
    if oversale:
        category = (incident or {}).get("category") or catalog.store_category(uow, d.store_id)
        ref = (incident or {}).get("ref") or f"dispute:{d.id}"
        paid = d.remedy["refund_cents"] + sum(c["value"] for c in issued)  # in kind included, at its cost
        order = orders.order_facts(uow, d.order_id)
        if merchants.record_violation(uow, merchant_id=d.merchant_id, category=category, kind="oversale", ref=ref,
                                      reason=f"dispute #{d.id} confirmed as over-selling", deal_id=order["deal_id"],
                                      details={"oversold_units": order["quantity"], "compensation_cents": paid,
                                               "compensated_by": [f"dispute:{d.id}"]}) is None:  # the breaker recorded the incident: add what this dispute paid
            merchants.add_violation_compensation(uow, merchant_id=d.merchant_id, kind="oversale", ref=ref,
                                                 source=f"dispute:{d.id}", cents=paid)
    _log(uow, d, "confirmed", actor_id, role, reason)
    record_event(uow.session, "DisputeConfirmed", {"dispute_id": d.id, "order_id": d.order_id, "tier": tier,
                                                   "oversale": oversale, **d.remedy}, uow.now,
                 merchant_id=d.merchant_id)
    body = (f"Tier {tier}: refund {d.remedy['refund_cents']} cents, coupons "
            f"{[c['value'] for c in issued if c['kind'] != rules.CouponKind.ITEM]}")
    if in_kind:
        body += f"; {remedy.side_item} served by the merchant (item voucher)"
    if rebook:
        body += (f"; pick a new date between {rebook['window_first']} and {rebook['window_last']} "
                 f"(POST /api/v1/orders/{d.order_id}/redate): it is booked at once")
    elif rebook_until:
        body += f"; the merchant serves you again by {rebook_until}"
    _tell_both(uow, d, "dispute_confirmed", f"Dispute #{d.id} upheld", body)
    if gateway is not None:
        uow.after_commit(_pay_out_now(uow, d.order_id, gateway))


def _offer_rebooking(uow: UnitOfWork, d: Dispute, days: int) -> dict[str, Any] | None:
    """Inside an open unit of work: the medium tier's rebooking, agreed in advance: the buyer picks any date
    with room from today to today + `days` (POST /orders/{id}/redate) and the order, its vouchers and
    their capacity units move there at once."""
    facts = orders.order_facts(uow, d.order_id)
    deal = catalog.deal_facts(uow, facts["deal_id"])
    zone = ZoneInfo(deal["timezone"])
    today = uow.now.astimezone(zone).date()
    last = min(today + timedelta(days=days), deal["valid_until"].astimezone(zone).date())
    offer = orders.offer_redating(uow, d.order_id, today, last, order_rules.RedateOrigin.DISPUTE,
                                  f"dispute:{d.id}", f"dispute #{d.id}: rebook within {days} days")
    return None if offer is None else {"redating_id": offer["id"], "window_first": offer["window_first"],
                                       "window_last": offer["window_last"]}


def _pay_out_now(uow: UnitOfWork, order_id: int, gateway: Any) -> Any:
    """After commit: try the refund through the gateway at once; the refund job retries if it fails."""
    db, clock = uow.db, uow.clock

    def run() -> None:
        try:
            orders.process_refunds(UnitOfWork(db, clock), gateway, order_id=order_id)
        except Exception:  # the refund stays owed; the worker's job will pay it
            log.exception("immediate refund attempt failed")
    return run


def confirm_dispute(uow: UnitOfWork, actor: Principal, dispute_id: int, reason: str, *, tier: str | None = None,
                    oversale: bool = False, gateway: Any = None) -> DisputeView:
    """Ops uphold a dispute (optionally as over-selling, optionally in another tier); the merchant may
    accept one against itself (never choosing the tier or the over-sale flag)."""
    actor.require(Role.OPS, Role.MERCHANT)
    if tier is not None and tier not in rules.Tier.__members__.values():
        raise ValidationFailed(f"tier must be one of {', '.join(t.value for t in rules.Tier)}")
    if actor.role == Role.OPS and not reason.strip():
        raise ValidationFailed("a reason is required", code="reason_required")
    if actor.role == Role.MERCHANT and (tier is not None or oversale):
        raise Forbidden("only ops set the tier or confirm over-selling")
    with uow:
        d = _load(uow, actor, dispute_id)
        policy = current_policy(uow)
        incident = governance.oversale_incident_for_order(uow, d.order_id) if oversale else None
        _confirm(uow, d, policy, actor_id=actor.user_id, role=actor.role, reason=reason or "accepted by the merchant",
                 tier=tier or d.tier, oversale=oversale, incident=incident, gateway=gateway)
        if actor.role == Role.OPS:
            record_audit(uow.session, actor_id=actor.user_id, actor_role=actor.role, action="confirm_dispute",
                         target=f"dispute:{d.id}", reason=reason, now=uow.now,
                         details={"tier": d.tier, "oversale": oversale})
        uow.commit()
        return _view(uow, d)


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
        d = _load(uow, actor, dispute_id)
        _move(uow, d, rules.DisputeAction.CONTEST, respond_by=rules.respond_by(uow.now, current_policy(uow)))
        _log(uow, d, "contested", actor.user_id, actor.role, note, _clean_evidence(evidence))
        _tell_both(uow, d, "dispute_contested", f"Dispute #{d.id} contested by the merchant", note[:200])
        notify.notify_ops(uow, "dispute_contested", f"Dispute #{d.id} needs a decision", note[:200],
                          {"dispute_id": d.id})
        uow.commit()
        return _view(uow, d)


def reject_dispute(uow: UnitOfWork, actor: Principal, dispute_id: int, reason: str) -> DisputeView:
    actor.require(Role.OPS)
    if not reason.strip():
        raise ValidationFailed("a reason is required", code="reason_required")
    with uow:
        d = _load(uow, actor, dispute_id)
        _move(uow, d, rules.DisputeAction.REJECT, open_order_id=None, decided_at=uow.now)
        _log(uow, d, "rejected", actor.user_id, actor.role, reason)
        record_audit(uow.session, actor_id=actor.user_id, actor_role=actor.role, action="reject_dispute",
                     target=f"dispute:{d.id}", reason=reason, now=uow.now)
        record_event(uow.session, "DisputeRejected", {"dispute_id": d.id}, uow.now, merchant_id=d.merchant_id)
        _tell_both(uow, d, "dispute_rejected", f"Dispute #{d.id} was not upheld", reason)
        uow.commit()
        return _view(uow, d)


def withdraw_dispute(uow: UnitOfWork, actor: Principal, dispute_id: int, note: str = "") -> DisputeView:
    actor.require(Role.BUYER)
    with uow:
        d = _load(uow, actor, dispute_id)
        _move(uow, d, rules.DisputeAction.WITHDRAW, open_order_id=None, decided_at=uow.now)
        _log(uow, d, "withdrawn", actor.user_id, actor.role, note)
        _tell_both(uow, d, "dispute_withdrawn", f"Dispute #{d.id} withdrawn by the buyer", note[:200])
        uow.commit()
        return _view(uow, d)


def add_evidence(uow: UnitOfWork, actor: Principal, dispute_id: int, note: str,
                 evidence: list[dict[str, Any]] | None) -> DisputeView:
    with uow:
        d = _load(uow, actor, dispute_id)
        _log(uow, d, "evidence_added", actor.user_id, actor.role, note, _clean_evidence(evidence))
        _tell_both(uow, d, "dispute_evidence", f"Dispute #{d.id}: new evidence from the {actor.role}", note[:200])
        uow.commit()
        return _view(uow, d)


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
                _log(uow, d, "escalated", None, "system", "no response within the agreed time")
                notify.notify_ops(uow, "dispute_escalated", f"Dispute #{d.id} is overdue", "",
                                  {"dispute_id": d.id}, severity="warning")
                _tell_both(uow, d, "dispute_escalated", f"Dispute #{d.id} escalated to the platform")
        uow.commit()
        return n
