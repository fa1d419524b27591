"""The scheduler: every capability's `jobs.run_due(ctx)`, each under a database lease."""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from tuangou.core.clock import Clock
from tuangou.core.config import Settings
from tuangou.core.db import Database, UnitOfWork
from tuangou.core.leases import try_acquire
from tuangou.core.observability import request_id
from tuangou.core.registry import job_modules

log = logging.getLogger("tuangou.jobs")
LEASE = timedelta(seconds=30)


@dataclass
class JobContext:
    db: Database
    clock: Clock
    settings: Settings
    extras: dict[str, Any] = field(default_factory=dict)
    holder: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    durations: dict[str, float] = field(default_factory=dict)  # job -> seconds of its last run (for /metrics)


def run_all(ctx: JobContext, only: list[str] | None = None) -> dict[str, Any]:
    """One tick of every job (or `only` these capabilities). Each job is idempotent;
    the lease only saves work when several workers run.

    A jobs module may also define `run_first(ctx)`: it runs at the start of every tick, whatever `only`
    says, before any `run_due` (orders announce the events the outbox relay and the KPI fold read)."""
    results: dict[str, Any] = {}
    modules = job_modules()
    for module in modules:
        first = getattr(module, "run_first", None)
        if first is not None:
            _run_one(ctx, f"{_name(module)}.first", first, results)
    for module in modules:
        name = _name(module)
        if not only or name in only:
            _run_one(ctx, name, module.run_due, results)
    return results


def _name(module: Any) -> str:
    return str(module.__name__.split(".")[1])


def _run_one(ctx: JobContext, name: str, job: Any, results: dict[str, Any]) -> None:
    uow = UnitOfWork(ctx.db, ctx.clock)
    with uow:
        if not try_acquire(uow.session, f"job:{name}", ctx.holder, uow.now, LEASE):
            return
        uow.commit()
    started = time.perf_counter()
    token = request_id.set(f"job-{name}-{os.urandom(4).hex()}")  # log lines of one job run share an id
    try:
        results[name] = job(ctx)
    except Exception:  # one failing job must not stop the others
        log.exception("job %s failed", name)
        results[name] = "failed"
    finally:
        request_id.reset(token)
    ctx.durations[name] = round(time.perf_counter() - started, 4)
