"""Merchant accountability: violation points, traffic limits, penalties and the policy behind them.

Other capabilities call `record_violation` inside their own unit of work. The standing (scores,
limits) is replayed from the violations that stand every time one changes, and kept in one row per
merchant so the order path and the listings read it with a single lookup. This module holds the
violations and the standing; the policy and the standing lock are in `accountability.py`, penalties in
`penalties.py` (both re-exported here); appeals, exams and the monthly case report live in `casework.py`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from tuangou.accounts import service as accounts
from tuangou.catalog import rules as catalog_rules
from tuangou.core.audit import record_audit
from tuangou.core.auth import Principal, Role
from tuangou.core.db import InTransaction, UnitOfWork, insert_ignore
from tuangou.core.errors import ValidationFailed
from tuangou.core.outbox import record_event
from tuangou.merchants import rules
from tuangou.merchants.accountability import POLICY, get_policy, load_policy, lock_standing, set_policy
from tuangou.merchants.models import ExamAttempt, MerchantStanding, Violation
from tuangou.merchants.penalties import (
    PENALTY_INCOME,
    add_penalty,
    check_may_publish,
    deposit_account,
    impose_penalty,
    lift_penalty,
    list_penalties,
    penalties_in_force,
    penalty_view,
    punish_false_claim,
    standing_false_claims,
)
from tuangou.notify import service as notify


def record_violation(uow: InTransaction, *, merchant_id: int, category: str, kind: str, ref: str, reason: str,
                     deal_id: int | None = None, details: dict[str, Any] | None = None) -> int | None:
    """Inside an open unit of work: a confirmed violation (`oversale`, `false_claim`,
    `non_shipment`, `fake_shipment`) of a merchant in a category; `ref` names the incident.

    Insert-if-absent on (merchant, kind, ref): the same incident reported again changes nothing
    and returns None; otherwise the new violation's id. Optional `deal_id` and `details`
    (`oversold_units`, `sold`, `compensation_cents`) feed the monthly case report.
    """
    try:
        violation_kind = rules.ViolationKind(kind)
    except ValueError as exc:
        raise ValidationFailed(f"kind must be one of {', '.join(rules.ViolationKind)}") from exc
    if not ref.strip() or len(ref) > 128:
        raise ValidationFailed("ref must name the incident (1-128 characters)")
    policy = load_policy(uow)
    lock_standing(uow, merchant_id)
    points = rules.points_for(violation_kind, category, policy)
    info = {**(details or {}), **({"deal_id": deal_id} if deal_id is not None else {})}
    if not insert_ignore(uow.session, Violation.__table__, {
            "merchant_id": merchant_id, "category": category, "kind": violation_kind.value, "ref": ref,
            "reason": reason, "points": points, "details": info, "recorded_at": uow.now, "void_reason": ""},
            ["merchant_id", "kind", "ref"]):
        return None
    violation = uow.session.scalars(select(Violation).where(
        Violation.merchant_id == merchant_id, Violation.kind == violation_kind.value, Violation.ref == ref)).one()
    record_event(uow.session, "ViolationRecorded", {"violation_id": violation.id, "merchant_id": merchant_id,
                 "category": category, "kind": kind, "ref": ref, "points": points}, uow.now, merchant_id=merchant_id)
    standing = refresh_standing(uow, merchant_id, policy)
    notify.notify_merchant(uow, merchant_id, "violation_recorded", f"-{points} points in {category}: {kind}",
                           f"{reason} (incident {ref}). Your {category} score is now "
                           f"{standing.scores.get(category, policy.start_score)}. You may appeal with evidence.",
                           {"violation_id": violation.id, "ref": ref}, severity="warning")
    if violation_kind == rules.ViolationKind.FALSE_CLAIM:
        punish_false_claim(uow, violation, policy)
    if any(h.event == "escalated" and h.violation_id == violation.id for h in standing.history):
        _escalate(uow, violation, standing, policy)
    return violation.id


def add_violation_compensation(uow: InTransaction, *, merchant_id: int, kind: str, ref: str, source: str,
                               cents: int) -> bool:
    """Inside an open unit of work: compensation paid later for a violation already recorded (a dispute
    confirmed on an over-sale incident) adds to its `compensation_cents`, once per `source`; the points do not
    change. Serialised on the merchant's standing row like every change to its record."""
    if cents <= 0:
        return False
    lock_standing(uow, merchant_id)
    violation = uow.session.scalars(select(Violation).where(
        Violation.merchant_id == merchant_id, Violation.kind == kind, Violation.ref == ref)).one_or_none()
    details = dict(violation.details or {}) if violation is not None else {}
    if violation is None or source in details.get("compensated_by", []):
        return False
    details["compensation_cents"] = int(details.get("compensation_cents", 0)) + cents
    details["compensated_by"] = [*details.get("compensated_by", []), source]
    violation.details = details
    return True


