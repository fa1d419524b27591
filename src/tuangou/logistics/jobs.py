"""Scheduled logistics work: warn, cancel overdue orders, check first scans,
handle broken cold chains, warn about performance. Every step is idempotent and safe to rerun."""

from __future__ import annotations

from typing import Any

from tuangou.core.db import UnitOfWork
from tuangou.core.jobs import JobContext
from tuangou.logistics import coldchain, flags, performance, sla


def run_due(ctx: JobContext) -> dict[str, Any]:
    def uow() -> UnitOfWork:
        return UnitOfWork(ctx.db, ctx.clock)
    return {"warned": sla.warn_due(uow()),
            "cancelled": sla.cancel_overdue(uow()), "scans": flags.check_first_scans(uow()),
            "cold_chain": coldchain.handle_excursions(uow()), "performance_warnings": performance.warn_daily(uow())}
