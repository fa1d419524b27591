"""The dispute policy: seed defaults until ops change it; kept as the shared policy row "disputes"."""

from __future__ import annotations

from typing import Any

from tuangou.core import policy as policies
from tuangou.core.auth import Principal
from tuangou.core.db import UnitOfWork
from tuangou.disputes import rules

POLICY = "disputes"


def current_policy(uow: UnitOfWork) -> rules.DisputePolicy:
    """Inside an open unit of work: the stored policy (seed defaults when none was saved)."""
    stored = policies.load(uow.session, POLICY)
    return rules.policy_from_dict(stored) if stored is not None else rules.DisputePolicy()


def get_policy(uow: UnitOfWork) -> dict[str, Any]:
    with uow:
        return current_policy(uow).to_dict()


def update_policy(uow: UnitOfWork, actor: Principal, changes: dict[str, Any], reason: str) -> dict[str, Any]:
    # the audit names predate the shared policy table; kept so audit queries keep working
    return policies.change(uow, actor, POLICY, changes, reason, rules.policy_from_dict, current_policy,
                          action="update_dispute_policy", target="dispute_policy")
