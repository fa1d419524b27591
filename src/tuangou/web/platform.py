"""Ops console, platform side: the policy editor (every policy: current value, default, change history
with who and why), over-sale incidents, and platform charts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from tuangou.accounts import service as accounts
from tuangou.campaigns import rules as campaign_rules
from tuangou.campaigns import service as campaigns
from tuangou.capacity import rules as capacity_rules
from tuangou.capacity import service as capacity
from tuangou.core.auth import Principal, Role
from tuangou.core.db import UnitOfWork
from tuangou.core.errors import DomainError
from tuangou.disputes import policy as dispute_policy
from tuangou.disputes import rules as dispute_rules
from tuangou.disputes import service as disputes
from tuangou.disputes import stacking
from tuangou.governance import service as governance
from tuangou.merchants import rules as merchant_rules
from tuangou.merchants import service as merchants
from tuangou.orders import service as orders
from tuangou.web.i18n import N_, translations
from tuangou.web.session import PageError, back, check_csrf, error_text, locale, render, require, uow

router = APIRouter(prefix="/console/ops", include_in_schema=False, dependencies=[Depends(check_csrf)])
Setter = Callable[[UnitOfWork, Principal, dict[str, Any], str], dict[str, Any]]
# name -> (title, read, change, seed defaults, audit action of a change)
POLICIES: dict[str, tuple[str, Callable[[UnitOfWork], dict[str, Any]], Setter, Callable[[], dict[str, Any]], str]] = {
    "governance": (N_("Capacity governance"), capacity.get_policy, capacity.set_policy,
                   lambda: asdict(capacity_rules.GovernancePolicy()), "set_governance_policy"),
    "disputes": (N_("Disputes and compensation"), dispute_policy.get_policy, dispute_policy.update_policy,
                 lambda: dispute_rules.DisputePolicy().to_dict(), "update_dispute_policy"),
    "accountability": (N_("Merchant accountability"), merchants.get_policy, merchants.set_policy,
                       lambda: merchant_rules.AccountabilityPolicy().to_dict(), "set_accountability_policy"),
    "campaigns": (N_("Campaigns"), campaigns.get_policy, campaigns.set_policy,
                  lambda: campaign_rules.CampaignPolicy().as_dict(), "set_campaign_policy"),
}


def _ops(request: Request) -> Principal:
    return require(request, Role.OPS)


def _editable(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


@router.get("/policies", response_class=HTMLResponse)
def policies(request: Request, error: str = "") -> Response:
    _ops(request)
    shown = []
    for name, (title, read, _, defaults, action) in POLICIES.items():
        current, seed = read(uow(request, True)), defaults()
        history = accounts.audit_log(uow(request, True), cursor=None, limit=20, action=action)
        shown.append({"name": name, "title": title, "history": history,
                      "fields": [{"key": k, "value": v, "default": seed.get(k), "editable": _editable(v)}
                                 for k, v in current.items()]})
    return render(request, "ops/policies.html", {"policies": shown, "error": error},
                  status_code=422 if error else 200)


def _parse(raw: str, current: Any) -> Any:
    """A form field back to the type the policy holds (the policy itself validates the value)."""
    if isinstance(current, bool):
        return raw in ("true", "on", "1")
    if raw.strip() == "" and current is None:
        return None
    if isinstance(current, int) or current is None:
        return int(raw)
    if isinstance(current, float):
        return float(raw)
    return raw


@router.post("/policies/{name}")
async def change_policy(request: Request, name: str) -> Response:
    """The fields differ per policy, so the form is read whole; the storage work runs off the event loop."""
    form = await request.form()
    return await run_in_threadpool(_change_policy, request, name, {k: str(v) for k, v in form.items()})


def _change_policy(request: Request, name: str, form: dict[str, str]) -> Response:
    p = _ops(request)
    if name not in POLICIES:
        raise PageError(404, "no such policy")
    _, read, change, _, _ = POLICIES[name]
    current = read(uow(request, True))
    changes: dict[str, Any] = {}
    try:
        for key, value in current.items():
            if _editable(value) and key in form and (new := _parse(form[key], value)) != value:
                changes[key] = new
    except ValueError:
        return policies(request, error=f"{name}: not a number")
    if not changes:
        return back("/console/ops/policies")
    try:
        change(uow(request), p, changes, form.get("reason", ""))
    except DomainError as exc:
        return policies(request, error=error_text(request, exc))
    return back("/console/ops/policies", "changed")


@router.get("/incidents", response_class=HTMLResponse)
def incidents(request: Request) -> Response:
    p = _ops(request)
    return render(request, "ops/incidents.html", {"incidents": governance.list_incidents(uow(request, True), p)})


def _per_day(stamps: list[str], now: datetime, days: int = 14) -> list[tuple[str, int]]:
    counts = Counter(s[:10] for s in stamps)
    dates = [(now - timedelta(days=i)).date().isoformat() for i in range(days - 1, -1, -1)]
    return [(d[5:], counts.get(d, 0)) for d in dates]


@router.get("/charts", response_class=HTMLResponse)
def charts_page(request: Request) -> Response:
    p = _ops(request)
    now = request.app.state.clock.now()
    recent_orders = orders.list_orders(uow(request, True), p, limit=200)
    recent_disputes = disputes.list_disputes(uow(request, True), p, limit=200)
    claims = stacking.list_recoveries(uow(request, True), p)
    paid = sum(c["amount_cents"] for c in claims["items"])
    recovered = sum(c["amount_cents"] for c in claims["items"] if c["status"] == "recovered")
    return render(request, "ops/charts.html", {
        "orders": _per_day([o.created_at for o in recent_orders], now),
        "incidents": _per_day([i["created_at"] for i in governance.list_incidents(uow(request, True), p)], now),
        "disputes": _per_day([d.opened_at for d in recent_disputes], now),
        "tiers": [(translations(locale(request)).gettext(t), n)
                  for t, n in sorted(Counter(d.tier for d in recent_disputes).items())],
        "paid_cents": paid, "recovered_cents": recovered})


STAFF_ROLES = (Role.OPS, Role.LEADER, Role.SUPPLIER)


@router.get("/users", response_class=HTMLResponse)
def users(request: Request, error: str = "") -> Response:
    _ops(request)
    created = [*accounts.audit_log(uow(request, True), cursor=None, limit=50, action="create_user"),
               *accounts.audit_log(uow(request, True), cursor=None, limit=50, action="create_merchant")]
    return render(request, "ops/users.html", {"created": sorted(created, key=lambda a: str(a["at"]), reverse=True),
                                              "roles": [r.value for r in STAFF_ROLES], "error": error},
                  status_code=422 if error else 200)


@router.post("/users")
def create_user(request: Request, email: str = Form(..., max_length=200), password: str = Form(..., min_length=8),
                role: str = Form(...), name: str = Form("", max_length=120),
                reason: str = Form(..., min_length=1, max_length=500)) -> Response:
    """Ops create staff, group-leader and supplier accounts (merchants below, with their first login)."""
    p = _ops(request)
    if role not in [r.value for r in STAFF_ROLES]:
        raise PageError(422, "unknown role")
    try:
        accounts.create_user(uow(request), p, email, password, Role(role), name, reason=reason)
    except DomainError as exc:
        return users(request, error=error_text(request, exc))
    return back("/console/ops/users", "created")


@router.post("/merchants")
def create_merchant(request: Request, name: str = Form(..., min_length=1, max_length=120),
                    owner_email: str = Form(..., max_length=200), password: str = Form(..., min_length=8),
                    reason: str = Form(..., min_length=1, max_length=500)) -> Response:
    p = _ops(request)
    try:
        accounts.create_merchant(uow(request), p, name, owner_email, password, reason=reason)
    except DomainError as exc:
        return users(request, error=error_text(request, exc))
    return back("/console/ops/users", "created")
