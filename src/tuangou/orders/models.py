from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from tuangou.core.db import Base, UTCDateTime


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    buyer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id"))
    merchant_id: Mapped[int] = mapped_column(Integer, index=True)
    store_id: Mapped[int] = mapped_column(Integer)
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(Integer)
    amount_cents: Mapped[int] = mapped_column(Integer)
    service_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    slot: Mapped[str | None] = mapped_column(String(16), nullable=True)
    buckets: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str] = mapped_column(String(128))
    fingerprint: Mapped[str] = mapped_column(String(32))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Which attempt to pay this order is current: its gateway key is rules.payment_key(id, pay_attempt).
    # Only a recorded decline moves it on, so at most one charge can ever succeed per order.
    pay_attempt: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # How much of its hot-path life the order has announced as events (rules.Announced): the row is the
    # outbox of OrderPlaced and OrderPaid, so placing and paying write no event rows (docs/adr/0010).
    announced: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    # Risk signals as keyed hashes (orders/signals.py): only ever matched, so the raw values are not kept.
    # Device, address and payment account link accounts in a review's evidence graph: indexed where present
    # (partial indexes: an order without one writes no index entry on the hot path).
    device_h: Mapped[str | None] = mapped_column(String(24), nullable=True)
    ip_h: Mapped[str | None] = mapped_column(String(24), nullable=True)
    address_h: Mapped[str | None] = mapped_column(String(24), nullable=True)
    phone_h: Mapped[str | None] = mapped_column(String(24), nullable=True)
    payment_h: Mapped[str | None] = mapped_column(String(24), nullable=True)

    __table_args__ = (UniqueConstraint("buyer_id", "idempotency_key"),
                      Index("ix_orders_unannounced", "announced", "id", sqlite_where=text("announced < 2"),
                            postgresql_where=text("announced < 2")),
                      Index("ix_orders_status_expires", "status", "expires_at"),
                      Index("ix_orders_deal_date", "deal_id", "service_date"),
                      Index("ix_orders_buyer", "buyer_id", "id"),
                      *[Index(f"ix_orders_{c}", c, sqlite_where=text(f"{c} IS NOT NULL"),
                              postgresql_where=text(f"{c} IS NOT NULL")) for c in ("device_h", "address_h", "payment_h")],
                      CheckConstraint("quantity > 0", name="quantity_positive"))


class BuyerDealCount(Base):
    """Units a buyer holds of a deal (reserved or paid, not refunded): the per-buyer limit."""

    __tablename__ = "buyer_deal_counts"

    deal_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    buyer_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    qty: Mapped[int] = mapped_column(Integer)

    __table_args__ = (CheckConstraint("qty >= 0", name="qty_nonneg"),)


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)  # sent to the gateway: its idempotency key
    client_key: Mapped[str] = mapped_column(String(128))
    amount_cents: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    gateway_ref: Mapped[str] = mapped_column(String(64), default="")
    message: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    # At most one payment in flight per order: a double click can never charge twice.
    __table_args__ = (UniqueConstraint("order_id", "client_key"),
                      Index("uq_payments_in_flight", "order_id", unique=True,
                            sqlite_where=text("status IN ('pending', 'unknown')"),
                            postgresql_where=text("status IN ('pending', 'unknown')")))


class Voucher(Base):
    __tablename__ = "vouchers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    deal_id: Mapped[int] = mapped_column(Integer)
    merchant_id: Mapped[int] = mapped_column(Integer, index=True)
    buyer_id: Mapped[int] = mapped_column(Integer, index=True)
    price_cents: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    redeemed_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Refund(Base):
    """Money owed back to a buyer; the worker pushes it through the gateway until it succeeds."""

    __tablename__ = "refunds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)  # one refund per cause, never two
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    buyer_id: Mapped[int] = mapped_column(Integer)
    amount_cents: Mapped[int] = mapped_column(Integer)
    charge_ref: Mapped[str] = mapped_column(String(64), default="")
    reason: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_error: Mapped[str] = mapped_column(String(200), default="")
    gateway_ref: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (Index("ix_refunds_due", "status", "next_attempt_at"),)


class Redating(Base):
    """A change of a booked order's service date (预约改期): offered in advance by governance (the buyer picks
    a date in the window and it applies at once), or proposed by the buyer and decided by the merchant."""

    __tablename__ = "order_redatings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    buyer_id: Mapped[int] = mapped_column(Integer)
    merchant_id: Mapped[int] = mapped_column(Integer)
    deal_id: Mapped[int] = mapped_column(Integer)
    origin: Mapped[str] = mapped_column(String(16))  # rules.RedateOrigin
    status: Mapped[str] = mapped_column(String(16))  # rules.RedateStatus
    from_date: Mapped[date] = mapped_column(Date)
    from_slot: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    to_slot: Mapped[str | None] = mapped_column(String(16), nullable=True)
    window_first: Mapped[date] = mapped_column(Date)
    window_last: Mapped[date] = mapped_column(Date)
    units: Mapped[int] = mapped_column(Integer, default=0)  # unused vouchers moved (when applied)
    ref: Mapped[str] = mapped_column(String(64), default="")  # what agreed it in advance: incident:…, dispute:…
    reason: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decided_by: Mapped[int | None] = mapped_column(Integer, nullable=True)

    # At most one open offer or proposal per order: a newer one replaces it under the order's lock, and this
    # index refuses a second one however the writes race.
    __table_args__ = (Index("uq_order_redatings_open", "order_id", unique=True,
                            sqlite_where=text("status IN ('offered', 'proposed')"),
                            postgresql_where=text("status IN ('offered', 'proposed')")),
                      Index("ix_order_redatings_merchant", "merchant_id", "status"))
