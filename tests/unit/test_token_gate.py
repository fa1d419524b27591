"""TokenGate: a crowd of new users costs one batched read, and a forget is never undone by a read in flight."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

from tuangou.core.auth import Claims, Role, TokenGate, UserState
from tuangou.core.errors import Unauthorized

T = TypeVar("T")
ACTIVE = UserState(0, True, Role.BUYER, None)


class Users:
    """A fake users table that counts reads; `gate` holds a read until released (a slow database)."""

    def __init__(self, known: set[int]) -> None:
        self.known = known
        self.single_reads = 0
        self.batches: list[list[int]] = []
        self.gate: threading.Event | None = None
        self.failing = False

    def load(self, user_id: int) -> UserState | None:
        self.single_reads += 1
        return ACTIVE if user_id in self.known else None

    def load_many(self, ids: list[int]) -> dict[int, UserState]:
        self.batches.append(ids)
        if self.gate is not None:
            self.gate.wait(30)
        if self.failing:
            raise RuntimeError("database down")
        return {i: ACTIVE for i in ids if i in self.known}


def _run(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine on a fresh loop in its own thread: an earlier test (Playwright's sync API) may have
    left a loop running in this one, where asyncio.run refuses to start."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = asyncio.run(make())
        except BaseException as exc:  # re-raised in the test's thread
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(60)
    if "error" in box:
        raise box["error"]
    return box["result"]  # type: ignore[no-any-return]


def _gate(users: Users, offload: bool) -> TokenGate:
    return TokenGate(users.load, ttl=60, load_many=users.load_many, offload=offload)


@pytest.mark.parametrize("offload", [False, True])
def test_a_crowd_of_new_users_is_read_in_one_batch(offload):
    # given 300 users, 299 of them known, none cached
    users = Users(set(range(1, 300)))
    gate = _gate(users, offload)

    # when all of them are checked at the same moment
    async def crowd() -> list[UserState | None]:
        return await asyncio.gather(*(gate.astate(i) for i in range(1, 301)))

    states = _run(lambda: crowd())

    # then one read answered them all, and the unknown user is None
    assert users.batches == [list(range(1, 301))]
    assert users.single_reads == 0
    assert states[:299] == [ACTIVE] * 299 and states[299] is None
    # and a second look is served from the cache
    assert _run(lambda: gate.astate(5)) == ACTIVE and len(users.batches) == 1


def test_batches_are_bounded():
    # given more new users at once than one read may name
    users = Users(set(range(1, 1201)))
    gate = _gate(users, offload=False)

    async def crowd() -> None:
        await asyncio.gather(*(gate.astate(i) for i in range(1, 1201)))

    _run(lambda: crowd())

    # then they were read in batches of at most MAX_BATCH, each user once
    assert all(len(b) <= TokenGate.MAX_BATCH for b in users.batches)
    assert sorted(i for b in users.batches for i in b) == list(range(1, 1201))


def test_a_failed_read_fails_its_waiters_and_the_next_request_reads_again():
    # given a database that fails once
    users = Users({1, 2})
    users.failing = True
    gate = _gate(users, offload=True)

    async def both() -> list[object]:
        return await asyncio.gather(gate.astate(1), gate.astate(2), return_exceptions=True)

    # when two requests wait on the failing read
    results = _run(lambda: both())

    # then both see the failure, nothing is cached, and the next request reads afresh
    assert [type(r) for r in results] == [RuntimeError, RuntimeError]
    users.failing = False
    assert _run(lambda: gate.astate(1)) == ACTIVE
    assert len(users.batches) == 2


def test_a_forget_during_a_read_in_flight_is_not_undone():
    # given a read in flight (held by a slow database)
    users = Users({7})
    users.gate = threading.Event()
    gate = _gate(users, offload=True)

    async def scenario() -> UserState | None:
        waiting = asyncio.ensure_future(gate.astate(7))
        while not users.batches:  # the read has started in its thread
            await asyncio.sleep(0.01)
        # when the user is deactivated in this process meanwhile (forget), then the read returns
        gate.forget(7)
        users.gate.set()
        return await waiting

    assert _run(lambda: scenario()) == ACTIVE  # the waiter gets what was read
    # then the next request reads again rather than trusting the stale copy
    users.gate = None
    _run(lambda: gate.astate(7))
    assert len(users.batches) == 2


def test_revoked_and_inactive_are_refused_on_the_async_path():
    # given a user at token version 1 and an inactive one
    states = {1: UserState(1, True, Role.BUYER, None), 2: UserState(0, False, Role.BUYER, None)}
    gate = TokenGate(states.get, load_many=lambda ids: {i: states[i] for i in ids if i in states})

    # then a token of version 0 is revoked, the inactive user refused, the current token admitted
    with pytest.raises(Unauthorized) as revoked:
        _run(lambda: gate.aprincipal(Claims(1, 0, Role.BUYER, None)))
    with pytest.raises(Unauthorized) as inactive:
        _run(lambda: gate.aprincipal(Claims(2, 0, Role.BUYER, None)))
    assert (revoked.value.code, inactive.value.code) == ("token_revoked", "account_inactive")
    assert _run(lambda: gate.aprincipal(Claims(1, 1, Role.MERCHANT, None))).role == Role.BUYER


def test_a_verified_token_is_not_verified_again_but_still_expires(monkeypatch):
    # given a token read once
    from datetime import UTC, datetime, timedelta

    import jwt

    from tuangou.core import auth

    now = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    token = auth.issue_token(auth.Principal(9, Role.BUYER), "k" * 40, now, timedelta(minutes=10), version=3)
    assert auth.read_claims(token, "k" * 40, now).version == 3
    decodes = []
    real = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: decodes.append(1) or real(*a, **k))

    # when it comes again, then it is not decoded again
    assert auth.read_claims(token, "k" * 40, now + timedelta(minutes=5)).user_id == 9
    assert decodes == []
    # and once its expiry has passed it is refused, cached or not
    with pytest.raises(Unauthorized) as expired:
        auth.read_claims(token, "k" * 40, now + timedelta(minutes=11))
    assert expired.value.code == "token_expired"
    # and another keyring does not share the verification
    with pytest.raises(Unauthorized):
        auth.read_claims(token, "z" * 40, now)
