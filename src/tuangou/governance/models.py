from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tuangou.core.db import Base, UTCDateTime


class RedLineWarning(Base):
    """One row per warning line crossed: inserting it is what allows the warning to be sent."""

    __tablename__ = "red_line_warnings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id"))
    bucket: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))
    line: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("deal_id", "bucket", "kind", "line"),)


class ScheduledSend(Base):
    """What a scheduled push already sent: (kind, subject, period) is sent at most once."""

    __tablename__ = "governance_sends"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # suggestion | hourly
    subject_id: Mapped[int] = mapped_column(Integer)  # deal for suggestions, merchant for hourly pushes
    period: Mapped[str] = mapped_column(String(20))  # store-local date, or the UTC hour
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("kind", "subject_id", "period"),)


class OversaleIncident(Base):
    __tablename__ = "oversale_incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id"), index=True)
    merchant_id: Mapped[int] = mapped_column(Integer, index=True)
    category: Mapped[str] = mapped_column(String(24))
    bucket: Mapped[str] = mapped_column(String(40))
    cap: Mapped[int] = mapped_column(Integer)
    sold: Mapped[int] = mapped_column(Integer)  # sold when the cap fell
    over: Mapped[int] = mapped_column(Integer)
    cause: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IncidentOrder(Base):
    __tablename__ = "oversale_incident_orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("oversale_incidents.id"))
    order_id: Mapped[int] = mapped_column(Integer, index=True)
    buyer_id: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))  # postponed | refunded
    new_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    refund_cents: Mapped[int] = mapped_column(Integer, default=0)
    coupon_cents: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (UniqueConstraint("incident_id", "order_id"),)


class InventoryChangeRequest(Base):
    __tablename__ = "inventory_change_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id"), index=True)
    merchant_id: Mapped[int] = mapped_column(Integer, index=True)
    category: Mapped[str] = mapped_column(String(24))
    bucket: Mapped[str] = mapped_column(String(40))
    current_cap: Mapped[int] = mapped_column(Integer)
    requested_cap: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    evidence_name: Mapped[str] = mapped_column(String(200))
    evidence_type: Mapped[str] = mapped_column(String(100))
    evidence_sha256: Mapped[str] = mapped_column(String(64))
    evidence: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), index=True)
    requested_by: Mapped[int] = mapped_column(Integer)
    decided_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StockCount(Base):
    """A physical stock count (盘点) of a goods deal against the online stock."""

    __tablename__ = "stock_counts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id"), index=True)
    merchant_id: Mapped[int] = mapped_column(Integer)
    counted: Mapped[int] = mapped_column(Integer)
    online: Mapped[int] = mapped_column(Integer)  # stock left online (cap - sold - held) at the count
    difference: Mapped[int] = mapped_column(Integer)  # counted - online
    note: Mapped[str] = mapped_column(Text, default="")
    counted_by: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
