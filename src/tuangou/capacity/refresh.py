"""The capacity refresh job's bulk path: the due deals' inputs and buckets read in a few set-based queries,
then each deal's caps moved by the same `recompute_loaded` as an input change uses.

Everything here runs inside the caller's unit of work and never commits.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select

from tuangou.capacity import rules
from tuangou.capacity.daily import (
    Inputs,
    assemble,
    base_of,
    governed,
    plan_day,
    policy,
    recompute_loaded,
    record_dues,
)
from tuangou.capacity.models import (
    CapacityAudit,
    CapacityDeclaration,
    CapacityDisruption,
    CapOffer,
    DealConsumption,
)
from tuangou.catalog import rules as catalog_rules
from tuangou.catalog import service as catalog
from tuangou.core.db import InTransaction


def inputs_many(uow: InTransaction, facts: list[dict[str, Any]], pol: rules.GovernancePolicy) -> dict[int, Inputs]:
    """Inside an open unit of work: what `daily._inputs` reads, for many deals in six queries."""
    ids = [f["id"] for f in facts]
    stores = sorted({f["store_id"] for f in facts})
    approved: dict[int, int | None] = {}
    for deal_id, cap in uow.session.execute(select(CapacityAudit.deal_id, CapacityAudit.approved_cap).where(
            CapacityAudit.deal_id.in_(ids), CapacityAudit.status == rules.AuditStatus.APPROVED)
            .order_by(CapacityAudit.decided_at, CapacityAudit.id)):
        approved[deal_id] = cap  # ascending: the latest approval is the one kept
    declared = {r.store_id: r for r in uow.session.scalars(
        select(CapacityDeclaration).where(CapacityDeclaration.store_id.in_(stores)))}
    uses = {r.deal_id: r.consumption for r in uow.session.scalars(
        select(DealConsumption).where(DealConsumption.deal_id.in_(ids)))}
    disrupted: dict[int, list[CapacityDisruption]] = defaultdict(list)
    for d in uow.session.scalars(select(CapacityDisruption).where(
            CapacityDisruption.store_id.in_(stores),
            or_(CapacityDisruption.ends_at.is_(None), CapacityDisruption.ends_at > uow.now))):
        disrupted[d.store_id].append(d)
    offers: dict[int, dict[str, int]] = defaultdict(dict)
    for o in uow.session.scalars(select(CapOffer).where(CapOffer.deal_id.in_(ids))):
        offers[o.deal_id][o.key] = o.cap
    out = {}
    for f in facts:
        row = declared.get(f["store_id"])
        base = base_of(f, approved.get(f["id"]), row, uses.get(f["id"]))
        out[f["id"]] = assemble(f, base, pol, uow.now, row, disrupted[f["store_id"]], offers[f["id"]])
    return out


def recompute_many(uow: InTransaction, deal_ids: list[int], cause: str, pol: rules.GovernancePolicy) -> int:
    """Inside an open unit of work: recompute the caps of `deal_ids` (locked in id order); returns how many
    buckets tripped the circuit breaker."""
    facts = [f for f in catalog.deal_facts_many(uow, deal_ids, lock=True)
             if governed(f) and f["status"] != catalog_rules.DealStatus.DRAFT]
    if not facts:
        return 0
    inputs = inputs_many(uow, facts, pol)
    first: date = min(uow.now.astimezone(ZoneInfo(f["timezone"])).date() for f in facts)
    buckets = catalog.buckets_from(uow, [f["id"] for f in facts], first.isoformat())
    dues: dict[int, datetime] = {}
    tripped = sum(len(recompute_loaded(uow, f, inputs[f["id"]], buckets[f["id"]], cause, pol, dues=dues))
                  for f in facts)
    record_dues(uow, dues)
    return tripped


def day_plans(uow: InTransaction, facts: list[dict[str, Any]], days: dict[int, date]) -> dict[int, dict[str, Any]]:
    """Inside an open unit of work: `day_plan` of many deals, each for its own day, read in bulk (the buckets
    only of the slotted and goods deals, whose plans need their counters)."""
    if not facts:
        return {}
    inputs = inputs_many(uow, facts, policy(uow))
    counted = [f["id"] for f in facts if f["slots"] or f["kind"] == catalog_rules.DealKind.GOODS]
    buckets = catalog.buckets_from(uow, counted, min(days.values()).isoformat()) if counted else {}
    return {f["id"]: plan_day(inputs[f["id"]], days[f["id"]], {b.key: b for b in buckets.get(f["id"], [])})
            for f in facts}
