from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tuangou.core.db import Base, UTCDateTime


class CapacityDeclaration(Base):
    __tablename__ = "capacity_declarations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"), unique=True)
    merchant_id: Mapped[int] = mapped_column(Integer, index=True)
    declaration: Mapped[dict[str, Any]] = mapped_column(JSON)  # rules.Declaration fields
    weekday_factors: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # "0".."6" -> factor
    holidays: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # ISO date -> factor
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DealConsumption(Base):
    """What one unit of a deal uses of each declared resource."""

    __tablename__ = "deal_consumption"

    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id"), primary_key=True)
    consumption: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CapOffer(Base):
    """The merchant's own cap for one bucket, when it differs from the deal's daily cap."""

    __tablename__ = "cap_offers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id"))
    key: Mapped[str] = mapped_column(String(40))
    cap: Mapped[int] = mapped_column(Integer)

    __table_args__ = (UniqueConstraint("deal_id", "key"),)


class CapacityAudit(Base):
    __tablename__ = "capacity_audits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id"), index=True)
    store_id: Mapped[int] = mapped_column(Integer)
    merchant_id: Mapped[int] = mapped_column(Integer, index=True)
    status: Mapped[str] = mapped_column(String(16))
    declared: Mapped[dict[str, Any]] = mapped_column(JSON)  # declaration + consumption when filed
    findings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # on-site inspection overrides
    inspection_note: Mapped[str] = mapped_column(Text, default="")
    inspected_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    approved_cap: Mapped[int | None] = mapped_column(Integer, nullable=True)
    bottleneck: Mapped[str | None] = mapped_column(String(80), nullable=True)
    requested_by: Mapped[int] = mapped_column(Integer)
    decided_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CapacityDisruption(Base):
    __tablename__ = "capacity_disruptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"))
    merchant_id: Mapped[int] = mapped_column(Integer, index=True)
    deal_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: every deal of the store
    kind: Mapped[str] = mapped_column(String(24))
    capacity_factor: Mapped[float] = mapped_column(Float, default=1.0)
    max_units: Mapped[int | None] = mapped_column(Integer, nullable=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    reported_by: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_capacity_disruptions_store_start", "store_id", "starts_at"),)


class CapacityRefresh(Base):
    """When a deal's caps next need the refresh job: time alone moves them only at the store's midnight
    (a new day enters the horizon) or when a disruption ends. Input changes recompute at once."""

    __tablename__ = "capacity_refresh"

    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id"), primary_key=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
