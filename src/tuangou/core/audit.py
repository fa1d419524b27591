"""Who did what, when and why: every ops decision lands here in its own transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from tuangou.core.db import Base, UTCDateTime
from tuangou.core.errors import ValidationFailed


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor_role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


def require_reason(reason: str) -> str:
    """Every ops decision states why (the audit log keeps it): 422 `reason_required`, before anything moves."""
    if not reason.strip():
        raise ValidationFailed("a reason is required", code="reason_required")
    return reason


def record_audit(session: Session, *, actor_id: int | None, actor_role: str, action: str, target: str,
                 reason: str, now: datetime, details: dict[str, Any] | None = None) -> None:
    """Services check the reason before they act (`require_reason`); this is the backstop, so no ops
    decision is ever recorded without one (the unit of work then rolls back)."""
    if actor_role == "ops":
        require_reason(reason)
    session.add(AuditEntry(actor_id=actor_id, actor_role=actor_role, action=action, target=target,
                           reason=reason, details=details or {}, at=now))


def list_entries(session: Session, *, cursor: int | None, limit: int, action: str | None) -> list[dict[str, Any]]:
    """Newest first; `cursor` is the last id seen."""
    q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if cursor is not None:
        q = q.where(AuditEntry.id < cursor)
    if action:
        q = q.where(AuditEntry.action == action)
    return [{"id": a.id, "actor_id": a.actor_id, "actor_role": a.actor_role, "action": a.action,
             "target": a.target, "reason": a.reason, "details": a.details, "at": a.at.isoformat()}
            for a in session.scalars(q)]
