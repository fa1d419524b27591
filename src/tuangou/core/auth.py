"""Roles, password hashing and signed bearer tokens (JWT, HS256) with key rotation and a per-user version.

A token proves who signed it (one signing key, any of the verification keys, chosen by `kid`) and names a user
and that user's token version. Whether it still opens doors is decided per request by `TokenGate` against the
user's current state (active, version, role), cached per process for a few seconds: deactivating a user or
"log out everywhere" bumps the version, so older tokens stop working.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol, TypeVar

import jwt

from tuangou.core.errors import Forbidden, Unauthorized


class Filterable(Protocol):
    """A query that narrows with `.where` (a SQLAlchemy Select): auth stays free of storage imports."""

    def where(self, *criteria: Any) -> Any: ...


Q = TypeVar("Q", bound=Filterable)


class Role(StrEnum):
    BUYER = "buyer"  # buys deals and joins group-buys
    MERCHANT = "merchant"  # runs stores; sees only its own
    OPS = "ops"  # platform operations: audit, customer service, risk
    LEADER = "leader"  # group leader (团长) of community group-buys
    SUPPLIER = "supplier"  # supplies campaigns


@dataclass(frozen=True)
class Principal:
    user_id: int
    role: Role
    merchant_id: int | None = None

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            raise Forbidden(f"this action needs role {' or '.join(r.value for r in roles)}")

    def merchant_scope(self) -> int | None:
        """Whose rows this actor may list: a merchant its own (its id), ops everyone's (None)."""
        if self.role == Role.OPS:
            return None
        if self.role == Role.MERCHANT and self.merchant_id is not None:
            return self.merchant_id
        raise Forbidden("this list is for merchants and ops")

    def own_rows(self, query: Q, *, buyer: Any, merchant: Any, what: str) -> Q:
        """A list query narrowed to what this caller may see: a buyer its own rows (`buyer` column), a
        merchant its own (`merchant` column), ops all of them; any other role is refused, never shown all."""
        if self.role == Role.BUYER:
            return query.where(buyer == self.user_id)  # type: ignore[no-any-return]
        if self.role == Role.MERCHANT:
            return query.where(merchant == self.merchant_id)  # type: ignore[no-any-return]
        if self.role != Role.OPS:
            raise Forbidden(f"{what} are seen by their buyer, merchant and ops")
        return query

    def require_merchant(self, merchant_id: int) -> None:
        """Ops may act on any merchant; a merchant only on itself."""
        if self.role == Role.OPS:
            return
        if self.role != Role.MERCHANT or self.merchant_id != merchant_id:
            raise Forbidden("this belongs to another merchant")


# --- passwords -------------------------------------------------------------------------------------------

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
MAX_PASSWORD_BYTES = 1024  # scrypt cost does not depend on length, but a megabyte password is abuse


