"""The 08:00 stock suggestion and the hourly sales push; each send is claimed once, so reruns send nothing."""

from __future__ import annotations

from typing import Any

from tuangou.core.db import UnitOfWork
from tuangou.core.jobs import JobContext
from tuangou.governance import pushes


def run_due(ctx: JobContext) -> dict[str, Any]:
    return {"suggestions": pushes.send_daily_suggestions(UnitOfWork(ctx.db, ctx.clock)),
            "hourly_pushes": pushes.send_hourly_pushes(UnitOfWork(ctx.db, ctx.clock))}
