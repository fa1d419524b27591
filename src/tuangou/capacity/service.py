"""Capacity: declarations, deal consumption, pre-sale audits, disruptions and the dynamic daily cap.

A voucher deal's cap for a day is `min(offer, capacity)`: the offer is what the
merchant puts on sale (the deal's daily cap, or a per-date offer), the capacity
is the approved (or declared) bottleneck x the day's factor x live disruptions.
A slotted deal's day capacity is split over its slots (never above a slot's offer);
a goods deal's stock is bounded by the declared storage under today's disruptions.
Whenever an input changes the affected buckets are recomputed in the same unit
of work; a cap that falls below what is sold trips governance's circuit breaker.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime
from typing import Any

from sqlalchemy import or_, select, update

from tuangou.capacity import refresh, rules, verify
from tuangou.capacity.daily import (
    POLICY,
    approved_cap,
    cached_policy,
    capacity_base,
    current_offer,
    day_plan,
    day_target,
    deal_day_caps,
    declaration_of,
    due_for_refresh,
    follow_offer,
    governed_deal_ids,
    policy,
    recompute_deal,
    recompute_deal_upcoming,
    recompute_store,
    refresh_all_soon,
    safe_sales_for_store,
    set_offer,
)
from tuangou.capacity.models import (
    CapacityAudit,
    CapacityDeclaration,
    CapacityDisruption,
    DealConsumption,
)
from tuangou.capacity.rules import AuditStatus, DisruptionKind

__all__ = ["AuditStatus", "DisruptionKind", "cached_policy", "current_offer", "day_plan", "day_plans", "record_shortfall", "day_target", "deal_day_caps", "follow_offer", "policy", "recompute_deal",
           "recompute_store", "recompute_deal_upcoming", "safe_sales_for_store", "set_offer"]
from tuangou.catalog import service as catalog
from tuangou.core import policy as policies
from tuangou.core.audit import record_audit, require_reason
from tuangou.core.auth import Principal, Role
from tuangou.core.db import InTransaction, UnitOfWork, insert_ignore, retry_on_deadlock
from tuangou.core.errors import Conflict, NotFound, ValidationFailed
from tuangou.core.outbox import record_event
from tuangou.notify import service as notify

day_plans = refresh.day_plans
record_shortfall = verify.record_shortfall

# ---- policy ---------------------------------------------------------------------------------------

def get_policy(uow: UnitOfWork) -> dict[str, Any]:
    with uow:
        return asdict(policy(uow))


def set_policy(uow: UnitOfWork, actor: Principal, changes: dict[str, Any], reason: str) -> dict[str, Any]:
    actor.require(Role.OPS)
    with uow:
        try:
            new = policy(uow).merged(changes)
        except (ValueError, TypeError) as exc:
            raise ValidationFailed(str(exc)) from exc
        problems = new.problems()
        if problems:
            raise ValidationFailed("; ".join(problems))
        value = asdict(new)
        policies.store(uow, actor, POLICY, value, reason, changes)
        refresh_all_soon(uow)  # factors, switches and the horizon feed every deal's caps
        uow.commit()
        return value


# ---- declarations and consumption --------------------------------------------------------------------

def _declaration_row(uow: UnitOfWork, store_id: int) -> CapacityDeclaration | None:
    return uow.session.scalar(select(CapacityDeclaration).where(CapacityDeclaration.store_id == store_id))


def _declaration_view(row: CapacityDeclaration) -> dict[str, Any]:
    decl = declaration_of(row.declaration)
    neck = rules.bottleneck(decl)
    return {"store_id": row.store_id, **row.declaration, "weekday_factors": row.weekday_factors,
            "holidays": row.holidays, "daily_resources": rules.daily_resources(decl),
            "bottleneck": {"cap": neck.cap, "resource": neck.resource}, "updated_at": row.updated_at.isoformat()}


@retry_on_deadlock
def declare_capacity(uow: UnitOfWork, actor: Principal, store_id: int, declaration: dict[str, Any],
                     weekday_factors: dict[int, float], holidays: dict[date, float]) -> dict[str, Any]:
    """Declare (or replace) a store's capacity and its day factors; caps follow at once."""
    with uow:
        store = catalog.store_facts(uow, store_id, actor)
        try:
            decl = declaration_of(declaration)
        except (TypeError, ValueError, KeyError) as exc:
            raise ValidationFailed(f"invalid declaration: {exc}") from exc
        problems = rules.declaration_problems(decl)
        pol = policy(uow)
        for label, factor in [*((f"weekday {k}", v) for k, v in weekday_factors.items()),
                              *((f"holiday {k}", v) for k, v in holidays.items())]:
            if not 0 <= factor <= pol.max_day_factor:
                problems.append(f"{label} factor must be between 0 and {pol.max_day_factor}")
        if any(not 0 <= k <= 6 for k in weekday_factors):
            problems.append("weekday factors are keyed 0 (Monday) .. 6 (Sunday)")
        if problems:
            raise ValidationFailed("; ".join(problems))
        values = {"declaration": declaration, "weekday_factors": {str(k): v for k, v in weekday_factors.items()},
                  "holidays": {k.isoformat(): v for k, v in holidays.items()}, "updated_at": uow.now}
        if not insert_ignore(uow.session, CapacityDeclaration.__table__,
                             {"store_id": store_id, "merchant_id": store["merchant_id"], **values}, ["store_id"]):
            uow.session.execute(update(CapacityDeclaration).where(CapacityDeclaration.store_id == store_id)
                                .values(**values))
        record_event(uow.session, "CapacityDeclared", {"store_id": store_id}, uow.now,
                     merchant_id=store["merchant_id"])
        recompute_store(uow, store_id, "capacity declaration changed")
        row = _declaration_row(uow, store_id)
        assert row is not None
        uow.session.refresh(row)
        view = _declaration_view(row)
        uow.commit()
        return view


