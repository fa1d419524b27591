"""Scheduled accountability work: the monthly case report and limits that lifted by the clock."""

from __future__ import annotations

from typing import Any

from tuangou.core.db import UnitOfWork
from tuangou.core.jobs import JobContext
from tuangou.merchants import casework, service


def run_due(ctx: JobContext) -> dict[str, Any]:
    return {"case_report": casework.build_due_report(UnitOfWork(ctx.db, ctx.clock)),
            "limits_lifted": service.refresh_due(UnitOfWork(ctx.db, ctx.clock))}
