"""The dispute policy: seed defaults until ops change it; one JSON row, every change audited."""

from __future__ import annotations

from typing import Any

from tuangou.core.audit import record_audit
from tuangou.core.auth import Principal, Role
from tuangou.core.db import UnitOfWork
from tuangou.core.errors import ValidationFailed
from tuangou.disputes import rules
from tuangou.disputes.models import DisputePolicyRow

POLICY_KEY = "default"


def current_policy(uow: UnitOfWork) -> rules.DisputePolicy:
    """Inside an open unit of work: the stored policy (seed defaults when none was saved)."""
    row = uow.session.get(DisputePolicyRow, POLICY_KEY)
    return rules.policy_from_dict(row.data) if row is not None else rules.DisputePolicy()


def get_policy(uow: UnitOfWork) -> dict[str, Any]:
    with uow:
        return current_policy(uow).to_dict()


def update_policy(uow: UnitOfWork, actor: Principal, changes: dict[str, Any], reason: str) -> dict[str, Any]:
    actor.require(Role.OPS)
    if not reason.strip():
        raise ValidationFailed("a reason is required", code="reason_required")
    with uow:
        try:
            policy = rules.policy_from_dict(changes, current_policy(uow))
        except (ValueError, TypeError) as exc:
            raise ValidationFailed(str(exc), code="invalid_policy") from exc
        row = uow.session.get(DisputePolicyRow, POLICY_KEY, with_for_update=True)
        if row is None:
            uow.session.add(DisputePolicyRow(key=POLICY_KEY, data=policy.to_dict(), updated_at=uow.now,
                                             updated_by=actor.user_id))
        else:
            row.data, row.updated_at, row.updated_by = policy.to_dict(), uow.now, actor.user_id
        record_audit(uow.session, actor_id=actor.user_id, actor_role=actor.role, action="update_dispute_policy",
                     target="dispute_policy", reason=reason, now=uow.now, details=changes)
        uow.commit()
        return policy.to_dict()