def _escalate(uow: InTransaction, violation: Violation, standing: rules.Standing,
              policy: rules.AccountabilityPolicy) -> None:
    """A repeat offence (E4): the replay already lengthened the limits; say so, naming the rule, and
    suspend new listings at the policy's count (tied to the violation, so an upheld appeal lifts it)."""
    rule = rules.repeat_rule(policy)
    record_event(uow.session, "RepeatOffenceRecorded", {"violation_id": violation.id, "merchant_id":
                 violation.merchant_id, "repeat_offences": standing.repeat_offences}, uow.now,
                 merchant_id=violation.merchant_id)
    notify.notify_merchant(uow, violation.merchant_id, "repeat_offence", "Repeat over-selling: limits lengthened",
                           f"Rule: {rule}. Incident {violation.ref} came while your traffic was limited. "
                           "To recover: " + "; ".join(rules.recovery_steps(standing, policy, uow.now)) + ".",
                           {"violation_id": violation.id, "rule": "repeat_offence",
                            "repeat_offences": standing.repeat_offences}, severity="critical")
    if standing.repeat_offences >= policy.repeat_suspension_after:
        add_penalty(uow, violation.merchant_id, rules.PenaltyKind.LISTING_SUSPENSION,
                    rule=f"repeat over-selling: {standing.repeat_offences} repeat offences while limited "
                         f"(suspension at {policy.repeat_suspension_after}): {rule}",
                    evidence=f"{violation.ref}: {violation.reason}",
                    ends_at=uow.now + timedelta(days=policy.repeat_suspension_days), violation_id=violation.id)


def _replay(uow: InTransaction, merchant_id: int, policy: rules.AccountabilityPolicy) -> rules.Standing:
    deductions = [rules.Deduction(v.id, v.recorded_at, v.category, v.kind, v.points) for v in uow.session.scalars(
        select(Violation).where(Violation.merchant_id == merchant_id, Violation.voided_at.is_(None)))]
    passes = list(uow.session.scalars(select(ExamAttempt.at).where(ExamAttempt.merchant_id == merchant_id,
                                                                    ExamAttempt.passed)))
    return rules.replay(deductions, passes, policy, uow.now)


def refresh_standing(uow: InTransaction, merchant_id: int, policy: rules.AccountabilityPolicy) -> rules.Standing:
    """Inside an open unit of work: replay the merchant's history and store the result."""
    row = lock_standing(uow, merchant_id)
    standing = _replay(uow, merchant_id, policy)
    was_limited = row.limited
    row.scores, row.limited = dict(standing.scores), standing.limited
    row.limited_since, row.lift_at, row.updated_at = standing.limited_since, standing.lift_at, uow.now
    if standing.limited and not was_limited:
        record_event(uow.session, "TrafficLimited", {"merchant_id": merchant_id}, uow.now, merchant_id=merchant_id)
        notify.notify_merchant(uow, merchant_id, "traffic_limited", "Traffic limits are on",
                               "Ranking and exposure are halved and daily intake is capped at "
                               f"{rules.daily_intake_cap(True, policy)} orders. To recover: "
                               + "; ".join(rules.recovery_steps(standing, policy, uow.now)) + ".",
                               severity="critical")
    elif was_limited and not standing.limited:
        record_event(uow.session, "TrafficRestored", {"merchant_id": merchant_id}, uow.now, merchant_id=merchant_id)
        notify.notify_merchant(uow, merchant_id, "traffic_restored", "Traffic limits lifted",
                               "Ranking, exposure and daily intake are back to normal.")
    return standing


def record_violation_by_ops(uow: UnitOfWork, actor: Principal, merchant_id: int, *, category: str, kind: str,
                            ref: str, reason: str) -> dict[str, Any]:
    """Ops record a confirmed violation by hand (audited); the same ref twice counts once."""
    actor.require(Role.OPS)
    if category not in catalog_rules.Category.__members__.values():
        raise ValidationFailed(f"unknown category {category!r}")
    if not reason.strip():
        raise ValidationFailed("a reason is required")
    with uow:
        violation_id = record_violation(uow, merchant_id=merchant_id, category=category, kind=kind, ref=ref,
                                        reason=reason)
        record_audit(uow.session, actor_id=actor.user_id, actor_role="ops", action="record_violation",
                     target=f"merchant:{merchant_id}", reason=reason, now=uow.now,
                     details={"kind": kind, "category": category, "ref": ref, "violation_id": violation_id})
        uow.commit()
        return {"recorded": violation_id is not None, "violation_id": violation_id}


def _violation_view(v: Violation) -> dict[str, Any]:
    return {"id": v.id, "merchant_id": v.merchant_id, "category": v.category, "kind": v.kind, "ref": v.ref,
            "reason": v.reason, "points": v.points, "details": v.details, "recorded_at": v.recorded_at.isoformat(),
            "voided_at": v.voided_at.isoformat() if v.voided_at else None, "void_reason": v.void_reason}


