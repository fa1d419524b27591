"""Who is signed in, which language they read, CSRF tokens, and rendering a page for them.

The session cookie holds the same signed bearer token as the API (HttpOnly, SameSite=Lax, Secure
behind https). Every form carries a CSRF token: an HMAC of a per-browser random nonce kept in its
own HttpOnly cookie, checked on every POST under /console before the handler runs.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from tuangou.accounts import service as accounts
from tuangou.core.auth import Principal, Role
from tuangou.core.db import UnitOfWork
from tuangou.core.errors import DomainError
from tuangou.core.http import authenticate
from tuangou.web import charts, i18n

COOKIE = "tuangou_token"
CSRF_COOKIE = "tuangou_csrf"
LANG_COOKIE = "tuangou_lang"
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.globals.update(yuan=i18n.yuan, charts=charts)


class Redirect(Exception):
    """Raised by a page that needs something first (a sign-in): the browser is sent to `location`."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


class PageError(Exception):
    """A console page that cannot be shown: rendered as an HTML page, never problem+json."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def is_https(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


def principal(request: Request) -> Principal | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        return authenticate(request, token)  # signature, expiry, and the user still active at its token version
    except DomainError:
        return None


def require(request: Request, *roles: Role) -> Principal:
    """The signed-in principal with one of `roles`; anyone else gets the sign-in page or a 404 (the
    page does not exist for them: supplier and leader accounts never learn the ops console's paths)."""
    p = principal(request)
    if p is None:
        raise Redirect("/console/login")
    if roles and p.role not in roles:
        raise PageError(404, "no such page")
    return p


def locale(request: Request) -> str:
    """The signed-in user's own setting, else this browser's choice, else Accept-Language, else zh-CN."""
    if not hasattr(request.state, "locale"):
        p = principal(request)
        chosen = accounts.locale_of(uow(request, True), p.user_id) if p is not None else None
        request.state.locale = i18n.negotiate(chosen or request.cookies.get(LANG_COOKIE),
                                              request.headers.get("accept-language"))
    return str(request.state.locale)


def _nonce(request: Request) -> str:
    if not hasattr(request.state, "csrf_nonce"):
        request.state.csrf_nonce = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    return str(request.state.csrf_nonce)


def csrf_token(request: Request) -> str:
    key = request.app.state.settings.secret_key.encode()
    return hmac.new(key, b"csrf:" + _nonce(request).encode(), hashlib.sha256).hexdigest()


async def check_csrf(request: Request) -> None:
    """Router dependency: every POST must carry the token of this browser's nonce."""
    if request.method != "POST":
        return
    nonce = request.cookies.get(CSRF_COOKIE)
    form = await request.form()
    sent = str(form.get("csrf") or request.headers.get("x-csrf-token") or "")
    if not nonce or not hmac.compare_digest(sent, csrf_token(request)):
        raise PageError(403, "the form expired or came from another site; reload and try again")


def set_session(request: Request, response: Response, token: str) -> None:
    response.set_cookie(COOKIE, token, httponly=True, samesite="lax", secure=is_https(request),
                        max_age=request.app.state.settings.token_ttl_hours * 3600)


def render(request: Request, name: str, ctx: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    loc = locale(request)
    tr = i18n.translations(loc)
    p = principal(request)
    tz = request.app.state.settings.default_timezone
    base = {"_": tr.gettext, "ngettext": tr.ngettext, "lang": i18n.HTML_LANG[loc], "locale": loc,
            "csrf": csrf_token(request), "me": p, "role": p.role.value if p else "",
            "when": lambda v, zone=None, with_date=True: i18n.local_time(v, zone or tz, with_date),
            "path": request.url.path, "flash": request.query_params.get("ok", ""),
            "demo_mode": request.app.state.settings.demo_mode}
    response = templates.TemplateResponse(request, name, {**base, **ctx}, status_code=status_code)
    if request.cookies.get(CSRF_COOKIE) != _nonce(request):
        response.set_cookie(CSRF_COOKIE, _nonce(request), httponly=True, samesite="strict", secure=is_https(request))
    return response


def back(url: str, ok: str = "") -> RedirectResponse:
    """Post/redirect/get: after an action, show the page again with a short confirmation."""
    sep = "&" if "?" in url else "?"
    return RedirectResponse(f"{url}{sep}ok={ok}" if ok else url, status_code=303)


def error_text(request: Request, exc: DomainError) -> str:
    """A refusal in words, in the reader's language (known codes are translated, others as given)."""
    tr = i18n.translations(locale(request))
    known = REFUSALS.get(exc.code)
    return tr.gettext(known) if known else exc.message


N_ = i18n.N_
REFUSALS = {
    "already_redeemed": N_("This voucher was already redeemed."),
    "voucher_not_usable": N_("This voucher cannot be used (refunded or not paid)."),
    "voucher_expired": N_("This voucher's deal is no longer valid."),
    "voucher_wrong_date": N_("This voucher is booked for another day; the buyer may ask to move the booking."),
    "not_found": N_("Not found: check the code and try again."),
    "item_voucher_not_found": N_("Not found: check the code and try again."),
    "item_voucher_wrong_merchant": N_("This free item is served by another merchant."),
    "item_voucher_used": N_("This free item was already served."),
    "item_voucher_expired": N_("This free item's voucher has expired."),
    "sold_out": N_("Sold out for that day."),
    "cap_exceeded": N_("Not enough left for that quantity."),
    "per_buyer_limit": N_("That is more than one buyer may buy."),
    "dispute_exists": N_("This order already has an open dispute."),
    "not_disputable": N_("Only paid or completed orders can be disputed."),
    "payment_declined": N_("The payment was declined."),
    "forbidden": N_("You may not do that."),
    "intake_limit": N_("This shop takes no more orders today."),
    "exam_cooldown": N_("The last attempt did not pass; the exam can be taken again after the cool-down."),
    "listing_suspended": N_("New listings are suspended for now (see your standing)."),
    "promotion_banned": N_("Promotions are banned for now (see your standing)."),
    "deposit_below_minimum": N_("Top up your deposit to the category's minimum before publishing."),
    "reason_required": N_("Give a reason for this decision."),
}


def uow(request: Request, readonly: bool = False) -> UnitOfWork:
    return UnitOfWork(request.app.state.db, request.app.state.clock, readonly=readonly)
