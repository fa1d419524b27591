"""What /readyz and /metrics read: worker heartbeats, outbox backlog, migration head, platform tallies."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import redis
from sqlalchemy import func, select, text, update

from tuangou.core import migrate
from tuangou.core.db import UnitOfWork, insert_ignore
from tuangou.core.outbox import OutboxEvent
from tuangou.monitoring import rules
from tuangou.monitoring.models import BusinessLine, KpiTally, WorkerHeartbeat

HEARTBEAT_MAX_AGE = timedelta(seconds=60)
OUTBOX_MAX_AGE = timedelta(minutes=5)


def beat(uow: UnitOfWork, holder: str, job_seconds: dict[str, float]) -> None:
    """The worker is alive: its last tick time and how long each job took."""
    with uow:
        values = {"beat_at": uow.now, "job_seconds": job_seconds}
        if not insert_ignore(uow.session, WorkerHeartbeat.__table__, {"holder": holder, **values}, ["holder"]):
            uow.session.execute(update(WorkerHeartbeat).where(WorkerHeartbeat.holder == holder).values(**values))
        uow.commit()


def _outbox(uow: UnitOfWork) -> tuple[int, float]:
    backlog, oldest = uow.session.execute(select(func.count(), func.min(OutboxEvent.occurred_at))
                                          .where(OutboxEvent.relayed_at.is_(None))).one()
    age = (uow.now - oldest).total_seconds() if oldest is not None else 0.0
    return int(backlog), max(0.0, age)


def readiness(uow: UnitOfWork, redis_url: str | None, worker_expected: bool) -> tuple[bool, dict[str, Any]]:
    """Every check with its verdict; ready only when all pass."""
    checks: dict[str, Any] = {}
    try:
        with uow:
            uow.session.execute(text("SELECT 1"))
            checks["database"] = {"ok": True}
            current = set(uow.session.execute(text("SELECT version_num FROM alembic_version")).scalars())
            heads = migrate.heads()
            checks["migrations"] = {"ok": current == heads, "current": sorted(current), "heads": sorted(heads)}
            beat_at = uow.session.scalar(select(func.max(WorkerHeartbeat.beat_at)))
            age = (uow.now - beat_at).total_seconds() if beat_at is not None else None
            checks["worker"] = {"ok": (not worker_expected) or (age is not None and
                                                                age <= HEARTBEAT_MAX_AGE.total_seconds()),
                                "heartbeat_age_s": age}
            backlog, outbox_age = _outbox(uow)
            checks["outbox"] = {"ok": outbox_age <= OUTBOX_MAX_AGE.total_seconds(), "backlog": backlog,
                                "oldest_age_s": round(outbox_age, 1)}
    except Exception as exc:  # a readiness probe reports, it never raises
        checks.setdefault("database", {"ok": False, "error": type(exc).__name__})
        checks.setdefault("migrations", {"ok": False, "error": str(exc).splitlines()[0][:200]})
    if redis_url:
        checks["redis"] = _redis(redis_url)
    return all(c.get("ok") for c in checks.values()), checks


def _redis(url: str) -> dict[str, Any]:
    try:
        redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).ping()
        return {"ok": True}
    except redis.RedisError as exc:
        return {"ok": False, "error": type(exc).__name__}


def snapshot(uow: UnitOfWork) -> dict[str, Any]:
    """Platform-wide figures for /metrics, read from the tallies (one row each), not from the orders."""
    with uow:
        platform = uow.session.get(KpiTally, ("all", "*"))
        tiers = {t.key: int(t.disputes_confirmed) for t in
                 uow.session.scalars(select(KpiTally).where(KpiTally.scope == "tier"))}
        levels = dict(uow.session.execute(select(BusinessLine.level, func.count()).group_by(BusinessLine.level)).all())
        paused = int(uow.session.scalar(select(func.count()).where(BusinessLine.paused.is_(True))) or 0)
        backlog, outbox_age = _outbox(uow)
        beats = [(h.holder, h.beat_at, dict(h.job_seconds or {})) for h in uow.session.scalars(select(WorkerHeartbeat))]
        tally = {name: int(getattr(platform, name) or 0) for name in rules.TALLY_FIELDS} if platform else {
            name: 0 for name in rules.TALLY_FIELDS}
        return {"tally": tally, "disputes_by_tier": tiers, "outbox_backlog": backlog, "outbox_age_s": outbox_age,
                "lines_by_level": {rules.LEVEL_NAMES[rules.Level(k)]: int(v) for k, v in levels.items()},
                "lines_paused": paused,
                "workers": [{"holder": h, "age_s": max(0.0, (uow.now - at).total_seconds()), "jobs": j}
                            for h, at, j in beats]}