def get_declaration(uow: UnitOfWork, actor: Principal, store_id: int) -> dict[str, Any]:
    with uow:
        catalog.store_facts(uow, store_id, actor)
        row = _declaration_row(uow, store_id)
        if row is None:
            raise NotFound(f"store {store_id} has declared no capacity")
        return _declaration_view(row)


def set_consumption(uow: UnitOfWork, actor: Principal, deal_id: int, consumption: dict[str, float]
                    ) -> dict[str, Any]:
    """What one unit of a deal uses of each resource (e.g. {"machine:sealer": 2} for a two-cup set)."""
    if any(v < 0 for v in consumption.values()):
        raise ValidationFailed("consumption must be >= 0")
    with uow:
        deal = catalog.own_deal(uow, actor, deal_id)
        if not insert_ignore(uow.session, DealConsumption.__table__, {
                "deal_id": deal_id, "consumption": consumption, "updated_at": uow.now}, ["deal_id"]):
            uow.session.execute(update(DealConsumption).where(DealConsumption.deal_id == deal_id)
                                .values(consumption=consumption, updated_at=uow.now))
        recompute_deal(uow, deal_id, "deal consumption changed")
        view = {"deal_id": deal.id, "consumption": consumption, "base": capacity_base(uow, catalog.deal_facts(uow, deal_id))}
        uow.commit()
        return view


def _consumption(uow: UnitOfWork, deal_id: int) -> dict[str, float]:
    row = uow.session.get(DealConsumption, deal_id)
    return {k: float(v) for k, v in (row.consumption if row else {}).items()}


# ---- pre-sale audits (A3) ----------------------------------------------------------------------------

def _audit_view(a: CapacityAudit) -> dict[str, Any]:
    return {"id": a.id, "deal_id": a.deal_id, "store_id": a.store_id, "merchant_id": a.merchant_id,
            "status": a.status, "declared": a.declared, "findings": a.findings, "inspection_note": a.inspection_note,
            "inspected_by": a.inspected_by, "approved_cap": a.approved_cap, "bottleneck": a.bottleneck,
            "requested_by": a.requested_by, "decided_by": a.decided_by,
            "decided_at": a.decided_at.isoformat() if a.decided_at else None,
            "decision_reason": a.decision_reason, "created_at": a.created_at.isoformat()}


