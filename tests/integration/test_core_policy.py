"""The shared policy row: ops only, with a reason, upserted, audited; nothing stored until ops change it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tuangou.core import policy
from tuangou.core.audit import AuditEntry
from tuangou.core.auth import Principal, Role
from tuangou.core.db import UnitOfWork
from tuangou.core.errors import Forbidden, ValidationFailed

OPS = Principal(user_id=1, role=Role.OPS)


def _store(db, clock, actor, data, reason="tuning", **audit):
    with UnitOfWork(db, clock) as uow:
        policy.store(uow, actor, "sample", data, reason, {"changed": True}, **audit)
        uow.commit()


def _load(db, clock):
    with UnitOfWork(db, clock) as uow:
        return policy.load(uow.session, "sample")


def test_nothing_is_stored_until_ops_change_it_then_the_last_change_wins(any_db, clock):
    # given no stored policy
    assert _load(any_db, clock) is None
    # when ops store it twice
    _store(any_db, clock, OPS, {"limit": 1})
    _store(any_db, clock, OPS, {"limit": 2})
    # then one row holds the latest data, and both changes are audited under the default name
    assert _load(any_db, clock) == {"limit": 2}
    with UnitOfWork(any_db, clock) as uow:
        entries = uow.session.scalars(select(AuditEntry).where(AuditEntry.action == "set_sample_policy")).all()
        assert [(e.target, e.reason, e.actor_role) for e in entries] == [("policy:sample", "tuning", "ops")] * 2


def test_a_capability_keeps_its_own_audit_names(db, clock):
    _store(db, clock, OPS, {"limit": 1}, action="update_sample", target="sample_policy")
    with UnitOfWork(db, clock) as uow:
        entry = uow.session.scalars(select(AuditEntry)).one()
        assert (entry.action, entry.target) == ("update_sample", "sample_policy")


def test_only_ops_with_a_reason_change_a_policy_and_a_refusal_stores_nothing(db, clock):
    with pytest.raises(Forbidden):
        _store(db, clock, Principal(user_id=2, role=Role.MERCHANT, merchant_id=1), {"limit": 9})
    with pytest.raises(ValidationFailed) as refused:
        _store(db, clock, OPS, {"limit": 9}, reason="   ")
    assert refused.value.code == "reason_required"
    assert _load(db, clock) is None
