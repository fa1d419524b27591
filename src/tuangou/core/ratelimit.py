"""Surge protection (B9) and log-in lockout, shared across processes through Redis when configured.

Callers are told `429 rate_limited` (or `login_locked`) with `Retry-After`; nothing was changed. The counters
may be lost (Redis restart) without harm: they only shape traffic, they guard no invariant. So when Redis is
unreachable the limiter fails open: requests are served, a warning is logged, `/healthz` says degraded.

A caller is the user of a token whose signature verifies (any number of junk headers share one address
budget), else the client address; `X-Forwarded-For` is believed only from configured trusted proxies.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from limits import parse
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from starlette.requests import Request
from starlette.responses import Response

from tuangou.core.auth import Keyring, read_claims
from tuangou.core.clock import Clock
from tuangou.core.errors import DomainError, Unauthorized
from tuangou.core.http import problem

log = logging.getLogger("tuangou.ratelimit")
EXEMPT = ("/healthz", "/docs", "/openapi.json", "/redoc")
AUTH_PATHS = ("/api/v1/auth/token", "/api/v1/auth/signup", "/console/login")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TooManyAttempts(DomainError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int, code: str = "rate_limited") -> None:
        super().__init__(message, code=code, retry_after_seconds=retry_after)
        self.headers = {"Retry-After": str(retry_after)}


def networks(entries: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(e, strict=False) for e in entries)


def _in(address: str, nets: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in n for n in nets)


def client_address(peer: str, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str:
    """The peer, unless it is a trusted proxy: then the right-most X-Forwarded-For entry not itself trusted."""
    if not trusted or not forwarded_for or not _in(peer, trusted):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _in(hop, trusted):
            return hop[:64]
    return hops[0][:64] if hops else peer


def request_address(request: Request) -> str:
    peer = request.client.host if request.client else "unknown"
    trusted = getattr(request.app.state, "trusted_proxies", ())
    return client_address(peer, request.headers.get("x-forwarded-for"), trusted)


def lockout_seconds(failures: int, threshold: int, base: int, cap: int) -> int:
    """0 below `threshold` failures, then base, 2×base, 4×base … up to `cap`."""
    if failures < threshold:
        return 0
    return int(min(cap, base * 2 ** min(failures - threshold, 32)))


class _Counters:
    """A `limits` storage whose failures are logged (at most once a minute) and answered as 'allow'."""

    def __init__(self, redis_url: str | None) -> None:
        self.storage: Storage = storage_from_string(redis_url) if redis_url else MemoryStorage()  # type: ignore[assignment]
        self._warned_at = 0.0

    def failed(self, exc: Exception) -> None:
        if time.monotonic() - self._warned_at > 60:
            self._warned_at = time.monotonic()
            log.warning("rate-limit storage unavailable, failing open: %s", exc)

    def healthy(self) -> bool:
        try:
            return bool(self.storage.check())
        except Exception as exc:  # any storage error means degraded, never a failed health check
            self.failed(exc)
            return False


class RateLimiter(_Counters):
    def __init__(self, rule: str, redis_url: str | None = None, auth_rule: str | None = None) -> None:
        super().__init__(redis_url)
        self.item = parse(rule)
        self.auth_item = parse(auth_rule) if auth_rule else None
        self.limiter = MovingWindowRateLimiter(self.storage)

    @staticmethod
    def caller(request: Request, keyring: Keyring | None = None, clock: Clock | None = None) -> str:
        """`u:<id>` for a token whose signature verifies, else `ip:<client address>`."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if keyring is not None and clock is not None and scheme.lower() == "bearer" and token:
            try:
                return f"u:{read_claims(token.strip(), keyring, clock.now()).user_id}"
            except Unauthorized:
                pass
        return "ip:" + request_address(request)

    def hit(self, caller: str, item: Any = None) -> tuple[bool, int]:
        item = item or self.item
        try:
            if self.limiter.hit(item, "tuangou", caller):
                return True, 0
            reset_at, _ = self.limiter.get_window_stats(item, "tuangou", caller)
        except Exception as exc:  # Redis down: serve the request, say so in the log and in /healthz
            self.failed(exc)
            return True, 0
        return False, max(1, int(reset_at - time.time()))


class LoginGuard(_Counters):
    """Exponential lockout per account and per address after repeated failed log-ins."""

    def __init__(self, redis_url: str | None, threshold: int, base: int, cap: int) -> None:
        super().__init__(redis_url)
        self.threshold, self.base, self.cap = threshold, base, cap

    @staticmethod
    def _keys(email: str, address: str) -> list[tuple[str, int]]:
        account = hashlib.sha256(email.strip().lower().encode("utf-8", "replace")).hexdigest()[:32]
        return [(f"tuangou/login/acct/{account}", 1), (f"tuangou/login/ip/{address}", 4)]

    def check(self, email: str, address: str) -> None:
        """Raise 429 login_locked while the account or the address is locked out."""
        try:
            for key, _ in self._keys(email, address):
                if self.storage.get(key + "/lock"):
                    wait = max(1, int(self.storage.get_expiry(key + "/lock") - time.time()))
                    raise TooManyAttempts(f"too many failed log-ins; retry in {wait} s", wait, "login_locked")
        except TooManyAttempts:
            raise
        except Exception as exc:
            self.failed(exc)

    def failed_attempt(self, email: str, address: str) -> None:
        try:
            for key, scale in self._keys(email, address):
                failures = self.storage.incr(key, self.cap)
                wait = lockout_seconds(failures, self.threshold * scale, self.base, self.cap)
                if wait:
                    self.storage.incr(key + "/lock", wait)
        except Exception as exc:
            self.failed(exc)

    def succeeded(self, email: str, address: str) -> None:
        try:
            self.storage.clear(self._keys(email, address)[0][0])
        except Exception as exc:
            self.failed(exc)


def middleware(limiter: RateLimiter) -> Callable[[Request, Callable[[Request], Awaitable[Response]]],
                                                 Awaitable[Response]]:
    async def limit(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        path = request.url.path
        if path.startswith(EXEMPT):
            return await call_next(request)
        state = request.app.state
        checks = [(RateLimiter.caller(request, state.keyring, state.clock), limiter.item)]
        if limiter.auth_item is not None and request.method == "POST" and path in AUTH_PATHS:
            checks.append(("auth-ip:" + request_address(request), limiter.auth_item))
        for caller, item in checks:
            allowed, retry_after = limiter.hit(caller, item)
            if not allowed:
                return problem(429, "rate_limited", f"too many requests; retry in {retry_after} s",
                               headers={"Retry-After": str(retry_after)})
        return await call_next(request)
    return limit