def request_audit(uow: UnitOfWork, actor: Principal, deal_id: int) -> dict[str, Any]:
    """The merchant files its store's declaration and the deal's consumption for review."""
    with uow:
        deal = catalog.own_deal(uow, actor, deal_id)
        row = _declaration_row(uow, deal.store_id)
        if row is None:
            raise Conflict("declare the store's capacity first (PUT /api/v1/stores/{id}/capacity-declaration)",
                           code="capacity_not_declared")
        audit = CapacityAudit(deal_id=deal_id, store_id=deal.store_id, merchant_id=deal.merchant_id,
                              status=AuditStatus.PENDING, declared={"declaration": row.declaration,
                                                                    "consumption": _consumption(uow, deal_id)},
                              findings={}, requested_by=actor.user_id, created_at=uow.now)
        uow.session.add(audit)
        uow.session.flush()
        record_event(uow.session, "CapacityAuditRequested", {"audit_id": audit.id, "deal_id": deal_id}, uow.now,
                     merchant_id=deal.merchant_id)
        notify.notify_ops(uow, "capacity_audit_requested", f"Capacity audit #{audit.id} for deal {deal_id}",
                          "A large promotion waits for a pre-sale capacity audit.", {"audit_id": audit.id})
        uow.commit()
        return _audit_view(audit)


def _pending_audit(uow: UnitOfWork, audit_id: int) -> CapacityAudit:
    audit = uow.session.scalar(select(CapacityAudit).where(CapacityAudit.id == audit_id).with_for_update())
    if audit is None:
        raise NotFound(f"capacity audit {audit_id} not found")
    if audit.status != AuditStatus.PENDING:
        raise Conflict(f"audit is {audit.status}", code="audit_decided")
    return audit


def _audited_bottleneck(audit: CapacityAudit, findings: dict[str, Any]) -> rules.Bottleneck:
    decl = declaration_of(audit.declared["declaration"]).with_findings(findings)
    problems = rules.declaration_problems(decl)
    if problems:
        raise ValidationFailed("; ".join(problems))
    return rules.bottleneck(decl, {k: float(v) for k, v in audit.declared.get("consumption", {}).items()})


def record_inspection(uow: UnitOfWork, actor: Principal, audit_id: int, findings: dict[str, Any], note: str,
                      reason: str) -> dict[str, Any]:
    """Ops record what an on-site inspection found; the findings override the declared numbers."""
    actor.require(Role.OPS)
    require_reason(reason)
    with uow:
        audit = _pending_audit(uow, audit_id)
        try:
            neck = _audited_bottleneck(audit, findings)
        except (TypeError, ValueError, KeyError) as exc:
            raise ValidationFailed(f"invalid findings: {exc}") from exc
        audit.findings, audit.inspection_note, audit.inspected_by = findings, note, actor.user_id
        record_audit(uow.session, actor_id=actor.user_id, actor_role="ops", action="record_inspection",
                     target=f"capacity_audit:{audit_id}", reason=reason, now=uow.now,
                     details={"findings": findings, "bottleneck": neck.cap})
        view = {**_audit_view(audit), "bottleneck_preview": {"cap": neck.cap, "resource": neck.resource,
                                                             "per_resource": neck.per_resource}}
        uow.commit()
        return view


@retry_on_deadlock
def decide_audit(uow: UnitOfWork, actor: Principal, audit_id: int, approve: bool, reason: str) -> dict[str, Any]:
    """Ops approve (the tightest bottleneck becomes the deal's capacity) or reject an audit."""
    actor.require(Role.OPS)
    if not reason.strip():
        raise ValidationFailed("a reason is required")
    with uow:
        audit = _pending_audit(uow, audit_id)
        if approve:
            neck = _audited_bottleneck(audit, audit.findings or {})
            if neck.cap is None:
                raise Conflict("nothing in the declaration limits the deal; declare its resources",
                               code="no_bottleneck")
            audit.approved_cap, audit.bottleneck = neck.cap, neck.resource
        audit.status = AuditStatus.APPROVED if approve else AuditStatus.REJECTED
        audit.decided_by, audit.decided_at, audit.decision_reason = actor.user_id, uow.now, reason
        action = "approve_capacity_audit" if approve else "reject_capacity_audit"
        record_audit(uow.session, actor_id=actor.user_id, actor_role="ops", action=action,
                     target=f"capacity_audit:{audit_id}", reason=reason, now=uow.now,
                     details={"approved_cap": audit.approved_cap, "bottleneck": audit.bottleneck})
        record_event(uow.session, "CapacityAuditApproved" if approve else "CapacityAuditRejected",
                     {"audit_id": audit_id, "deal_id": audit.deal_id, "approved_cap": audit.approved_cap},
                     uow.now, merchant_id=audit.merchant_id)
        title = (f"Capacity audit approved: {audit.approved_cap} a day ({audit.bottleneck})" if approve
                 else "Capacity audit rejected")
        notify.notify_merchant(uow, audit.merchant_id, "capacity_audit_decided", title, reason,
                               {"audit_id": audit_id, "deal_id": audit.deal_id})
        if approve:
            recompute_deal(uow, audit.deal_id, "capacity audit approved")
        view = _audit_view(audit)
        uow.commit()
        return view


