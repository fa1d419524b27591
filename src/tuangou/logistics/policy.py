"""The logistics policy: seed defaults until ops change it; kept as the shared policy row "logistics"."""

from __future__ import annotations

from typing import Any

from tuangou.core import policy as policies
from tuangou.core.auth import Principal
from tuangou.core.db import UnitOfWork
from tuangou.logistics import rules

POLICY = "logistics"


def current_policy(uow: UnitOfWork) -> rules.LogisticsPolicy:
    """Inside an open unit of work: the stored policy (seed defaults when none was saved)."""
    stored = policies.load(uow.session, POLICY)
    return rules.policy_from_dict(stored) if stored is not None else rules.LogisticsPolicy()


def get_policy(uow: UnitOfWork) -> dict[str, Any]:
    with uow:
        return current_policy(uow).to_dict()


def update_policy(uow: UnitOfWork, actor: Principal, changes: dict[str, Any], reason: str) -> dict[str, Any]:
    return policies.change(uow, actor, POLICY, changes, reason, rules.policy_from_dict, current_policy)
