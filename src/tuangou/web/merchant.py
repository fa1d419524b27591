"""Merchant console: today (live sales gauges, the 08:00 suggestion, warnings), redeem a voucher,
capacity declaration, orders, disputes, standing with deductions and appeals."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from tuangou.capacity import service as capacity
from tuangou.catalog import service as catalog
from tuangou.core.auth import Principal, Role
from tuangou.core.errors import DomainError, NotFound
from tuangou.disputes import inkind
from tuangou.disputes import service as disputes
from tuangou.merchants import casework
from tuangou.merchants import service as merchants
from tuangou.notify import service as notify
from tuangou.orders import service as orders
from tuangou.web.session import back, check_csrf, error_text, render, require, uow

router = APIRouter(prefix="/console/merchant", include_in_schema=False, dependencies=[Depends(check_csrf)])
WARNINGS = ("red_line_warning", "sold_out", "deal_delisted")


def _me(request: Request) -> Principal:
    return require(request, Role.MERCHANT)


def _today(request: Request, p: Principal) -> dict[str, Any]:
    deals = catalog.list_deals(uow(request, True), service_date=None, merchant_id=p.merchant_id, status=None,
                               limit=100)
    red = capacity.get_policy(uow(request, True))["red_flag_percent"] / 100
    return {"deals": deals, "red_at": red}


@router.get("", response_class=HTMLResponse)
def today(request: Request) -> Response:
    p = _me(request)
    inbox = notify.inbox(uow(request, True), p.user_id, limit=50)
    ctx = {**_today(request, p),
           "suggestions": [n for n in inbox if n.kind == "stock_suggestion"][:5],
           "warnings": [n for n in inbox if n.kind in WARNINGS][:8],
           "stores": {s.id: s for s in catalog.list_stores(uow(request, True), p)}}
    return render(request, "merchant/today.html", ctx)


@router.get("/gauges", response_class=HTMLResponse)
def gauges(request: Request) -> Response:
    """The gauges alone: the today page swaps them in every few seconds (no reload needed)."""
    return render(request, "merchant/_gauges.html", _today(request, _me(request)))


@router.get("/redeem", response_class=HTMLResponse)
def redeem_form(request: Request) -> Response:
    _me(request)
    return render(request, "merchant/redeem.html", {"result": None, "error": "", "code": ""})


@router.post("/redeem", response_class=HTMLResponse)
def redeem(request: Request, code: str = Form(..., max_length=64)) -> Response:
    p = _me(request)
    try:
        try:
            result = orders.redeem_voucher(uow(request), p, code, request.app.state.settings.platform_commission_bps)
        except NotFound:  # not a deal's voucher: perhaps a free item given as compensation (in kind)
            served = inkind.redeem_item_voucher(uow(request), p, code)
            return render(request, "merchant/redeem.html", {"result": None, "served": served, "error": "",
                                                            "code": ""})
    except DomainError as exc:
        return render(request, "merchant/redeem.html", {"result": None, "error": error_text(request, exc),
                                                        "code": code}, status_code=exc.status)
    deal = catalog.get_deal(uow(request, True), result["deal_id"], p)
    return render(request, "merchant/redeem.html", {"result": {**result, "title": deal.title,
                                                               "timezone": deal.timezone},
                                                    "error": "", "code": ""})


@router.get("/capacity", response_class=HTMLResponse)
def capacity_page(request: Request, error: str = "", daily_reception: int | None = None,
                  activity_days: int | None = None) -> Response:
    p = _me(request)
    safe = None
    if daily_reception is not None and activity_days is not None:
        try:
            safe = capacity.safe_sales_calculator(uow(request, True), daily_reception, activity_days)
        except DomainError as exc:
            error = error_text(request, exc)
    stores = []
    for s in catalog.list_stores(uow(request, True), p):
        try:
            decl = capacity.get_declaration(uow(request, True), p, s.id)
        except DomainError:
            decl = None
        stores.append({"store": s, "declaration": decl})
    return render(request, "merchant/capacity.html", {"stores": stores, "error": error, "safe": safe,
                                                      "daily_reception": daily_reception or "",
                                                      "activity_days": activity_days or ""})


@router.post("/stores/{store_id}/capacity")
def declare(request: Request, store_id: int, opens: str = Form("10:00"), closes: str = Form("20:00"),
            staff: int | None = Form(None), per_staff_per_hour: float | None = Form(None),
            max_reception_per_day: int | None = Form(None), machine_name: str = Form(""),
            machine_per_hour: float | None = Form(None)) -> Response:
    p = _me(request)
    machines = [{"name": machine_name.strip(), "per_hour": machine_per_hour, "count": 1}] \
        if machine_name.strip() and machine_per_hour is not None else []
    decl = {"opens": opens, "closes": closes, "staff": staff, "per_staff_per_hour": per_staff_per_hour,
            "ingredient_units_per_day": None, "max_reception_per_day": max_reception_per_day, "machines": machines}
    try:
        capacity.declare_capacity(uow(request), p, store_id, decl, {}, {})
    except DomainError as exc:
        return capacity_page(request, error=error_text(request, exc))
    return back("/console/merchant/capacity", "declared")


@router.get("/orders", response_class=HTMLResponse)
def orders_page(request: Request) -> Response:
    p = _me(request)
    items = orders.list_orders(uow(request, True), p, limit=100)
    titles = {d["id"]: d["title"] for d in catalog.list_deals(uow(request, True), service_date=None,
                                                               merchant_id=p.merchant_id, status=None, limit=500)}
    return render(request, "merchant/orders.html", {"orders": items, "titles": titles})


@router.get("/disputes", response_class=HTMLResponse)
def disputes_page(request: Request, error: str = "") -> Response:
    p = _me(request)
    return render(request, "merchant/disputes.html",
                  {"disputes": disputes.list_disputes(uow(request, True), p, limit=100), "error": error},
                  status_code=409 if error else 200)


@router.post("/disputes/{dispute_id}/admit")
def admit(request: Request, dispute_id: int, reason: str = Form("", max_length=500)) -> Response:
    """The merchant admits it cannot honour the order: the buyer is made whole at once (platform pays first)."""
    p = _me(request)
    try:
        disputes.confirm_dispute(uow(request), p, dispute_id, reason or "admitted by the merchant",
                                 gateway=request.app.state.payment_gateway)
    except DomainError as exc:
        return disputes_page(request, error=error_text(request, exc))
    return back("/console/merchant/disputes", "admitted")


@router.post("/disputes/{dispute_id}/contest")
def contest(request: Request, dispute_id: int, note: str = Form(..., min_length=1, max_length=2000)) -> Response:
    p = _me(request)
    try:
        disputes.contest_dispute(uow(request), p, dispute_id, note, [])
    except DomainError as exc:
        return disputes_page(request, error=error_text(request, exc))
    return back("/console/merchant/disputes", "contested")


@router.get("/standing", response_class=HTMLResponse)
def standing(request: Request, error: str = "") -> Response:
    p = _me(request)
    assert p.merchant_id is not None
    st = merchants.standing(uow(request, True), p, p.merchant_id)
    history = merchants.score_history(uow(request, True), p, p.merchant_id)
    appeals = casework.list_appeals(uow(request, True), p)
    appealed = {a["target"] for a in appeals}
    series: dict[str, list[int]] = {}
    for e in history["entries"]:
        if e["category"]:
            series.setdefault(e["category"], [history["start_score"]]).append(e["score_after"])
    return render(request, "merchant/standing.html",
                  {"standing": st, "history": history, "appeals": appeals, "appealed": appealed, "series": series,
                   "error": error})


@router.post("/appeals")
def file_appeal(request: Request, target: Annotated[str, Form(max_length=40)],
                statement: Annotated[str, Form(min_length=1, max_length=4000)],
                files: Annotated[list[UploadFile] | None, File()] = None) -> Response:
    p = _me(request)
    uploads = []
    for f in files or []:
        data = f.file.read(casework.MAX_FILE_BYTES + 1)
        if f.filename and data:
            uploads.append((f.filename, f.content_type or "application/octet-stream", data))
    try:
        casework.file_appeal(uow(request), p, target=target, statement=statement, files=uploads)
    except DomainError as exc:
        return standing(request, error=error_text(request, exc))
    return back("/console/merchant/standing", "appealed")
