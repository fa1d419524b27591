"""The consoles: sign-in, language, each role's home; `install(app)` mounts every console page.

Pages are server-rendered from the same services the API calls (no second copy of a rule); every
form works without JavaScript and carries a CSRF token (session.check_csrf runs before each POST).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from tuangou.accounts import service as accounts
from tuangou.core.auth import Role
from tuangou.core.db import UnitOfWork
from tuangou.core.errors import DomainError
from tuangou.core.ratelimit import request_address
from tuangou.web import buyer, calendar, community, docs, i18n, merchant, ops, platform
from tuangou.web.session import (
    COOKIE,
    LANG_COOKIE,
    PageError,
    Redirect,
    check_csrf,
    is_https,
    principal,
    render,
    set_session,
)

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=[Depends(check_csrf)])
HOME = {Role.BUYER: "/console/buyer", Role.MERCHANT: "/console/merchant", Role.OPS: "/console/ops",
        Role.LEADER: "/console/partner", Role.SUPPLIER: "/console/partner"}


def install(app: FastAPI) -> None:
    """Mount the consoles and the offline API docs on the app; console errors render as HTML pages."""
    for r in (router, buyer.router, merchant.router, ops.router, platform.router, calendar.router,
              community.router):
        app.include_router(r)
    app.include_router(docs.router)
    docs.mount_assets(app)
    # our own small script, same origin: the consoles' CSP allows no inline script
    app.mount("/console/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="console-static")

    @app.exception_handler(Redirect)
    async def _redirect(_: Request, exc: Redirect) -> Response:
        return RedirectResponse(exc.location, status_code=303)

    @app.exception_handler(PageError)
    async def _page_error(request: Request, exc: PageError) -> Response:
        return render(request, "error.html", {"status": exc.status, "message": exc.message},
                      status_code=exc.status)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    return render(request, "login.html", {"error": ""})


@router.post("/login")
def login(request: Request, email: str = Form(...), password: str = Form(...)) -> Response:
    state = request.app.state
    uow = UnitOfWork(state.db, state.clock)
    address = request_address(request)
    try:
        state.login_guard.check(email, address)  # the API's lockout holds for the console too
        try:
            token, user = accounts.log_in(uow, email, password, state.keyring,
                                          timedelta(hours=state.settings.token_ttl_hours))
        except DomainError:
            state.login_guard.failed_attempt(email, address)
            raise
    except DomainError as exc:
        return render(request, "login.html", {"error": exc.message}, status_code=exc.status)
    state.login_guard.succeeded(email, address)
    response = RedirectResponse(HOME.get(Role(user.role), "/console"), status_code=303)
    set_session(request, response, token)
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE, httponly=True, samesite="lax", secure=is_https(request))
    return response


@router.post("/language")
def choose_language(request: Request, language: str = Form(...), next: str = Form("/console")) -> Response:
    """The reader's own choice of language wins over Accept-Language: saved on the account when signed in
    (every device follows it), and in a cookie for this browser (the sign-in page)."""
    if language not in i18n.LOCALES:
        raise PageError(422, "unknown language")
    p = principal(request)
    if p is not None:
        accounts.set_locale(UnitOfWork(request.app.state.db, request.app.state.clock), p, language)
    target = next if next.startswith("/console") else "/console"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(LANG_COOKIE, language, max_age=365 * 86400, httponly=True, samesite="lax",
                        secure=is_https(request))
    return response


@router.get("")
def home(request: Request) -> Response:
    p = principal(request)
    if p is None:
        return RedirectResponse("/console/login", status_code=303)
    return RedirectResponse(HOME.get(p.role, "/console/login"), status_code=303)
