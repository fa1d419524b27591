"""Merchant accountability: violation points, traffic limits, penalties and the policy behind them.

Other capabilities call `record_violation` inside their own unit of work. The standing (scores,
limits) is replayed from the violations that stand every time one changes, and kept in one row per
merchant so the order path and the listings read it with a single lookup. Appeals, exams and the
monthly case report live in `casework.py`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select

from tuangou.accounts import rules as account_rules
from tuangou.accounts import service as accounts
from tuangou.catalog import rules as catalog_rules
from tuangou.catalog import service as catalog
from tuangou.core import ledger
from tuangou.core import policy as policies
from tuangou.core.audit import record_audit
from tuangou.core.auth import Principal, Role
from tuangou.core.db import InTransaction, UnitOfWork, insert_ignore
from tuangou.core.errors import Conflict, NotFound, ValidationFailed
from tuangou.core.outbox import record_event
from tuangou.merchants import rules
from tuangou.merchants.models import (
    ExamAttempt,
    MerchantStanding,
    Penalty,
    Violation,
)
from tuangou.notify import service as notify

POLICY = "accountability"
PENALTY_INCOME = "platform:penalties"


def deposit_account(merchant_id: int) -> str:
    return f"deposit:merchant:{merchant_id}"


# ---- policy -------------------------------------------------------------------------------------

def load_policy(uow: InTransaction) -> rules.AccountabilityPolicy:
    """Inside an open unit of work: the policy in force."""
    stored = policies.load(uow.session, POLICY)
    return rules.AccountabilityPolicy.from_dict(stored) if stored is not None else rules.AccountabilityPolicy()


def get_policy(uow: UnitOfWork) -> dict[str, Any]:
    with uow:
        return load_policy(uow).to_dict()


def set_policy(uow: UnitOfWork, actor: Principal, changes: dict[str, Any], reason: str) -> dict[str, Any]:
    actor.require(Role.OPS)
    with uow:
        problems = rules.change_problems(changes)
        if problems:
            raise ValidationFailed("; ".join(problems))
        policy = replace(load_policy(uow), **changes)
        problems = rules.policy_problems(policy)
        if problems:
            raise ValidationFailed("; ".join(problems))
        policies.store(uow, actor, POLICY, policy.to_dict(), reason, changes)
        uow.commit()
        return policy.to_dict()


# ---- violations and the standing ------------------------------------------------------------------

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
        _punish_false_claim(uow, violation, policy)
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


def lock_standing(uow: InTransaction, merchant_id: int) -> MerchantStanding:
    """Serialise every change to one merchant's standing (row lock on PostgreSQL)."""
    accounts.merchant_status(uow, merchant_id)  # NotFound for an unknown merchant
    insert_ignore(uow.session, MerchantStanding.__table__, {"merchant_id": merchant_id, "scores": {},
                  "limited": False, "updated_at": uow.now}, ["merchant_id"])
    return uow.session.scalars(select(MerchantStanding).where(MerchantStanding.merchant_id == merchant_id)
                               .with_for_update().execution_options(populate_existing=True)).one()


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
                "penalties_in_force": [_penalty_view(p) for p in _penalties_in_force(uow, merchant_id)]}


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


def check_may_publish(uow: InTransaction, merchant_id: int, large_promotion: bool) -> None:
    """Inside an open unit of work: refuse publishing during a listing suspension (or a promotion ban)."""
    for p in _penalties_in_force(uow, merchant_id):
        until = p.ends_at.isoformat() if p.ends_at else "further notice"
        if p.kind == rules.PenaltyKind.LISTING_SUSPENSION:
            raise Conflict(f"new listings are suspended until {until}: {p.rule}", code="listing_suspended",
                           penalty_id=p.id)
        if p.kind == rules.PenaltyKind.PROMOTION_BAN and large_promotion:
            raise Conflict(f"promotions are banned until {until}: {p.rule}", code="promotion_banned",
                           penalty_id=p.id)


# ---- penalties ----------------------------------------------------------------------------------

def _penalties_in_force(uow: InTransaction, merchant_id: int) -> list[Penalty]:
    return list(uow.session.scalars(select(Penalty).where(
        Penalty.merchant_id == merchant_id, Penalty.status == rules.PenaltyStatus.ACTIVE,
        Penalty.starts_at <= uow.now, or_(Penalty.ends_at.is_(None), Penalty.ends_at > uow.now),
        Penalty.kind.notin_([rules.PenaltyKind.FINE, rules.PenaltyKind.DEPOSIT_DEDUCTION])).order_by(Penalty.id)))


