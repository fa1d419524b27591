"""Scheduled risk work: the after-the-fact rules (compensation abuse, coupon funnels)."""

from __future__ import annotations

from typing import Any

from tuangou.core.db import UnitOfWork
from tuangou.core.jobs import JobContext
from tuangou.risk import detect

SCAN_EVERY_S = 60  # the scans read a lookback of orders, disputes and coupons: not every second
_last: dict[str, float] = {}


def run_due(ctx: JobContext) -> dict[str, Any]:
    now = ctx.clock.now().timestamp()
    last = _last.get(ctx.db.url)
    if last is not None and 0 <= now - last < SCAN_EVERY_S:
        return {"skipped": True}
    _last[ctx.db.url] = now
    return detect.scan(UnitOfWork(ctx.db, ctx.clock))