def list_audits(uow: UnitOfWork, actor: Principal, status: str | None, deal_id: int | None) -> list[dict[str, Any]]:
    with uow:
        q = select(CapacityAudit).order_by(CapacityAudit.id.desc()).limit(200)
        merchant_id = actor.merchant_scope()
        if merchant_id is not None:
            q = q.where(CapacityAudit.merchant_id == merchant_id)
        if status:
            q = q.where(CapacityAudit.status == status)
        if deal_id:
            q = q.where(CapacityAudit.deal_id == deal_id)
        return [_audit_view(a) for a in uow.session.scalars(q)]


def on_publish(uow: InTransaction, deal_id: int) -> None:
    """Inside the publishing unit of work: refuse a large promotion without an approved audit, then
    bring the deal's caps in line with the store's capacity."""
    facts = catalog.deal_facts(uow, deal_id)
    offer = facts["daily_cap"] if not facts["slots"] else sum(facts["slots"].values())
    pol = policy(uow)
    if pol.presale_audit and rules.needs_audit(facts["large_promotion"], facts["price_cents"], offer,
                                               pol.audit_value_threshold_cents) and approved_cap(uow, deal_id) is None:
        raise Conflict("a large promotion needs an approved capacity audit before it goes on sale: "
                       f"POST /api/v1/deals/{deal_id}/capacity-audits", code="capacity_audit_required")
    recompute_deal(uow, deal_id, "deal published")


# ---- disruptions ---------------------------------------------------------------------------------

def _disruption_view(d: CapacityDisruption) -> dict[str, Any]:
    return {"id": d.id, "store_id": d.store_id, "deal_id": d.deal_id, "kind": d.kind,
            "capacity_factor": d.capacity_factor, "max_units": d.max_units, "starts_at": d.starts_at.isoformat(),
            "ends_at": d.ends_at.isoformat() if d.ends_at else None, "reason": d.reason,
            "reported_by": d.reported_by}


@retry_on_deadlock
def report_disruption(uow: UnitOfWork, actor: Principal, store_id: int, *, kind: str, capacity_factor: float,
                      max_units: int | None, starts_at: datetime | None, ends_at: datetime | None,
                      deal_id: int | None, reason: str) -> dict[str, Any]:
    """The merchant or ops report lost capacity; today's caps follow in the same transaction."""
    if actor.role == Role.OPS:
        require_reason(reason)
    if kind not in DisruptionKind.__members__.values():
        raise ValidationFailed(f"kind must be one of {', '.join(DisruptionKind)}")
    if not 0 <= capacity_factor <= 1:
        raise ValidationFailed("capacity_factor is the share of capacity left, 0..1")
    with uow:
        store = catalog.store_facts(uow, store_id, actor)
        start = starts_at or uow.now
        if ends_at is not None and ends_at <= start:
            raise ValidationFailed("ends_at must be after starts_at")
        if deal_id is not None and catalog.deal_facts(uow, deal_id)["store_id"] != store_id:
            raise ValidationFailed("the deal is not sold by this store")
        dis = CapacityDisruption(store_id=store_id, merchant_id=store["merchant_id"], deal_id=deal_id, kind=kind,
                                 capacity_factor=capacity_factor, max_units=max_units, starts_at=start,
                                 ends_at=ends_at, reason=reason, reported_by=actor.user_id, created_at=uow.now)
        uow.session.add(dis)
        uow.session.flush()
        if actor.role == Role.OPS:
            record_audit(uow.session, actor_id=actor.user_id, actor_role="ops", action="report_disruption",
                         target=f"store:{store_id}", reason=reason, now=uow.now, details={"disruption": dis.id})
        record_event(uow.session, "CapacityDisrupted", _disruption_view(dis), uow.now, merchant_id=dis.merchant_id)
        recompute_store(uow, store_id, f"capacity disrupted: {kind} ({reason})")
        view = _disruption_view(dis)
        uow.commit()
        return view


