"""The worker: relays the outbox and runs every capability's scheduled ticks."""

from __future__ import annotations

import logging
import threading
from typing import Any

import httpx

from tuangou.composition import compose
from tuangou.core.clock import Clock
from tuangou.core.config import Settings
from tuangou.core.db import Database
from tuangou.core.jobs import JobContext, run_all

log = logging.getLogger("tuangou.worker")


def job_context(settings: Settings, db: Database, clock: Clock, gateway: Any, extras: dict[str, Any]) -> JobContext:
    compose(settings.redis_url, settings.risk_checks)
    merged = {"payment_gateway": gateway, **extras}
    merged.setdefault("http", httpx.Client(timeout=settings.webhook_timeout_seconds))
    merged.setdefault("phone_channels", phone_channels(settings, merged["http"]))
    return JobContext(db=db, clock=clock, settings=settings, extras=merged)


def phone_channels(settings: Settings, http: httpx.Client) -> dict[str, Any]:
    """The phone channels by name: real adapters where configured, the sandbox otherwise (demo, tests)."""
    from tuangou.notify.channels import HttpChannel, SandboxChannel, WeChatTemplateChannel
    return {
        "sms": HttpChannel(http, settings.sms_gateway_url, settings.secret_key) if settings.sms_gateway_url
        else SandboxChannel(),
        "wechat": WeChatTemplateChannel(http, settings.wechat_template_url, settings.wechat_template_id)
        if settings.wechat_template_url else SandboxChannel(),
        "http": HttpChannel(http),  # the user's own push URL
    }


class Worker:
    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx

    def tick(self) -> dict[str, Any]:
        return run_all(self.ctx)

    def loop(self, stop: threading.Event) -> None:
        log.info("worker started")
        while not stop.is_set():
            try:
                self.tick()
            except Exception:  # keep going: every job is safe to rerun
                log.exception("worker tick failed")
            stop.wait(self.ctx.settings.worker_interval_seconds)
