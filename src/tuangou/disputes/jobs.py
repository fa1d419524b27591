"""Scheduled dispute work: SLA escalation, marking recovery claims the merchant has repaid, and expiring
item vouchers nobody used."""

from __future__ import annotations

from typing import Any

from tuangou.core.db import UnitOfWork
from tuangou.core.jobs import JobContext
from tuangou.disputes import inkind, service, stacking


def run_due(ctx: JobContext) -> dict[str, Any]:
    return {"escalated": service.escalate_overdue(UnitOfWork(ctx.db, ctx.clock)),
            "recovered": stacking.settle_recoveries(UnitOfWork(ctx.db, ctx.clock)),
            "item_vouchers_expired": inkind.expire_item_vouchers(UnitOfWork(ctx.db, ctx.clock))}
