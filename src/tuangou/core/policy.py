"""Ops-editable policies: one JSON row per capability, keyed by name.

Each capability owns its policy's shape and validation (a frozen dataclass in its rules.py, seed defaults
when nothing is stored); this module only keeps the rows and the rules for changing them: ops only, with a
reason, audited, upserted so two first edits cannot collide.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

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


T = TypeVar("T")
# How long a process trusts its copy of a policy. A change made in this process is seen at once
# (store() drops the copy); other processes see it within this many seconds. The hot path reads
# policies on every order, so a query each time would cost more than the rule it feeds.
CACHE_SECONDS = 1.0
_cache: dict[tuple[str, str], tuple[float, Any]] = {}


def cached(session: Session, name: str, parse: Callable[[dict[str, Any] | None], T]) -> T:
    """Inside an open unit of work: the policy `name` parsed by `parse`, from this process's copy
    when it is fresh enough (no query), else read and kept."""
    key = (_where(session), name)
    hit = _cache.get(key)
    now = time.monotonic()
    if hit is not None and now - hit[0] < CACHE_SECONDS:
        return hit[1]  # type: ignore[no-any-return]
    value = parse(load(session, name))
    _cache[key] = (now, value)
    return value


def _where(session: Session) -> str:
    bind = session.get_bind()
    return str(bind.engine.url)


def forget(session: Session, name: str) -> None:
    _cache.pop((_where(session), name), None)


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
    forget(uow.session, name)
    uow.after_commit(lambda: forget(uow.session, name))  # a reader between the two saw the old copy
    record_audit(uow.session, actor_id=actor.user_id, actor_role=Role.OPS, action=action or f"set_{name}_policy",
                 target=target or f"policy:{name}", reason=reason, now=uow.now, details=changes)


def change(uow: UnitOfWork, actor: Principal, name: str, changes: dict[str, Any], reason: str,
            merge: Callable[[dict[str, Any], Any], Any], current: Callable[[UnitOfWork], Any], *,
            action: str | None = None, target: str | None = None) -> dict[str, Any]:
    """The whole "ops change a policy" command for a capability whose policy dataclass has `to_dict()`:
    merge `changes` over the policy in force (a ValueError/TypeError is 422 `invalid_policy`), store it
    audited with the reason, commit once; returns the new policy."""
    actor.require(Role.OPS)
    with uow:
        try:
            policy = merge(changes, current(uow))
        except (ValueError, TypeError) as exc:
            raise ValidationFailed(str(exc), code="invalid_policy") from exc
        data: dict[str, Any] = policy.to_dict()
        store(uow, actor, name, data, reason, changes, action=action, target=target)
        uow.commit()
        return data
