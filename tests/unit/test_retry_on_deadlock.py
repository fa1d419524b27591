"""A deadlock victim's unit of work runs again; any other database error is not hidden."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from tuangou.core.db import retry_on_deadlock


class _Orig(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def _error(sqlstate: str) -> OperationalError:
    return OperationalError("UPDATE capacity_buckets …", {}, _Orig(sqlstate))


def test_deadlock_victim_is_run_again_until_it_commits():
    calls = []

    @retry_on_deadlock
    def pay() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise _error("40P01")
        return "paid"

    assert pay() == "paid" and len(calls) == 3


def test_other_database_errors_are_raised_at_once():
    calls = []

    @retry_on_deadlock
    def pay() -> None:
        calls.append(1)
        raise _error("53300")  # too many connections: not ours to retry

    with pytest.raises(OperationalError):
        pay()
    assert len(calls) == 1


def test_gives_up_after_a_few_deadlocks_in_a_row():
    @retry_on_deadlock
    def pay() -> None:
        raise _error("40001")

    with pytest.raises(OperationalError):
        pay()