@retry_on_deadlock
def end_disruption(uow: UnitOfWork, actor: Principal, disruption_id: int, reason: str) -> dict[str, Any]:
    if actor.role == Role.OPS:
        require_reason(reason)
    with uow:
        dis = uow.session.get(CapacityDisruption, disruption_id)
        if dis is None:
            raise NotFound(f"disruption {disruption_id} not found")
        actor.require_merchant(dis.merchant_id)
        ended = uow.session.execute(update(CapacityDisruption).where(
            CapacityDisruption.id == disruption_id,
            or_(CapacityDisruption.ends_at.is_(None), CapacityDisruption.ends_at > uow.now))
            .values(ends_at=max(uow.now, dis.starts_at))).rowcount  # type: ignore[attr-defined]
        if not ended:
            raise Conflict("the disruption has already ended", code="disruption_ended")
        if actor.role == Role.OPS:
            record_audit(uow.session, actor_id=actor.user_id, actor_role="ops", action="end_disruption",
                         target=f"disruption:{disruption_id}", reason=reason, now=uow.now)
        uow.session.refresh(dis)
        record_event(uow.session, "CapacityRestored", {"disruption_id": dis.id, "store_id": dis.store_id},
                     uow.now, merchant_id=dis.merchant_id)
        recompute_store(uow, dis.store_id, "disruption ended")
        view = _disruption_view(dis)
        uow.commit()
        return view


def list_disruptions(uow: UnitOfWork, actor: Principal, store_id: int) -> list[dict[str, Any]]:
    with uow:
        catalog.store_facts(uow, store_id, actor)
        q = select(CapacityDisruption).where(CapacityDisruption.store_id == store_id).order_by(
            CapacityDisruption.id.desc()).limit(200)
        return [_disruption_view(d) for d in uow.session.scalars(q)]



# ---- dynamic caps and calculators ----------------------------------------------------------------

REFRESH_BATCH = 200  # deals per transaction: short transactions, few round trips


@retry_on_deadlock
def refresh_daily_caps(uow: UnitOfWork) -> int:
    """Recompute the caps of the live deals that time may have moved since their last recompute (their
    store's midnight passed, or a disruption ended); input changes recompute at once in their own
    transactions. Returns how many buckets tripped the circuit breaker."""
    with uow:
        due = due_for_refresh(uow, governed_deal_ids(uow))
    tripped = 0
    for i in range(0, len(due), REFRESH_BATCH):
        with uow:
            tripped += refresh.recompute_many(uow, due[i:i + REFRESH_BATCH], "daily capacity update", policy(uow))
            uow.commit()
    return tripped


def daily_caps(uow: UnitOfWork, actor: Principal | None, deal_id: int, start: date | None, days: int
               ) -> list[dict[str, Any]]:
    return deal_day_caps(uow, actor, deal_id, start, days)


def safe_sales_calculator(uow: UnitOfWork, daily_reception: int, activity_days: int) -> dict[str, Any]:
    """Safe sales = daily reception x activity days x the policy's ratio (0.8)."""
    if daily_reception < 0 or not 0 < activity_days <= 366:
        raise ValidationFailed("daily_reception >= 0 and activity_days in 1..366")
    with uow:
        ratio = policy(uow).safe_sales_ratio
    return {"daily_reception": daily_reception, "activity_days": activity_days, "ratio": ratio,
            "safe_sales": rules.safe_sales(daily_reception, activity_days, ratio)}
