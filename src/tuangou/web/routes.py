"""Server-rendered consoles for buyers, merchants and ops (cookie holds the same bearer token)."""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from tuangou.accounts import service as accounts
from tuangou.catalog import service as catalog
from tuangou.core.auth import Principal, Role
from tuangou.core.db import UnitOfWork
from tuangou.core.errors import DomainError
from tuangou.core.http import authenticate
from tuangou.core.money import yuan
from tuangou.core.ratelimit import request_address
from tuangou.notify import service as notify
from tuangou.orders import service as orders
from tuangou.web import charts

router = APIRouter(prefix="/console", include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.globals.update(yuan=yuan, gauge=charts.gauge)
COOKIE = "tuangou_token"
CSRF_COOKIE = "tuangou_csrf"  # double-submit: every console form carries this cookie's value as `csrf`


def _page(request: Request, template: str, ctx: dict[str, Any], status_code: int = 200) -> Response:
    """Render with this browser's CSRF token (made on first visit) for the forms on the page."""
    token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = templates.TemplateResponse(request, template, {**ctx, "csrf": token}, status_code=status_code)
    response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict")
    return response


def _csrf_ok(request: Request, submitted: str) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), submitted.encode())


def _uow(request: Request, readonly: bool = True) -> UnitOfWork:
    return UnitOfWork(request.app.state.db, request.app.state.clock, readonly=readonly)


def _principal(request: Request) -> Principal | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        return authenticate(request, token)
    except DomainError:
        return None


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, error: str = "") -> Response:
    return _page(request, "login.html", {"error": error})


@router.post("/login")
def login(request: Request, email: str = Form(...), password: str = Form(...), csrf: str = Form("")) -> Response:
    if not _csrf_ok(request, csrf):
        return _page(request, "login.html", {"error": "the form expired; please sign in again"}, status_code=403)
    state = request.app.state
    address = request_address(request)
    try:
        state.login_guard.check(email, address)
        try:
            token, _ = accounts.log_in(_uow(request), email, password, state.keyring,
                                       timedelta(hours=state.settings.token_ttl_hours))
        except DomainError:
            state.login_guard.failed_attempt(email, address)
            raise
    except DomainError as exc:
        return _page(request, "login.html", {"error": exc.message}, status_code=exc.status)
    state.login_guard.succeeded(email, address)
    response = RedirectResponse("/console", status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="lax")
    return response


@router.post("/logout")
def logout(request: Request, csrf: str = Form("")) -> Response:
    if not _csrf_ok(request, csrf):
        return RedirectResponse("/console", status_code=303)
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


@router.get("", response_class=HTMLResponse)
def home(request: Request) -> Response:
    p = _principal(request)
    if p is None:
        return RedirectResponse("/console/login", status_code=303)
    ctx: dict[str, Any] = {"role": p.role.value,
                           "inbox": notify.inbox(_uow(request), p.user_id, limit=8)}
    if p.role == Role.BUYER:
        ctx["deals"] = catalog.list_deals(_uow(request), service_date=None, limit=50)
        ctx["orders"] = orders.list_orders(_uow(request), p, limit=10)
        return _page(request, "buyer.html", ctx)
    if p.role == Role.MERCHANT:
        ctx["deals"] = catalog.list_deals(_uow(request), service_date=None, merchant_id=p.merchant_id,
                                          status=None, limit=100)
        ctx["orders"] = orders.list_orders(_uow(request), p, limit=10)
        return _page(request, "merchant.html", ctx)
    if p.role != Role.OPS:  # leaders and suppliers have no console yet: their inbox only, never the audit log
        return _page(request, "inbox.html", ctx)
    ctx["merchants"] = accounts.list_merchants(_uow(request))
    ctx["audit"] = accounts.audit_log(_uow(request), cursor=None, limit=20, action=None)
    return _page(request, "ops.html", ctx)