def _penalty_view(p: Penalty) -> dict[str, Any]:
    return {"id": p.id, "merchant_id": p.merchant_id, "kind": p.kind, "rule": p.rule, "evidence": p.evidence,
            "violation_id": p.violation_id, "amount_cents": p.amount_cents, "starts_at": p.starts_at.isoformat(),
            "ends_at": p.ends_at.isoformat() if p.ends_at else None, "status": p.status,
            "lifted_at": p.lifted_at.isoformat() if p.lifted_at else None, "lift_reason": p.lift_reason}


def _money_lines(uow: InTransaction, p: Penalty) -> list[tuple[str, int]]:
    """A fine comes from settlements; a deposit deduction takes what the deposit holds and books the rest
    against settlements (owed), so the deposit never goes below zero. The standing row lock serialises
    deductions of one merchant, so two cannot both take the same money."""
    if p.kind == rules.PenaltyKind.FINE:
        return [(ledger.merchant_account(p.merchant_id), -p.amount_cents), (PENALTY_INCOME, p.amount_cents)]
    lock_standing(uow, p.merchant_id)
    taken, owed = rules.split_deduction(p.amount_cents, ledger.balance(uow.session, deposit_account(p.merchant_id)))
    return [(deposit_account(p.merchant_id), -taken), (ledger.merchant_account(p.merchant_id), -owed),
            (PENALTY_INCOME, p.amount_cents)]


def _returned_lines(uow: InTransaction, p: Penalty) -> list[tuple[str, int]]:
    """Exactly what the penalty took, from where it took it, given back."""
    lines = uow.session.execute(select(ledger.LedgerLine.account, ledger.LedgerLine.amount_cents).where(
        ledger.LedgerLine.ref == f"penalty:{p.id}", ledger.LedgerLine.kind == f"penalty_{p.kind}")).all()
    return [(account, -amount) for account, amount in lines]


def add_penalty(uow: InTransaction, merchant_id: int, kind: rules.PenaltyKind, *, rule: str, evidence: str,
                ends_at: Any = None, amount_cents: int = 0, violation_id: int | None = None,
                created_by: int | None = None) -> Penalty:
    """Inside an open unit of work: impose a penalty and its effect (money, removal) at once."""
    penalty = Penalty(merchant_id=merchant_id, kind=kind.value, rule=rule, evidence=evidence,
                      violation_id=violation_id, amount_cents=amount_cents, starts_at=uow.now, ends_at=ends_at,
                      status=rules.PenaltyStatus.ACTIVE, lift_reason="", created_by=created_by)
    uow.session.add(penalty)
    uow.session.flush()
    if kind in (rules.PenaltyKind.FINE, rules.PenaltyKind.DEPOSIT_DEDUCTION):
        ledger.post(uow.session, f"penalty_{kind.value}", _money_lines(uow, penalty), uow.now,
                    ref=f"penalty:{penalty.id}")
    if kind == rules.PenaltyKind.REMOVAL:
        accounts.set_merchant_status(uow, merchant_id, account_rules.MerchantStatus.REMOVED)
        catalog.delist_merchant_deals(uow, merchant_id, f"merchant removed: {rule}")
    record_event(uow.session, "PenaltyImposed", {"penalty_id": penalty.id, "kind": kind.value}, uow.now,
                 merchant_id=merchant_id)
    until = ends_at.isoformat() if ends_at else ("at once" if amount_cents else "until lifted")
    notify.notify_merchant(uow, merchant_id, "penalty_imposed", f"Penalty: {kind.value}",
                           f"Rule: {rule}. Evidence: {evidence}. Ends: {until}. You may appeal with evidence.",
                           {"penalty_id": penalty.id}, severity="critical")
    return penalty


