"""KPI tallies (grown from events since a cursor), business lines and their warning history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tuangou.core.db import Base, UTCDateTime

BIG = BigInteger().with_variant(Integer, "sqlite")


class EventCursor(Base):
    """How far a consumer of the outbox has read (the id of the last event folded in)."""

    __tablename__ = "event_cursors"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(BIG, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class KpiTally(Base):
    """Running totals of one business line (scope `line`, key `category/city`) or merchant (`merchant`, id)."""

    __tablename__ = "kpi_tallies"

    scope: Mapped[str] = mapped_column(String(12), primary_key=True)
    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    placed: Mapped[int] = mapped_column(BIG, default=0)
    paid: Mapped[int] = mapped_column(BIG, default=0)
    paid_cents: Mapped[int] = mapped_column(BIG, default=0)
    refunded_cents: Mapped[int] = mapped_column(BIG, default=0)
    disputes: Mapped[int] = mapped_column(BIG, default=0)
    disputes_confirmed: Mapped[int] = mapped_column(BIG, default=0)
    compensation_cents: Mapped[int] = mapped_column(BIG, default=0)
    recovered_cents: Mapped[int] = mapped_column(BIG, default=0)
    incidents: Mapped[int] = mapped_column(BIG, default=0)
    formed: Mapped[int] = mapped_column(BIG, default=0)
    failed: Mapped[int] = mapped_column(BIG, default=0)
    delivered: Mapped[int] = mapped_column(BIG, default=0)
    delivered_on_time: Mapped[int] = mapped_column(BIG, default=0)
    temp_readings: Mapped[int] = mapped_column(BIG, default=0)
    temp_ok: Mapped[int] = mapped_column(BIG, default=0)


class DealLine(Base):
    """Which business line and merchant a deal's events count for (resolved once per deal)."""

    __tablename__ = "kpi_deal_lines"

    deal_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(Integer)
    category: Mapped[str] = mapped_column(String(24))
    city: Mapped[str] = mapped_column(String(60))


class BusinessLine(Base):
    """A (category, city) line's last judged level and whether it is paused."""

    __tablename__ = "business_lines"

    category: Mapped[str] = mapped_column(String(24), primary_key=True)
    city: Mapped[str] = mapped_column(String(60), primary_key=True)
    level: Mapped[int] = mapped_column(Integer, default=0)  # rules.Level
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    resumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    resume_reason: Mapped[str] = mapped_column(Text, default="")
    judgement: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_business_lines_paused", "paused"),)


class LineTransition(Base):
    """Every change of a line's level, pause or resume, with what it set off."""

    __tablename__ = "line_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    category: Mapped[str] = mapped_column(String(24))
    city: Mapped[str] = mapped_column(String(60))
    from_level: Mapped[int] = mapped_column(Integer)
    to_level: Mapped[int] = mapped_column(Integer)
    actions: Mapped[list[str]] = mapped_column(JSON, default=list)
    judgement: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    actor_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: the KPI job
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_line_transitions_line", "category", "city", "id"),)


class CheckTask(Base):
    """An automatic check task for ops, opened when a line turns yellow (or worse)."""

    __tablename__ = "kpi_check_tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    category: Mapped[str] = mapped_column(String(24))
    city: Mapped[str] = mapped_column(String(60))
    transition_id: Mapped[int] = mapped_column(Integer, unique=True)  # one task per transition
    kpi: Mapped[str] = mapped_column(String(40), default="")
    status: Mapped[str] = mapped_column(String(12), default="open")  # open | done
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WorkerHeartbeat(Base):
    """Each worker's last tick and how long each job took in it (for /readyz and /metrics)."""

    __tablename__ = "worker_heartbeats"

    holder: Mapped[str] = mapped_column(String(64), primary_key=True)
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime())
    job_seconds: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
