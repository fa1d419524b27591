from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tuangou.core.db import Base, UTCDateTime


class Violation(Base):
    """One confirmed violation; (merchant, kind, ref) is unique so nothing is punished twice."""

    __tablename__ = "merchant_violations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    category: Mapped[str] = mapped_column(String(24))
    kind: Mapped[str] = mapped_column(String(24))
    ref: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text, default="")
    points: Mapped[int] = mapped_column(Integer)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    void_reason: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (UniqueConstraint("merchant_id", "kind", "ref"),
                      Index("ix_merchant_violations_recorded_at", "recorded_at"))


class MerchantStanding(Base):
    """The replayed standing, kept for the order path and the listings (one row per merchant)."""

    __tablename__ = "merchant_standings"

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), primary_key=True)
    scores: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    limited: Mapped[bool] = mapped_column(Boolean, default=False)
    limited_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    lift_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IntakeCounter(Base):
    """Orders a merchant took on one store-local date; moved with one conditional upsert."""

    __tablename__ = "merchant_intake_counters"

    merchant_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    orders: Mapped[int] = mapped_column(Integer, default=0)


class IntakeHold(Base):
    """Which order took a unit of which day's intake: deleting the row gives the unit back, so an order that
    ends unpaid (expired, cancelled) releases its unit exactly once however often its end is processed."""

    __tablename__ = "merchant_intake_holds"

    order_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(Integer)
    day: Mapped[str] = mapped_column(String(10))


class Penalty(Base):
    __tablename__ = "merchant_penalties"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    rule: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str] = mapped_column(Text)
    violation_id: Mapped[int | None] = mapped_column(ForeignKey("merchant_violations.id"), nullable=True)
    amount_cents: Mapped[int] = mapped_column(Integer, default=0)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    lift_reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Appeal(Base):
    __tablename__ = "merchant_appeals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    target: Mapped[str] = mapped_column(String(40), unique=True)  # "violation:7" or "penalty:3"
    statement: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    decided_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AppealEvidence(Base):
    """An uploaded file; the bytes live in the database next to their sha256."""

    __tablename__ = "merchant_appeal_evidence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("merchant_appeals.id"), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ExamQuestion(Base):
    __tablename__ = "exam_questions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    options: Mapped[list[str]] = mapped_column(JSON)
    correct_index: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    language: Mapped[str] = mapped_column(String(8), default="zh-CN")  # "zh-CN" or "en"
    seed_key: Mapped[str | None] = mapped_column(String(40), nullable=True, unique=True)  # shipped questions


class ExamAttempt(Base):
    """A paper drawn for a merchant, then graded once against the questions it drew (`submitted_at`)."""

    __tablename__ = "exam_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    user_id: Mapped[int] = mapped_column(Integer)
    answers: Mapped[dict[str, Any]] = mapped_column(JSON)
    correct: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)
    passed: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UTCDateTime())  # drawn, then the time of the result
    question_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    language: Mapped[str] = mapped_column(String(8), default="zh-CN")
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)  # None: still open


class CaseReport(Base):
    """The monthly anonymised case report; the month is the key, so building it twice is a no-op."""

    __tablename__ = "merchant_case_reports"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    markdown: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DepositTopUp(Base):
    """A merchant paying into its deposit through the gateway; (merchant, key) is unique so a retried
    request is the same top-up, charged and booked once."""

    __tablename__ = "merchant_deposit_top_ups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    idempotency_key: Mapped[str] = mapped_column(String(128))
    amount_cents: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # a TopUpStatus
    reference: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (UniqueConstraint("merchant_id", "idempotency_key"),)
