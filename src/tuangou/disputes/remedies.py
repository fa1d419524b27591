"""Confirming a dispute and its remedies: the platform pays first, then recovers from the merchant.

A confirmed dispute is remedied in the confirming transaction: the refund is owed from
`platform:compensation`, the coupons (or an in-kind item) are issued, a rebooking is offered, the
recovery claim against the merchant is booked and an over-sale is recorded as a violation, all at once;
the gateway payout follows right after commit (and by the refund job).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from tuangou.capacity import service as capacity
from tuangou.catalog import service as catalog
from tuangou.core import ledger
from tuangou.core.audit import record_audit
from tuangou.core.auth import Principal, Role
from tuangou.core.db import UnitOfWork
from tuangou.core.errors import Conflict, Forbidden, ValidationFailed
from tuangou.core.outbox import record_event
from tuangou.disputes import coupons, inkind, rules
from tuangou.disputes.casefile import DisputeView, load_dispute, log_action, tell_both, view_of
from tuangou.disputes.compensation import compensation_paused
from tuangou.disputes.models import Dispute
from tuangou.disputes.policy import current_policy
from tuangou.governance import service as governance
from tuangou.merchants import service as merchants
from tuangou.orders import rules as order_rules
from tuangou.orders import service as orders

log = logging.getLogger("tuangou.disputes")


def confirm(uow: UnitOfWork, d: Dispute, policy: rules.DisputePolicy, *, actor_id: int | None, role: str,
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
    log_action(uow, d, "confirmed", actor_id, role, reason)
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
    tell_both(uow, d, "dispute_confirmed", f"Dispute #{d.id} upheld", body)
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
        d = load_dispute(uow, actor, dispute_id)
        policy = current_policy(uow)
        incident = governance.oversale_incident_for_order(uow, d.order_id) if oversale else None
        confirm(uow, d, policy, actor_id=actor.user_id, role=actor.role, reason=reason or "accepted by the merchant",
                 tier=tier or d.tier, oversale=oversale, incident=incident, gateway=gateway)
        if actor.role == Role.OPS:
            record_audit(uow.session, actor_id=actor.user_id, actor_role=actor.role, action="confirm_dispute",
                         target=f"dispute:{d.id}", reason=reason, now=uow.now,
                         details={"tier": d.tier, "oversale": oversale})
        uow.commit()
        return view_of(uow, d)
