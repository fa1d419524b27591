"""Scheduled order work: announce new and paid orders, expire unpaid reservations, pay out owed refunds,
reconcile payments."""

from __future__ import annotations

from typing import Any

from tuangou.core.db import UnitOfWork
from tuangou.core.jobs import JobContext
from tuangou.orders import announce, service


def run_first(ctx: JobContext) -> dict[str, Any]:
    """At the start of every tick: the events orders announce are relayed and folded later in the same tick."""
    return {"announced": announce.announce_orders(UnitOfWork(ctx.db, ctx.clock))}


def run_due(ctx: JobContext) -> dict[str, Any]:
    uow = UnitOfWork(ctx.db, ctx.clock)
    gateway = ctx.extras["payment_gateway"]
    return {"expired": service.expire_due(uow, gateway),
            "refunds": service.process_refunds(uow, gateway),
            "reconciled": service.reconcile_payments(uow, gateway)}
