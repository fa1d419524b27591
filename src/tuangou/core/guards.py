"""Request guards in front of every route: body size limits (413 while streaming), NUL refused, security headers.

Pure ASGI so that an oversized body is refused before it is read whole, and a JSON body is buffered at most once.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException as StarletteHTTPException

from tuangou.core.http import problem

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The consoles: no inline script, no framing, forms post only here.
CONSOLE_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                                 b"img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]
COMMON_HEADERS = [(b"x-content-type-options", b"nosniff")]


class _TooLarge(StarletteHTTPException):
    """Raised from `receive` while a route reads its body; FastAPI passes HTTP exceptions through as they are."""

    def __init__(self, limit: int = 0) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class RequestGuard:
    """413 past `max_body` (`max_upload` for multipart), 422 for NUL characters, security headers on answers."""

    def __init__(self, app: ASGIApp, max_body: int, max_upload: int) -> None:
        self.app, self.max_body, self.max_upload = app, max_body, max_upload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        limit = self.max_upload if content_type == b"multipart/form-data" else self.max_body
        send = self._with_headers(scope, send)
        if b"%00" in scope.get("query_string", b"") or b"%00" in (scope.get("raw_path") or b""):
            await self._refuse_nul(scope, receive, send)
            return
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._too_large(scope, receive, send, limit)
            return
        if content_type in (b"application/json", b"application/x-www-form-urlencoded") or content_type.endswith(b"+json"):
            try:
                body = await self._read(receive, limit)
            except _TooLarge:
                await self._too_large(scope, receive, send, limit)
                return
            if self._nul_in(content_type, body):
                await self._refuse_nul(scope, receive, send)
                return
            await self.app(scope, self._replay(body, receive), send)
            return
        await self._streamed(scope, receive, send, limit)

    @staticmethod
    def _nul_in(content_type: bytes, body: bytes) -> bool:
        if content_type == b"application/x-www-form-urlencoded":
            return b"%00" in body or b"\x00" in body
        if b"\\u0000" not in body:
            return False
        try:
            return _has_nul(json.loads(body))
        except ValueError:
            return False  # not JSON: the route's validation answers 422

    @staticmethod
    async def _read(receive: Receive, limit: int) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _TooLarge(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    @staticmethod
    def _replay(body: bytes, receive: Receive) -> Receive:
        """The buffered body once, then the real channel (a later receive waits for the real disconnect)."""
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return replay

    async def _streamed(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Count while the app reads; past the limit answer 413 (if nothing was sent yet) and stop reading."""
        size = 0
        started = False

        async def counting() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > limit:
                    raise _TooLarge(limit)
            return message

        async def tracking(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.app(scope, counting, tracking)
        except _TooLarge:
            if not started:
                await problem(413, "payload_too_large", f"request body larger than {limit} bytes",
                              limit_bytes=limit)(scope, receive, send)

    @staticmethod
    async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problem(413, "payload_too_large", f"request body larger than {limit} bytes", limit_bytes=limit)
        response.headers["Connection"] = "close"
        await response(scope, receive, send)

    @staticmethod
    async def _refuse_nul(scope: Scope, receive: Receive, send: Send) -> None:
        await problem(422, "validation_error", "NUL characters are not accepted")(scope, receive, send)

    @staticmethod
    def _with_headers(scope: Scope, send: Send) -> Send:
        extra = COMMON_HEADERS + (CONSOLE_HEADERS if str(scope.get("path", "")).startswith("/console") else [])

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [h for h in extra if h[0] not in present]
            await send(message)
        return sending
