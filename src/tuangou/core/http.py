"""FastAPI glue shared by every capability: dependencies and problem+json errors."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from tuangou.core.auth import Principal, Role, read_token
from tuangou.core.db import UnitOfWork
from tuangou.core.errors import DomainError, Unauthorized

log = logging.getLogger("tuangou.http")
PROBLEM = "application/problem+json"


def problem(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": f"https://tuangou.dev/problems/{code}", "title": code.replace("_", " "),
            "status": status, "code": code, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        metrics = getattr(request.app.state, "metrics", None)
        if metrics is not None:  # refusals by code: sold_out, cap_exceeded, business_line_paused, …
            metrics.refusal(exc.code)
        return problem(exc.status, exc.code, exc.message, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        loc = errors[0]["loc"] if errors else []
        msg = str(errors[0]["msg"]) if errors else "invalid request"
        where = ".".join(str(p) for p in loc if p != "body")
        return problem(422, "validation_error", f"{where}: {msg}" if where else msg, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(exc.status_code, "http_error")
        return problem(exc.status_code, code, str(exc.detail))

    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def _out_of_range(_: Request, exc: Exception) -> JSONResponse:
        # a number no column can hold (ids past 2^31, amounts past 2^63): the input's fault, nothing changed
        return problem(422, "validation_error", "a number in the request is out of range")

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


async def principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing bearer token: POST /api/v1/auth/token first")
    return read_token(token, request.app.state.settings.secret_key, request.app.state.clock.now())


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
