"""Ops-editable policies: one JSON row per capability, keyed by name.

Each capability owns its policy's shape and validation (a frozen dataclass in its rules.py, seed defaults
when nothing is stored); this module only keeps the rows and the rules for changing them: ops only, with a
reason, audited, upserted so two first edits cannot collide.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from tuangou.core.audit import record_audit
from tuangou.core.auth import Principal, Role
from tuangou.core.db import Base, UnitOfWork, UTCDateTime, insert_ignore
from tuangou.core.errors import ValidationFailed


class PolicyRecord(Base):
    """The stored copy of one capability's policy; absent until ops first change it."""

    __tablename__ = "policies"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[int | None] = mapped_column(Integer, nullable=True)


def load(session: Session, name: str) -> dict[str, Any] | None:
    """Inside an open unit of work: the stored policy `name`, or None while the seed defaults apply."""
    row = session.get(PolicyRecord, name)
    return dict(row.data) if row is not None else None


def store(uow: UnitOfWork, actor: Principal, name: str, data: dict[str, Any], reason: str,
          changes: dict[str, Any], *, action: str | None = None, target: str | None = None) -> None:
    """Inside an open unit of work: save the already validated policy `data` as ops' decision.

    `action`/`target` name the audit entry (default `set_<name>_policy` / `policy:<name>`); the caller commits.
    """
    actor.require(Role.OPS)
    if not reason.strip():
        raise ValidationFailed("a reason is required", code="reason_required")
    values = {"data": data, "updated_at": uow.now, "updated_by": actor.user_id}
    if not insert_ignore(uow.session, PolicyRecord.__table__, {"name": name, **values}, ["name"]):
        uow.session.execute(update(PolicyRecord).where(PolicyRecord.name == name).values(**values))
    record_audit(uow.session, actor_id=actor.user_id, actor_role=Role.OPS, action=action or f"set_{name}_policy",
                 target=target or f"policy:{name}", reason=reason, now=uow.now, details=changes)
