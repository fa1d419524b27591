"""Relay the outbox to webhook deliveries and send what is due."""

from __future__ import annotations

from typing import Any

from tuangou.core.db import UnitOfWork
from tuangou.core.jobs import JobContext
from tuangou.notify import phone, service


def run_due(ctx: JobContext) -> dict[str, Any]:
    uow = UnitOfWork(ctx.db, ctx.clock)
    relayed = service.relay_outbox(uow)
    sent = service.deliver_due(uow, ctx.extras["http"], ctx.settings.webhook_max_attempts,
                               allow=ctx.settings.webhook_allowed(),
                               resolve=ctx.extras.get("resolve", service.resolve_host))
    queued = phone.route_new(uow)
    texts = phone.deliver_due(uow, ctx.extras.get("phone_channels", {}))
    return {"relayed": relayed, **sent, "phone_queued": queued, **{f"phone_{k}": v for k, v in texts.items()}}
