"""The accountability policy in force, and the lock that serialises every change to a merchant's record.

The base both halves of accountability stand on: violations and the standing (`service.py`) and
penalties (`penalties.py`) read the policy here and take the merchant's standing row lock here.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import select

from tuangou.accounts import service as accounts
from tuangou.core import policy as policies
from tuangou.core.auth import Principal, Role
from tuangou.core.db import InTransaction, UnitOfWork, insert_ignore
from tuangou.core.errors import ValidationFailed
from tuangou.merchants import rules
from tuangou.merchants.models import MerchantStanding

POLICY = "accountability"


def load_policy(uow: InTransaction) -> rules.AccountabilityPolicy:
    """Inside an open unit of work: the policy in force."""
    stored = policies.load(uow.session, POLICY)
    return rules.AccountabilityPolicy.from_dict(stored) if stored is not None else rules.AccountabilityPolicy()


def get_policy(uow: UnitOfWork) -> dict[str, Any]:
    with uow:
        return load_policy(uow).to_dict()


def set_policy(uow: UnitOfWork, actor: Principal, changes: dict[str, Any], reason: str) -> dict[str, Any]:
    actor.require(Role.OPS)
    with uow:
        problems = rules.change_problems(changes)
        if problems:
            raise ValidationFailed("; ".join(problems))
        policy = replace(load_policy(uow), **changes)
        problems = rules.policy_problems(policy)
        if problems:
            raise ValidationFailed("; ".join(problems))
        policies.store(uow, actor, POLICY, policy.to_dict(), reason, changes)
        uow.commit()
        return policy.to_dict()


def lock_standing(uow: InTransaction, merchant_id: int) -> MerchantStanding:
    """Serialise every change to one merchant's standing (row lock on PostgreSQL)."""
    accounts.merchant_status(uow, merchant_id)  # NotFound for an unknown merchant
    insert_ignore(uow.session, MerchantStanding.__table__, {"merchant_id": merchant_id, "scores": {},
                  "limited": False, "updated_at": uow.now}, ["merchant_id"])
    return uow.session.scalars(select(MerchantStanding).where(MerchantStanding.merchant_id == merchant_id)
                               .with_for_update().execution_options(populate_existing=True)).one()
