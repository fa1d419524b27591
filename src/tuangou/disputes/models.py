from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tuangou.core.db import Base, UTCDateTime


class Dispute(Base):
    __tablename__ = "disputes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(Integer, index=True)
    # set while undecided, NULL after: the unique index allows one undecided dispute per order
    open_order_id: Mapped[int | None] = mapped_column(Integer, nullable=True, unique=True)
    # set when a confirmed remedy refunded the order: unique, so an order is never refunded by two disputes
    refunded_order_id: Mapped[int | None] = mapped_column(Integer, nullable=True, unique=True)
    buyer_id: Mapped[int] = mapped_column(Integer, index=True)
    merchant_id: Mapped[int] = mapped_column(Integer, index=True)
    store_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    tier: Mapped[str] = mapped_column(String(16))
    late_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    opened_by: Mapped[int] = mapped_column(Integer)
    opened_role: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text, default="")
    oversale: Mapped[bool] = mapped_column(default=False)
    incident_ref: Mapped[str] = mapped_column(String(64), default="")
    respond_by: Mapped[datetime] = mapped_column(UTCDateTime())
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    remedy: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # where it was opened from, as keyed hashes (orders/signals.py): device, ip — risk's evidence
    signals: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    __table_args__ = (Index("ix_disputes_status_respond_by", "status", "respond_by"),)


class DisputeEvent(Base):
    """The full history of a dispute: who did what, when, with which evidence."""

    __tablename__ = "dispute_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dispute_id: Mapped[int] = mapped_column(Integer, index=True)
    action: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor_role: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class Coupon(Base):
    __tablename__ = "coupons"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(24), unique=True)
    buyer_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[int] = mapped_column(Integer)  # cents (amount) or basis points (percent)
    cap_cents: Mapped[int | None] = mapped_column(Integer, nullable=True)
    threshold_cents: Mapped[int] = mapped_column(Integer, default=0)
    origin: Mapped[str] = mapped_column(String(16))
    merchant_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # only valid there when set
    liable_merchant_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # who repays it
    reason: Mapped[str] = mapped_column(String(200), default="")
    # kind "item" only: what the merchant serves for free (value is its cost in cents)
    item: Mapped[str | None] = mapped_column(String(100), nullable=True)
    ref: Mapped[str] = mapped_column(String(64))  # what caused it: dispute:7, oversale:12, stack:3
    status: Mapped[str] = mapped_column(String(16))
    order_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    discount_cents: Mapped[int] = mapped_column(Integer, default=0)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime())
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (UniqueConstraint("ref", "buyer_id", "kind"),
                      Index("ix_coupons_buyer_status", "buyer_id", "status"),
                      Index("ix_coupons_order", "order_id"),
                      CheckConstraint("value > 0", name="value_positive"))


class StackRequest(Base):
    """A buyer's application for a stacked compensation package; one per dispute."""

    __tablename__ = "coupon_stack_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dispute_id: Mapped[int] = mapped_column(Integer, unique=True)
    buyer_id: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16))
    decided_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class RecoveryClaim(Base):
    """What the platform paid first and takes back from a merchant (deposit or next settlement)."""

    __tablename__ = "recovery_claims"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ref: Mapped[str] = mapped_column(String(64), unique=True)  # dispute:7 or coupon:12
    merchant_id: Mapped[int] = mapped_column(Integer, index=True)
    dispute_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    booked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recovered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AfterSalesTicket(Base):
    __tablename__ = "after_sales_tickets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(Integer, index=True)
    buyer_id: Mapped[int] = mapped_column(Integer, index=True)
    merchant_id: Mapped[int] = mapped_column(Integer, index=True)
    description: Mapped[str] = mapped_column(Text)
    photos: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    proposals: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    chosen: Mapped[int | None] = mapped_column(Integer, nullable=True)  # index into proposals
    status: Mapped[str] = mapped_column(String(16))
    decided_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class CompensationPause(Base):
    """A buyer whose compensation is paused (confirmed abuse): upheld disputes still refund what was
    paid, but the platform adds no coupons on top until ops lift the pause."""

    __tablename__ = "compensation_pauses"

    buyer_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reason: Mapped[str] = mapped_column(String(200))
    ref: Mapped[str] = mapped_column(String(64))  # what decided it: risk case:12
    paused_at: Mapped[datetime] = mapped_column(UTCDateTime())
