"""What a confirmed over-sale teaches the platform about a store's real capacity (A1 with A3 and A10).

The dynamic cap starts from what a merchant declares. When a dispute confirms that the store could not serve
orders sold within that cap, and no disruption explained it (the breaker would have moved them), the
declaration is proven wrong for that deal. The platform records the capacity the store really served as an
approved capacity figure, the same kind an audit with an on-site inspection gives; the deal's caps follow at
once (today's over-sold orders still standing are moved by the breaker, with notice), and the merchant gets
more only through a new audit. Runs inside the caller's unit of work and never commits.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from tuangou.capacity import rules
from tuangou.capacity.daily import _inputs, daily, plan_day, policy, recompute_deal
from tuangou.capacity.models import CapacityAudit
from tuangou.catalog import service as catalog
from tuangou.core.db import InTransaction
from tuangou.core.outbox import record_event
from tuangou.notify import service as notify


def record_shortfall(uow: InTransaction, deal_id: int, day: date, ref: str, by: int | None) -> dict[str, Any] | None:
    """Inside an open unit of work: a confirmed over-sale (`ref`) of `deal_id` on `day`, decided by user `by`
    (None: the platform). Returns the verified capacity recorded, or None when nothing was learnt."""
    if not policy(uow).verify_after_oversale:
        return None
    facts = catalog.deal_facts(uow, deal_id, lock=True)
    if not daily(facts):  # what a store served on a day is read from a daily bucket
        return None
    inputs = _inputs(uow, facts)
    plan = plan_day(inputs, day)
    bucket = next((b for b in catalog.buckets_of(uow, deal_id) if b.key == plan["key"]), None)
    if inputs.base is None or plan["capacity"] is None or bucket is None:
        return None
    served = bucket.sold  # what still stands on that day once the upheld orders are refunded
    if served + 1 >= plan["capacity"]:  # a day that filled up: what the store served is what it can do
        verified = rules.verified_base(inputs.base, plan["capacity"], served)
    else:
        # a buyer turned away below the plan proves a shortfall but not its size: cutting the capacity to a
        # slow day's demand would shut a busy shop, ignoring it lets an over-declared shop fail buyers every day
        # (the rule's docstring says how far it moves)
        verified = rules.stepped_down_base(inputs.base, plan["capacity"], served)
    if verified >= inputs.base:
        return None
    reason = (f"{ref} confirmed an over-sale on {day.isoformat()}: {served} of {plan['capacity']} planned units "
              f"served, so {verified} a day instead of the declared {inputs.base}")
    audit = CapacityAudit(deal_id=deal_id, store_id=facts["store_id"], merchant_id=facts["merchant_id"],
                          status=rules.AuditStatus.APPROVED, declared={"shortfall": {
                              "ref": ref, "day": day.isoformat(), "served": served, "planned": plan["capacity"],
                              "declared_base": inputs.base}},
                          findings={}, requested_by=by or 0, approved_cap=verified, bottleneck="verified:served",
                          decided_by=by, decided_at=uow.now, decision_reason=reason, created_at=uow.now)
    uow.session.add(audit)
    uow.session.flush()
    record_event(uow.session, "CapacityVerified", {"deal_id": deal_id, "audit_id": audit.id, "ref": ref,
                                                   "approved_cap": verified, "declared_base": inputs.base},
                 uow.now, merchant_id=facts["merchant_id"])
    notify.notify_merchant(uow, facts["merchant_id"], "capacity_verified",
                           f"Capacity of {facts['title']} is now {verified} a day", reason + ". Request a "
                           f"capacity audit (POST /api/v1/deals/{deal_id}/capacity-audits) to show more.",
                           {"deal_id": deal_id, "audit_id": audit.id, "approved_cap": verified})
    recompute_deal(uow, deal_id, f"capacity verified by {ref}")
    return {"audit_id": audit.id, "approved_cap": verified, "declared_base": inputs.base}
