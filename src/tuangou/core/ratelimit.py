"""Surge protection (B9): a per-caller request budget, shared across processes through Redis when configured.

Callers are told `429 rate_limited` with `Retry-After`; nothing was changed. The counters may be lost
(Redis restart) without harm: they only shape traffic, they guard no invariant.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable

from limits import parse
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from starlette.requests import Request
from starlette.responses import Response

from tuangou.core.http import problem

EXEMPT = ("/healthz", "/docs", "/openapi.json", "/redoc")


class RateLimiter:
    def __init__(self, rule: str, redis_url: str | None = None) -> None:
        self.item = parse(rule)
        self.storage = storage_from_string(redis_url) if redis_url else MemoryStorage()
        self.limiter = MovingWindowRateLimiter(self.storage)

    @staticmethod
    def caller(request: Request) -> str:
        """The bearer token's hash when there is one (a user), else the client address."""
        auth = request.headers.get("authorization", "")
        if auth:
            return "t:" + hashlib.sha256(auth.encode()).hexdigest()[:24]
        return "ip:" + (request.client.host if request.client else "unknown")

    def hit(self, caller: str) -> tuple[bool, int]:
        if self.limiter.hit(self.item, "tuangou", caller):
            return True, 0
        reset_at, _ = self.limiter.get_window_stats(self.item, "tuangou", caller)
        return False, max(1, int(reset_at - time.time()))


def middleware(limiter: RateLimiter) -> Callable[[Request, Callable[[Request], Awaitable[Response]]],
                                                 Awaitable[Response]]:
    async def limit(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.url.path.startswith(EXEMPT):
            return await call_next(request)
        allowed, retry_after = limiter.hit(RateLimiter.caller(request))
        if not allowed:
            response = problem(429, "rate_limited", f"too many requests; retry in {retry_after} s")
            response.headers["Retry-After"] = str(retry_after)
            return response
        return await call_next(request)
    return limit