def _raw(password: str) -> bytes:
    # "replace": a lone surrogate from JSON must be a wrong password, not a 500
    return password.encode("utf-8", "replace")[:MAX_PASSWORD_BYTES]


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(_raw(password), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


# Verified against when the email is unknown or the account inactive, so every failed log-in costs one scrypt.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def verify_password(password: str, stored: str | None) -> bool:
    """Constant work whatever `stored` is: None (no such user) or a malformed hash still cost one scrypt."""
    salt_hex, digest_hex = _DUMMY_HASH.split("$")[1:]
    known = False
    if stored is not None:
        parts = stored.split("$")
        if len(parts) == 3 and parts[0] == "scrypt":
            try:
                bytes.fromhex(parts[1])
                salt_hex, digest_hex, known = parts[1], parts[2], True
            except ValueError:
                pass
    digest = hashlib.scrypt(_raw(password), salt=bytes.fromhex(salt_hex), dklen=32, **_SCRYPT)
    return hmac.compare_digest(digest.hex(), digest_hex) and known


# --- keys and tokens -------------------------------------------------------------------------------------

ALGORITHM = "HS256"
DEV_SECRET = "dev-only-change-me"
MIN_SECRET_CHARS = 32


def key_id(key: str) -> str:
    """A public name for a key (the JWT `kid`): lets a verifier pick the key without trying each one."""
    return hashlib.sha256(b"tuangou-kid:" + key.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Keyring:
    """One key signs; it and every previous key verify (rotation: add the new key, move the old one here)."""

    signing: str
    previous: tuple[str, ...] = ()

    @classmethod
    def of(cls, keys: str | Keyring) -> Keyring:
        return keys if isinstance(keys, Keyring) else cls(keys)

    def verifying(self, kid: object) -> str | None:
        for key in (self.signing, *self.previous):
            if key and key_id(key) == kid:
                return key
        return None


@dataclass(frozen=True)
class Claims:
    """What a verified token says; `TokenGate` decides whether it still holds."""

    user_id: int
    version: int
    role: Role
    merchant_id: int | None
    expires: int = 2**40  # the token's `exp`, in epoch seconds

    @property
    def principal(self) -> Principal:
        return Principal(self.user_id, self.role, self.merchant_id)


def issue_token(principal: Principal, keys: str | Keyring, now: datetime, ttl: timedelta, version: int = 0) -> str:
    ring = Keyring.of(keys)
    payload = {"sub": str(principal.user_id), "r": principal.role.value, "m": principal.merchant_id, "ver": version,
               "iat": int(now.timestamp()), "exp": int((now + ttl).timestamp())}
    return jwt.encode(payload, ring.signing, algorithm=ALGORITHM, headers={"kid": key_id(ring.signing)})


_INVALID = "invalid_token"


def _int_claim(data: dict[str, Any], name: str, low: int, high: int) -> int:
    value = data.get(name)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 12:
        value = int(value)
    if type(value) is not int or not low <= value <= high:  # bool is an int subclass: refused here
        raise Unauthorized("invalid token", code=_INVALID)
    return value


# Tokens whose signature and shape were verified, per keyring: a client sends the same token with every
# request, and verifying it (base64, JSON, HMAC through PyJWT) was a tenth of a cheap request's CPU. A token
# string maps to one set of claims for ever; expiry is checked against `now` on every use.
_VERIFIED: dict[Keyring, dict[str, Claims]] = {}
_VERIFIED_MAX = 20_000


def read_claims(token: str, keys: str | Keyring, now: datetime) -> Claims:
    """Verify signature, algorithm and expiry (against `now`, the app clock); any malformed token is a 401."""
    ring = Keyring.of(keys)
    verified = _VERIFIED.get(ring)
    if verified is None:
        verified = _VERIFIED.setdefault(ring, {})
    claims = verified.get(token)
    if claims is None:
        claims = _verify(token, ring)
        if len(verified) >= _VERIFIED_MAX:
            verified.clear()
        verified[token] = claims
    if claims.expires < now.timestamp():
        raise Unauthorized("token expired", code="token_expired")
    return claims


def _verify(token: str, ring: Keyring) -> Claims:
    try:
        key = ring.verifying(jwt.get_unverified_header(token).get("kid"))
        if key is None:
            raise Unauthorized("token signed with an unknown key", code=_INVALID)
        data = jwt.decode(token, key, algorithms=[ALGORITHM],
                          options={"verify_exp": False, "verify_iat": False, "require": ["sub", "exp", "ver"]})
    except (jwt.PyJWTError, ValueError, TypeError, UnicodeError) as exc:
        raise Unauthorized("invalid token", code=_INVALID) from exc
    if not isinstance(data, dict):
        raise Unauthorized("invalid token", code=_INVALID)
    expires = _int_claim(data, "exp", 0, 2**40)
    role = data.get("r")
    if role not in {r.value for r in Role}:
        raise Unauthorized("invalid token", code=_INVALID)
    merchant = data.get("m")
    merchant_id = None if merchant is None else _int_claim(data, "m", 1, 2**31 - 1)
    return Claims(_int_claim(data, "sub", 1, 2**31 - 1), _int_claim(data, "ver", 0, 2**31 - 1), Role(role),
                  merchant_id, expires)


def read_token(token: str, keys: str | Keyring, now: datetime) -> Principal:
    """The principal a token names, signature and expiry checked (not its user's current state: see TokenGate)."""
    return read_claims(token, keys, now).principal


# --- the live check --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class UserState:
    """What the users table says now; a token holds while its version matches and the user is active."""

    version: int
    active: bool
    role: Role
    merchant_id: int | None


class TokenGate:
    """Turns verified claims into a principal from the user's current state, cached per process.

    `load(user_id)` reads the state (None: no such user). Entries live `ttl` seconds, so a change made by another
    process takes effect within `ttl`; the process that makes it calls `forget` and it takes effect at once.

    `load_many(ids)` (optional) reads many users in one statement: `aprincipal`, the async routes' check, then
    gathers the cache misses of every request waiting on the same event loop into one read, and runs it in a
    worker thread when `offload` (a network database: the loop serves other requests meanwhile) or in place
    (SQLite: microseconds, a thread hop would cost more). In a flash sale thousands of buyers arrive at once,
    each new to the cache: they cost a handful of reads instead of one round trip each on the event loop.
    """

    MAX_BATCH = 500  # ids per read: well under every driver's bound-parameter limit

    def __init__(self, load: Callable[[int], UserState | None], ttl: float = 5.0,
                 monotonic: Callable[[], float] = time.monotonic,
                 load_many: Callable[[list[int]], dict[int, UserState]] | None = None, offload: bool = False) -> None:
        self._load, self._ttl, self._monotonic = load, ttl, monotonic
        self._load_many, self._offload = load_many, offload
        self._cache: dict[int, tuple[float, UserState | None]] = {}
        self._lock = threading.Lock()
        self._epoch = 0  # bumped by `forget`: a read that began before a forget must not cache what it read
        self._waiting: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Batch] = weakref.WeakKeyDictionary()

    def _cached(self, user_id: int) -> tuple[bool, UserState | None]:
        hit = self._cache.get(user_id)
        if hit is not None and hit[0] > self._monotonic():
            return True, hit[1]
        return False, None

    def _store(self, states: dict[int, UserState | None], epoch: int) -> None:
        expires = self._monotonic() + self._ttl
        with self._lock:
            if epoch != self._epoch:
                return
            if len(self._cache) + len(states) > 100_000:
                self._cache.clear()
            for user_id, state in states.items():
                self._cache[user_id] = (expires, state)

    def state(self, user_id: int) -> UserState | None:
        found, state = self._cached(user_id)
        if found:
            return state
        epoch = self._epoch
        state = self._load(user_id)
        self._store({user_id: state}, epoch)
        return state

    async def astate(self, user_id: int) -> UserState | None:
        """`state` for a coroutine: a miss waits for the next batched read instead of reading alone."""
        found, state = self._cached(user_id)
        if found or self._load_many is None:
            return state if found else self.state(user_id)
        loop = asyncio.get_running_loop()
        with self._lock:  # loops of several threads (test clients, a worker) share this gate
            batch = self._waiting.get(loop)
            if batch is None:
                batch = self._waiting[loop] = _Batch()
        future = batch.pending.get(user_id)
        if future is None:
            future = batch.pending[user_id] = loop.create_future()
        if batch.task is None:
            batch.task = loop.create_task(self._drain(batch))
        return await asyncio.shield(future)  # one waiter cancelled (a client gone) must not fail the others

    async def _drain(self, batch: _Batch) -> None:
        """Read what the waiters of this loop miss, one batch at a time, until nobody waits."""
        try:
            await asyncio.sleep(0)  # let the requests already parsed in this turn of the loop join
            while batch.pending:
                ids = list(batch.pending)[:self.MAX_BATCH]
                futures = {user_id: batch.pending.pop(user_id) for user_id in ids}
                epoch = self._epoch
                try:
                    read = (await asyncio.to_thread(self._read, ids)) if self._offload else self._read(ids)
                except Exception as exc:  # the waiters answer 500 as a lone read's failure would
                    for future in futures.values():
                        if not future.done():
                            future.set_exception(exc)
                    continue
                self._store(read, epoch)
                for user_id, future in futures.items():
                    if not future.done():
                        future.set_result(read[user_id])
        finally:
            batch.task = None
            for future in batch.pending.values():  # only when cancelled (the loop shutting down)
                future.cancel()
            batch.pending.clear()

    def _read(self, ids: list[int]) -> dict[int, UserState | None]:
        assert self._load_many is not None
        found = self._load_many(ids)
        return {user_id: found.get(user_id) for user_id in ids}

    def forget(self, user_id: int) -> None:
        with self._lock:
            self._epoch += 1
            self._cache.pop(user_id, None)

    def principal(self, claims: Claims) -> Principal:
        return self._admit(claims, self.state(claims.user_id))

    async def aprincipal(self, claims: Claims) -> Principal:
        return self._admit(claims, await self.astate(claims.user_id))

    @staticmethod
    def _admit(claims: Claims, state: UserState | None) -> Principal:
        if state is None or not state.active:
            raise Unauthorized("this account no longer exists or is deactivated", code="account_inactive")
        if state.version != claims.version:
            raise Unauthorized("token revoked; sign in again", code="token_revoked")
        return Principal(claims.user_id, state.role, state.merchant_id)


@dataclass
class _Batch:
    """The users one event loop's requests wait for, and the task reading them."""

    pending: dict[int, asyncio.Future[UserState | None]] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None
