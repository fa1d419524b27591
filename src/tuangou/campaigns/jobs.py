"""Campaign ticks: lapse abandoned joins, fail groups at their deadline, book and finish their refunds,
close stay-open groups, refund the difference to the final price tier, refund and compensate called-off groups,
alert unbooked cold chains and stages past their SLA. Each step is idempotent; the orders job pays refunds."""

from __future__ import annotations

from typing import Any

from tuangou.campaigns import cancelling, lifecycle, tiers
from tuangou.core.db import UnitOfWork
from tuangou.core.jobs import JobContext


def run_due(ctx: JobContext) -> dict[str, Any]:
    uow = UnitOfWork(ctx.db, ctx.clock)
    return {"lapsed": lifecycle.lapse_abandoned(uow),
            "failed": lifecycle.fail_expired(uow),
            "refunds_booked": lifecycle.book_failure_refunds(uow),
            "entries_closed": lifecycle.close_due_entries(uow),
            "tier_refunds": tiers.refund_tier_differences(uow),
            "cancellation_refunds": cancelling.book_cancellation_refunds(uow),
            "refunded": lifecycle.finish_refunds(uow),
            "cold_chain_alerts": lifecycle.alert_cold_chain(uow),
            "overdue_stages": lifecycle.alert_overdue_stages(uow)}
