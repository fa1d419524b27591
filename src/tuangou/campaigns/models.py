from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tuangou.core.db import Base, UTCDateTime


class Campaign(Base):
    """A group-buy (成团) sold through one goods deal; the counters move only by conditional UPDATEs."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id"), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    pickup_point: Mapped[str] = mapped_column(String(200))
    leader_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    supplier_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    pool_id: Mapped[int | None] = mapped_column(ForeignKey("stock_pools.id"), nullable=True)
    threshold: Mapped[int] = mapped_column(Integer)
    max_size: Mapped[int] = mapped_column(Integer)
    close_on_threshold: Mapped[bool] = mapped_column(default=True)
    price_tiers: Mapped[list[Any]] = mapped_column(JSON, default=list)
    leader_commission_cents: Mapped[int] = mapped_column(Integer, default=0)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    delivery_at: Mapped[datetime] = mapped_column(UTCDateTime())
    cutoff_at: Mapped[datetime] = mapped_column(UTCDateTime())
    cold_chain: Mapped[bool] = mapped_column(default=False)
    cold_chain_booking: Mapped[str] = mapped_column(String(120), default="")
    cold_chain_booked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    cold_chain_alerted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    joined_count: Mapped[int] = mapped_column(Integer, default=0)
    paid_count: Mapped[int] = mapped_column(Integer, default=0)
    entry_closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    sla_alerted_for: Mapped[str] = mapped_column(String(16), default="")  # the status whose SLA was missed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    formed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    procuring_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    shipping_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # the unit price the group reached when entry closed (price tiers only): what every member pays in the end
    final_price_cents: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    cancel_reason: Mapped[str] = mapped_column(String(500), default="")
    responsible_party: Mapped[str] = mapped_column(String(16), default="")  # supplier | merchant, when cancelled

    __table_args__ = (Index("ix_campaigns_status_deadline", "status", "deadline"),
                      CheckConstraint("joined_count <= max_size", name="joined_within_max"),
                      CheckConstraint("joined_count >= 0", name="joined_nonneg"))


class CampaignMember(Base):
    """One buyer in one campaign: the unique pair is what makes a buyer join once."""

    __tablename__ = "campaign_members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    buyer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), unique=True)
    quantity: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime())
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    collected_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # when the member's price was brought down to the campaign's final tier (the difference refunded)
    price_settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (UniqueConstraint("campaign_id", "buyer_id"),
                      Index("ix_campaign_members_status", "campaign_id", "status"))


class PurchaseList(Base):
    """What the supplier must deliver; unique per campaign, so a campaign emits exactly one."""

    __tablename__ = "purchase_lists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), unique=True)
    merchant_id: Mapped[int] = mapped_column(Integer, index=True)
    supplier_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    lines: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StockPool(Base):
    """Stock several campaigns sell from; `used + q <= capacity` in one UPDATE is the only way to draw."""

    __tablename__ = "stock_pools"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    capacity: Mapped[int] = mapped_column(Integer)
    used: Mapped[int] = mapped_column(Integer, default=0)
    safe_stock: Mapped[int] = mapped_column(Integer, default=0)
    warned_level: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (CheckConstraint("used >= 0", name="used_nonneg"),
                      CheckConstraint("used <= capacity", name="used_within_capacity"))
