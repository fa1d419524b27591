"""Logistics tables: carriers, warehouses, shipping records of paid goods orders, shipments, carrier
events, verification flags, logistics exceptions, emergency plans."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from tuangou.core.db import Base, UTCDateTime


class Carrier(Base):
    """A carrier is data: its tracking-number format, expected first scan and signing secret."""

    __tablename__ = "logistics_carriers"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    tracking_pattern: Mapped[str] = mapped_column(String(200))
    first_scan_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    secret: Mapped[str] = mapped_column(String(64))  # HMAC key of its pushed events
    down: Mapped[bool] = mapped_column(Boolean, default=False)  # an accepted outage: no new parcels
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Warehouse(Base):
    __tablename__ = "logistics_warehouses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(Integer, index=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(120))
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("merchant_id", "code"),)


class WarehouseStock(Base):
    """Units of a deal a warehouse holds; taken with one conditional UPDATE, never below zero."""

    __tablename__ = "logistics_warehouse_stock"

    warehouse_id: Mapped[int] = mapped_column(ForeignKey("logistics_warehouses.id"), primary_key=True)
    deal_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    units: Mapped[int] = mapped_column(Integer)

    __table_args__ = (CheckConstraint("units >= 0", name="units_nonneg"),)


class TemperatureRange(Base):
    """The range a cold-chain product must stay in (°C)."""

    __tablename__ = "logistics_temperature_ranges"

    deal_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(Integer)
    min_c: Mapped[float] = mapped_column(Float)
    max_c: Mapped[float] = mapped_column(Float)


class EmergencyPlan(Base):
    """A merchant's plan B: the carrier to switch to and the warehouses to ship from."""

    __tablename__ = "logistics_emergency_plans"

    merchant_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    backup_carrier: Mapped[str | None] = mapped_column(String(32), nullable=True)
    backup_warehouse_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ShippingOrder(Base):
    """A paid goods order's shipping obligation: the SLA clock, units shipped, outcome."""

    __tablename__ = "logistics_orders"

    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    merchant_id: Mapped[int] = mapped_column(Integer)
    buyer_id: Mapped[int] = mapped_column(Integer)
    deal_id: Mapped[int] = mapped_column(Integer)
    category: Mapped[str] = mapped_column(String(24))
    quantity: Mapped[int] = mapped_column(Integer)
    amount_cents: Mapped[int] = mapped_column(Integer)
    paid_at: Mapped[datetime] = mapped_column(UTCDateTime())
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    warn_at: Mapped[datetime] = mapped_column(UTCDateTime())
    warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    paused_minutes: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20))
    shipped_units: Mapped[int] = mapped_column(Integer, default=0)
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    compensation_cents: Mapped[int] = mapped_column(Integer, default=0)
    defect: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (Index("ix_logistics_orders_due", "status", "due_at"),
                      Index("ix_logistics_orders_warn", "status", "warn_at"),
                      Index("ix_logistics_orders_merchant", "merchant_id", "paid_at"),
                      CheckConstraint("shipped_units >= 0 AND shipped_units <= quantity", name="units_in_order"))


class Shipment(Base):
    __tablename__ = "logistics_shipments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(Integer, index=True)
    merchant_id: Mapped[int] = mapped_column(Integer, index=True)
    buyer_id: Mapped[int] = mapped_column(Integer)
    deal_id: Mapped[int] = mapped_column(Integer)
    carrier: Mapped[str] = mapped_column(String(32))
    tracking_number: Mapped[str | None] = mapped_column(String(64), nullable=True)
    units: Mapped[int] = mapped_column(Integer)
    warehouse_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    service: Mapped[str] = mapped_column(String(16), default="standard")  # or "express" (an upgrade)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    labelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    scan_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    scan_checked: Mapped[bool] = mapped_column(Boolean, default=False)
    first_scan_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    first_scan_lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    first_scan_lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    excursion_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    exception_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    temp_min_c: Mapped[float | None] = mapped_column(Float, nullable=True)
    temp_max_c: Mapped[float | None] = mapped_column(Float, nullable=True)
    replaces_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str] = mapped_column(String(40), default="")  # why a replacement exists
    buyer_choice: Mapped[str | None] = mapped_column(String(16), nullable=True)

    __table_args__ = (Index("ix_logistics_shipments_tracking", "carrier", "tracking_number"),
                      Index("ix_logistics_shipments_scan", "scan_checked", "scan_due_at"),
                      # scanned but not yet checked: the first-scan check reads only those (0840)
                      Index("ix_logistics_shipments_scanned", "scan_checked", "first_scan_at"),
                      Index("ix_logistics_shipments_status", "status", "carrier"),
                      CheckConstraint("units > 0", name="units_positive"))


class TrackingEvent(Base):
    """One carrier event, stored once per (carrier, tracking number, event id) whoever pushes it."""

    __tablename__ = "logistics_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    carrier: Mapped[str] = mapped_column(String(32))
    tracking_number: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    temperature_c: Mapped[float | None] = mapped_column(Float, nullable=True)
    location: Mapped[str] = mapped_column(String(120), default="")
    detail: Mapped[str] = mapped_column(String(300), default="")

    __table_args__ = (UniqueConstraint("carrier", "tracking_number", "event_id"),)


class Flag(Base):
    """A suspected fake shipment, explained, waiting for ops."""

    __tablename__ = "logistics_flags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shipment_id: Mapped[int] = mapped_column(Integer)
    order_id: Mapped[int] = mapped_column(Integer)
    merchant_id: Mapped[int] = mapped_column(Integer, index=True)
    kind: Mapped[str] = mapped_column(String(24))
    explanation: Mapped[str] = mapped_column(String(500))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decided_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    decision_reason: Mapped[str] = mapped_column(String(500), default="")

    __table_args__ = (UniqueConstraint("shipment_id", "kind"),)


class LogisticsException(Base):
    """A reported failure (weather, carrier outage, road closure) that may pause the SLA clock."""

    __tablename__ = "logistics_exceptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    merchant_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    carrier: Mapped[str | None] = mapped_column(String(32), nullable=True)
    kind: Mapped[str] = mapped_column(String(24))
    description: Mapped[str] = mapped_column(String(2000))
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    order_ids: Mapped[list[int]] = mapped_column(JSON)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    until: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), index=True)
    paused_minutes: Mapped[int] = mapped_column(Integer, default=0)
    reported_by: Mapped[int] = mapped_column(Integer)
    reporter_role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decided_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    decision_reason: Mapped[str] = mapped_column(String(500), default="")


class Watermark(Base):
    """A named mark (the day's performance warnings were sent; a row once written by the retired
    paid-order scan is left alone)."""

    __tablename__ = "logistics_watermarks"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class PerformanceWarning(Base):
    """One warning per merchant, metric, window and day: crossing a target is said once a day."""

    __tablename__ = "logistics_performance_warnings"

    merchant_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    metric: Mapped[str] = mapped_column(String(40), primary_key=True)
    days: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    rate_bps: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
