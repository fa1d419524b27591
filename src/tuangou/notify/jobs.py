"""Relay the outbox to webhook deliveries and send what is due."""

from __future__ import annotations

from typing import Any

from tuangou.core.db import UnitOfWork
from tuangou.core.jobs import JobContext
from tuangou.notify import service


def run_due(ctx: JobContext) -> dict[str, Any]:
    uow = UnitOfWork(ctx.db, ctx.clock)
    relayed = service.relay_outbox(uow)
    sent = service.deliver_due(uow, ctx.extras["http"], ctx.settings.webhook_max_attempts,
                               allow=ctx.settings.webhook_allowed(),
                               resolve=ctx.extras.get("resolve", service.resolve_host))
    return {"relayed": relayed, **sent}
