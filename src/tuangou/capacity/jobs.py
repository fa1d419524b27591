"""Keep upcoming daily caps in line with factors and disruptions; safe to run twice."""

from __future__ import annotations

from typing import Any

from tuangou.capacity import service
from tuangou.core.db import UnitOfWork
from tuangou.core.jobs import JobContext


def run_due(ctx: JobContext) -> dict[str, Any]:
    return {"tripped": service.refresh_daily_caps(UnitOfWork(ctx.db, ctx.clock))}