def list_violations(uow: UnitOfWork, actor: Principal, merchant_id: int) -> list[dict[str, Any]]:
    actor.require_merchant(merchant_id)
    with uow:
        return [_violation_view(v) for v in uow.session.scalars(
            select(Violation).where(Violation.merchant_id == merchant_id).order_by(Violation.id))]


def standing(uow: UnitOfWork, actor: Principal, merchant_id: int) -> dict[str, Any]:
    """Scores, traffic, what to do to recover and the penalties in force."""
    actor.require_merchant(merchant_id)
    with uow:
        accounts.merchant_status(uow, merchant_id)
        policy = load_policy(uow)
        st = _replay(uow, merchant_id, policy)
        return {"merchant_id": merchant_id, "start_score": policy.start_score, "scores": st.scores,
                "limited": st.limited, "limited_since": st.limited_since.isoformat() if st.limited_since else None,
                "lift_at": st.lift_at.isoformat() if st.lift_at else None, "exam_passed": st.exam_passed,
                "traffic": {"exposure_percent": rules.exposure_percent(st.limited, policy),
                            "daily_intake_cap": rules.daily_intake_cap(st.limited, policy)},
                "recovery_steps": rules.recovery_steps(st, policy, uow.now),
                "penalties_in_force": [penalty_view(p) for p in penalties_in_force(uow, merchant_id)]}


def score_history(uow: UnitOfWork, actor: Principal, merchant_id: int) -> dict[str, Any]:
    """Every deduction with its reason and incident, and when limits began and lifted (replayed)."""
    actor.require_merchant(merchant_id)
    with uow:
        policy = load_policy(uow)
        st = _replay(uow, merchant_id, policy)
        by_id = {v.id: v for v in uow.session.scalars(select(Violation).where(Violation.merchant_id == merchant_id))}
        entries = []
        for h in st.history:
            v = by_id.get(h.violation_id) if h.violation_id else None
            entries.append({"at": h.at.isoformat(), "event": h.event, "category": h.category, "points": h.points,
                            "score_after": h.score_after, "violation_id": h.violation_id,
                            "kind": v.kind if v else None, "ref": v.ref if v else None,
                            "reason": v.reason if v else None})
        voided = [_violation_view(v) for v in by_id.values() if v.voided_at is not None]
        return {"merchant_id": merchant_id, "start_score": policy.start_score, "entries": entries,
                "restored_by_appeal": voided}


# ---- the order path and the listings --------------------------------------------------------------

def category_score(uow: InTransaction, merchant_id: int, category: str) -> int:
    """Inside an open unit of work: the merchant's current score in a category (the start score if none)."""
    policy = load_policy(uow)
    row = uow.session.get(MerchantStanding, merchant_id)
    return int(row.scores.get(category, policy.start_score)) if row else policy.start_score


def rank_deals(uow: InTransaction, deals: list[tuple[int, int, str]]) -> list[int]:
    """Inside an open unit of work: ids of (deal_id, merchant_id, category) in listing order.

    Weight = the merchant's score in the deal's category x exposure (halved while limited);
    highest first, ties by deal id.
    """
    policy = load_policy(uow)
    merchant_ids = sorted({m for _, m, _ in deals})
    rows = {r.merchant_id: r for r in uow.session.scalars(
        select(MerchantStanding).where(MerchantStanding.merchant_id.in_(merchant_ids)))} if merchant_ids else {}
    weights = {}
    for deal_id, merchant_id, category in deals:
        r = rows.get(merchant_id)
        score = int(r.scores.get(category, policy.start_score)) if r else policy.start_score
        limited = r is not None and rules.is_limited(r.limited, r.lift_at, uow.now)
        weights[deal_id] = rules.rank_weight(score, limited, policy)
    return rules.rank(weights)


def refresh_due(uow: UnitOfWork) -> int:
    """Store (and announce) limits that lifted by the clock since they were last replayed."""
    with uow:
        due = list(uow.session.scalars(select(MerchantStanding.merchant_id).where(
            MerchantStanding.limited, MerchantStanding.lift_at <= uow.now).order_by(MerchantStanding.merchant_id)))
        if not due:
            return 0
        policy = load_policy(uow)
        for merchant_id in due:
            refresh_standing(uow, merchant_id, policy)
        uow.commit()
        return len(due)


__all__ = ["PENALTY_INCOME", "POLICY", "add_penalty", "add_violation_compensation", "category_score",
           "check_may_publish", "deposit_account", "get_policy", "impose_penalty", "lift_penalty", "list_penalties",
           "list_violations", "load_policy", "lock_standing", "rank_deals", "record_violation",
           "record_violation_by_ops", "refresh_due", "refresh_standing", "score_history", "set_policy", "standing",
           "standing_false_claims"]
