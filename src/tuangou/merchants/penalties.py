"""Penalties: imposing and lifting them with their effect (money through the ledger, removal), the
automatic ones for false inventory claims, and the publish check against suspensions and promotion bans.

Repeat-offence suspensions are imposed from `service.py` (violations); appeals that lift penalties are in
`casework.py`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select

from tuangou.accounts import rules as account_rules
from tuangou.accounts import service as accounts
from tuangou.catalog import service as catalog
from tuangou.core import ledger
from tuangou.core.audit import record_audit
from tuangou.core.auth import Principal, Role
from tuangou.core.db import InTransaction, UnitOfWork
from tuangou.core.errors import Conflict, NotFound, ValidationFailed
from tuangou.core.outbox import record_event
from tuangou.merchants import rules
from tuangou.merchants.accountability import lock_standing
from tuangou.merchants.models import Penalty, Violation
from tuangou.notify import service as notify

PENALTY_INCOME = "platform:penalties"


def deposit_account(merchant_id: int) -> str:
    return f"deposit:merchant:{merchant_id}"


def check_may_publish(uow: InTransaction, merchant_id: int, large_promotion: bool) -> None:
    """Inside an open unit of work: refuse publishing during a listing suspension (or a promotion ban)."""
    for p in penalties_in_force(uow, merchant_id):
        until = p.ends_at.isoformat() if p.ends_at else "further notice"
        if p.kind == rules.PenaltyKind.LISTING_SUSPENSION:
            raise Conflict(f"new listings are suspended until {until}: {p.rule}", code="listing_suspended",
                           penalty_id=p.id)
        if p.kind == rules.PenaltyKind.PROMOTION_BAN and large_promotion:
            raise Conflict(f"promotions are banned until {until}: {p.rule}", code="promotion_banned",
                           penalty_id=p.id)


def penalties_in_force(uow: InTransaction, merchant_id: int) -> list[Penalty]:
    return list(uow.session.scalars(select(Penalty).where(
        Penalty.merchant_id == merchant_id, Penalty.status == rules.PenaltyStatus.ACTIVE,
        Penalty.starts_at <= uow.now, or_(Penalty.ends_at.is_(None), Penalty.ends_at > uow.now),
        Penalty.kind.notin_([rules.PenaltyKind.FINE, rules.PenaltyKind.DEPOSIT_DEDUCTION])).order_by(Penalty.id)))


def penalty_view(p: Penalty) -> dict[str, Any]:
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


def punish_false_claim(uow: InTransaction, violation: Violation, policy: rules.AccountabilityPolicy) -> None:
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
        return penalty_view(penalty)


def list_penalties(uow: UnitOfWork, actor: Principal, merchant_id: int) -> list[dict[str, Any]]:
    actor.require_merchant(merchant_id)
    with uow:
        return [penalty_view(p) for p in uow.session.scalars(
            select(Penalty).where(Penalty.merchant_id == merchant_id).order_by(Penalty.id))]
