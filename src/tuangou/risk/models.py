from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tuangou.core.db import Base, UTCDateTime


class RiskCounter(Base):
    """One window counter per signal value (scope + keyed hash): never one row for everybody.

    The current fixed window and the one before it (docs/adr/0015): the sliding count is
    `n + prev_n x the share of the previous window still inside the sliding one`."""

    __tablename__ = "risk_counters"

    scope: Mapped[str] = mapped_column(String(8), primary_key=True)  # buyer, device, ip, address, phone, payment
    key: Mapped[str] = mapped_column(String(24), primary_key=True)
    win: Mapped[int] = mapped_column(Integer)  # the current window's number (epoch seconds // window)
    n: Mapped[int] = mapped_column(Integer)  # orders in the current window
    prev_n: Mapped[int] = mapped_column(Integer)  # orders in the previous window
    units: Mapped[int] = mapped_column(Integer)  # units reserved in the current window
    prev_units: Mapped[int] = mapped_column(Integer)
    accts: Mapped[str] = mapped_column(Text)  # ",3,7,9,": the accounts seen in the current window
    prev_accts: Mapped[int] = mapped_column(Integer)  # how many accounts the previous window saw

    # SQLite: the row lives in its primary key's B-tree (one B-tree written per upsert, not a rowid table + index)
    __table_args__ = {"sqlite_with_rowid": False}


class RiskCase(Base):
    """Something a rule saw, waiting for (or decided by) ops."""

    __tablename__ = "risk_cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ref: Mapped[str] = mapped_column(String(64), unique=True)  # order:12, abuse:buyer:7, funnel:device:ab12…
    kind: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(16))
    order_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    buyer_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    merchant_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    hits: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # [{"rule": …, "words": …}]
    outcome: Mapped[str | None] = mapped_column(String(24), nullable=True)
    decided_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    decision_note: Mapped[str] = mapped_column(Text, default="")
    effects: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (Index("ix_risk_cases_status", "status", "id"),)


class RiskQuestion(Base):
    """"Did you place this order?" asked of the buyer of a held order; the answer is evidence."""

    __tablename__ = "risk_questions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(Integer, unique=True)
    order_id: Mapped[int] = mapped_column(Integer)
    buyer_id: Mapped[int] = mapped_column(Integer, index=True)
    text: Mapped[str] = mapped_column(String(200))
    answer: Mapped[str | None] = mapped_column(String(8), nullable=True)  # yes / no
    note: Mapped[str] = mapped_column(Text, default="")
    asked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class MerchantLink(Base):
    """A device, address, payment account or buyer account that belongs to a merchant (declared by the
    merchant, added by ops, or learnt from a confirmed case): orders through it on the merchant's
    own deals are brushing suspects."""

    __tablename__ = "risk_merchant_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # device, address, payment, staff
    value_h: Mapped[str] = mapped_column(String(24))
    source: Mapped[str] = mapped_column(String(16))  # merchant, ops, case
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("merchant_id", "kind", "value_h"),
                      Index("ix_risk_links_merchant_value", "merchant_id", "value_h"))
