"""FastAPI glue shared by every capability: dependencies and problem+json errors."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from tuangou.core.auth import Principal, Role, read_claims
from tuangou.core.db import NulInText, UnitOfWork
from tuangou.core.errors import DomainError, Unauthorized

log = logging.getLogger("tuangou.http")
PROBLEM = "application/problem+json"


def problem(status: int, code: str, detail: str, headers: Mapping[str, str] | None = None,
            **extra: Any) -> JSONResponse:
    body = {"type": f"https://tuangou.dev/problems/{code}", "title": code.replace("_", " "),
            "status": status, "code": code, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        metrics = getattr(request.app.state, "metrics", None)
        if metrics is not None:  # refusals by code: sold_out, cap_exceeded, business_line_paused, …
            metrics.refusal(exc.code)
        return problem(exc.status, exc.code, exc.message, headers=getattr(exc, "headers", None), **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        loc = errors[0]["loc"] if errors else []
        msg = str(errors[0]["msg"]) if errors else "invalid request"
        where = ".".join(str(p) for p in loc if p != "body")
        return problem(422, "validation_error", f"{where}: {msg}" if where else msg, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized",
                413: "payload_too_large"}.get(exc.status_code, "http_error")
        return problem(exc.status_code, code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def _out_of_range(_: Request, exc: Exception) -> JSONResponse:
        # a number no column can hold (ids past 2^31, amounts past 2^63): the input's fault, nothing changed
        if "NUL" in str(exc):  # PostgreSQL's refusal of NUL in text: the same answer as SQLite's (NulInText)
            return problem(422, "validation_error", "NUL characters are not accepted")
        return problem(422, "validation_error", "a number in the request is out of range")

    @app.exception_handler(NulInText)
    async def _nul(_: Request, exc: NulInText) -> JSONResponse:
        return problem(422, "validation_error", "NUL characters are not accepted")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return problem(500, "internal_error", "unexpected error; nothing was changed")


# Dependencies are `async def`: FastAPI runs a plain `def` dependency in the threadpool, and these
# do no I/O, so the hop would cost more than the work (docs/adr/0010).
async def uow(request: Request) -> UnitOfWork:
    return UnitOfWork(request.app.state.db, request.app.state.clock)


async def read_uow(request: Request) -> UnitOfWork:
    return UnitOfWork(request.app.state.db, request.app.state.clock, readonly=True)


bearer = HTTPBearer(auto_error=False, scheme_name="bearer",
                    description="`POST /api/v1/auth/token` with email and password gives the token")


def authenticate(request: Request, token: str) -> Principal:
    """A verified token whose user is still active at the token's version (else 401), as that user is now."""
    state = request.app.state
    return state.token_gate.principal(read_claims(token, state.keyring, state.clock.now()))  # type: ignore[no-any-return]


async def principal(request: Request,
                    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    if credentials is None or not credentials.credentials:
        raise Unauthorized("missing bearer token: POST /api/v1/auth/token first")
    state = request.app.state
    claims = read_claims(credentials.credentials, state.keyring, state.clock.now())
    return await state.token_gate.aprincipal(claims)  # type: ignore[no-any-return]


def optional_principal(request: Request) -> Principal | None:
    """For public routes that show more to a signed-in caller: no header is anonymous, a bad one a 401."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if not scheme and not token:
        return None
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("malformed Authorization header: expected `Bearer <token>`")
    return authenticate(request, token.strip())


# Content types a browser may render from an upload; anything else is served as an opaque download.
SAFE_INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"})


def safe_filename(name: str) -> str:
    """Printable ASCII letters, digits, dot, dash and underscore only; never empty, never a path."""
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in name.split("/")[-1])
    cleaned = cleaned.strip("._")[:100]
    return cleaned or "file"


def file_response(name: str, content_type: str, data: bytes) -> Response:
    """A stored upload: attachment, vetted type or octet-stream, nosniff, a filename that cannot inject."""
    media = content_type.split(";")[0].strip().lower()
    media = media if media in SAFE_INLINE_TYPES else "application/octet-stream"
    return Response(data, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="{safe_filename(name)}"',
        "X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'; sandbox"})


def role(*roles: Role) -> Any:
    async def check(p: Annotated[Principal, Depends(principal)]) -> Principal:
        p.require(*roles)
        return p
    return Depends(check)


UoW = Annotated[UnitOfWork, Depends(uow)]
ReadUoW = Annotated[UnitOfWork, Depends(read_uow)]
Auth = Annotated[Principal, Depends(principal)]
Buyer = Annotated[Principal, role(Role.BUYER)]
Merchant = Annotated[Principal, role(Role.MERCHANT, Role.OPS)]
Ops = Annotated[Principal, role(Role.OPS)]


MAX_ID = 2**31 - 1
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]


def page(items: list[Any], limit: int, cursor_of: Any) -> dict[str, Any]:
    """A cursor page: `next_cursor` is set when there may be more."""
    next_cursor = str(cursor_of(items[-1])) if len(items) == limit and items else None
    return {"items": items, "next_cursor": next_cursor}


class PayloadTooLarge(DomainError):
    status = 413
    code = "payload_too_large"


def read_upload(file: Any, limit: int) -> bytes:
    """An uploaded file's bytes, refused with 413 past `limit` (read at most limit + 1 bytes)."""
    data: bytes = file.file.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"{safe_filename(file.filename or 'file')}: larger than {limit} bytes",
                              code="file_too_large", limit_bytes=limit)
    return data


PROBLEM_SCHEMA = {
    "type": "object", "required": ["type", "title", "status", "code", "detail"],
    "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                   "code": {"type": "string", "description": "stable machine-readable error code"},
                   "detail": {"type": "string"}},
    "additionalProperties": True,
}
_ANSWERS = {"400": "refused request", "401": "missing, malformed, expired or revoked bearer token",
            "403": "the caller's role or ownership does not allow this", "404": "no such resource",
            "405": "method not allowed", "409": "conflicts with the current state", "413": "body or file too large",
            "422": "invalid input", "429": "rate limited or log-in locked out (see Retry-After)"}


def install_openapi(app: FastAPI) -> None:
    """The document says what the server does: problem+json errors per operation and the bearer scheme."""
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = schema.setdefault("components", {})
        components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        for ops in schema.get("paths", {}).values():
            for op in ops.values():
                responses = op.setdefault("responses", {})
                # any route answers 401 to a malformed Authorization header, even a public one
                for code in ("400", "401", "403", "404", "405", "409", "413", "422", "429"):
                    responses[code] = {"description": _ANSWERS[code], "content": {
                        PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
        components.get("schemas", {}).pop("HTTPValidationError", None)
        components.get("schemas", {}).pop("ValidationError", None)
        app.openapi_schema = schema
        return schema
    app.openapi = openapi  # type: ignore[method-assign]