def lift_penalty(uow: UnitOfWork, penalty: Penalty, reason: str) -> bool:
    """Inside an open unit of work: lift a penalty early and undo its effect; False if already lifted."""
    if penalty.status != rules.PenaltyStatus.ACTIVE:
        return False
    penalty.status, penalty.lifted_at, penalty.lift_reason = rules.PenaltyStatus.LIFTED, uow.now, reason
    if penalty.kind in (rules.PenaltyKind.FINE, rules.PenaltyKind.DEPOSIT_DEDUCTION):
        ledger.post(uow.session, f"penalty_{penalty.kind}_returned", _returned_lines(uow, penalty), uow.now,
                    ref=f"penalty:{penalty.id}")
    if penalty.kind == rules.PenaltyKind.REMOVAL:
        accounts.set_merchant_status(uow, penalty.merchant_id, account_rules.MerchantStatus.ACTIVE)
    record_event(uow.session, "PenaltyLifted", {"penalty_id": penalty.id}, uow.now, merchant_id=penalty.merchant_id)
    notify.notify_merchant(uow, penalty.merchant_id, "penalty_lifted", f"Penalty lifted: {penalty.kind}", reason,
                           {"penalty_id": penalty.id})
    return True


def _punish_false_claim(uow: InTransaction, violation: Violation, policy: rules.AccountabilityPolicy) -> None:
    days = policy.false_claim_listing_ban_days
    add_penalty(uow, violation.merchant_id, rules.PenaltyKind.LISTING_SUSPENSION,
                rule=f"false inventory claim: no new listings for {days} days",
                evidence=f"{violation.ref}: {violation.reason}", ends_at=uow.now + timedelta(days=days),
                violation_id=violation.id)
    count = standing_false_claims(uow, violation.merchant_id)
    if count >= policy.false_claim_removal_count:
        add_penalty(uow, violation.merchant_id, rules.PenaltyKind.REMOVAL,
                    rule=f"{count} false inventory claims (removal at {policy.false_claim_removal_count})",
                    evidence=f"{violation.ref}: {violation.reason}", violation_id=violation.id)


def standing_false_claims(uow: InTransaction, merchant_id: int) -> int:
    return int(uow.session.scalar(select(func.count()).select_from(Violation).where(
        Violation.merchant_id == merchant_id, Violation.kind == rules.ViolationKind.FALSE_CLAIM,
        Violation.voided_at.is_(None))) or 0)


def impose_penalty(uow: UnitOfWork, actor: Principal, merchant_id: int, *, kind: str, rule: str, evidence: str,
                   reason: str, days: int | None = None, amount_cents: int = 0,
                   violation_id: int | None = None) -> dict[str, Any]:
    """Ops impose a penalty; each states its rule, its evidence and its end."""
    actor.require(Role.OPS)
    try:
        penalty_kind = rules.PenaltyKind(kind)
    except ValueError as exc:
        raise ValidationFailed(f"kind must be one of {', '.join(rules.PenaltyKind)}") from exc
    money = penalty_kind in (rules.PenaltyKind.FINE, rules.PenaltyKind.DEPOSIT_DEDUCTION)
    problems = [m for bad, m in [(not rule.strip(), "rule is required"), (not evidence.strip(), "evidence is required"),
                                 (not reason.strip(), "reason is required"),
                                 (money and amount_cents <= 0, "amount_cents must be positive for money penalties"),
                                 (not money and amount_cents != 0, "amount_cents is only for fines and deductions"),
                                 (penalty_kind in (rules.PenaltyKind.PROMOTION_BAN, rules.PenaltyKind.LISTING_SUSPENSION)
                                  and (days is None or days <= 0), "days (> 0) is required: a ban must end")] if bad]
    if problems:
        raise ValidationFailed("; ".join(problems))
    with uow:
        accounts.merchant_status(uow, merchant_id)
        if violation_id is not None:
            v = uow.session.get(Violation, violation_id)
            if v is None or v.merchant_id != merchant_id:
                raise NotFound(f"violation {violation_id} of merchant {merchant_id} not found")
        ends_at = uow.now + timedelta(days=days) if days and not money else (uow.now if money else None)
        penalty = add_penalty(uow, merchant_id, penalty_kind, rule=rule, evidence=evidence, ends_at=ends_at,
                              amount_cents=amount_cents, violation_id=violation_id, created_by=actor.user_id)
        record_audit(uow.session, actor_id=actor.user_id, actor_role="ops", action="impose_penalty",
                     target=f"merchant:{merchant_id}", reason=reason, now=uow.now,
                     details={"penalty_id": penalty.id, "kind": kind, "amount_cents": amount_cents})
        uow.commit()
        return _penalty_view(penalty)


def list_penalties(uow: UnitOfWork, actor: Principal, merchant_id: int) -> list[dict[str, Any]]:
    actor.require_merchant(merchant_id)
    with uow:
        return [_penalty_view(p) for p in uow.session.scalars(
            select(Penalty).where(Penalty.merchant_id == merchant_id).order_by(Penalty.id))]


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
