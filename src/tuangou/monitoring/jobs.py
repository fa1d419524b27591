"""KPI tick: fold one batch of new events into the tallies, judge the lines, beat the worker's heart."""

from __future__ import annotations

from typing import Any

from tuangou.core.db import UnitOfWork
from tuangou.core.jobs import JobContext
from tuangou.monitoring import health, service


def run_due(ctx: JobContext) -> dict[str, Any]:
    uow = UnitOfWork(ctx.db, ctx.clock)
    folded = service.consume_events(uow)
    changed = service.evaluate_lines(uow)
    health.beat(uow, ctx.holder, dict(ctx.durations))
    return {"events": folded, "transitions": changed}
