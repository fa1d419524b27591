"""Buyer console (phone first): deals as the API ranks them, deal -> order -> pay (sandbox) -> vouchers
as QR codes, open a dispute, coupons and inbox."""

from __future__ import annotations

import secrets
from typing import Any

import segno
from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from tuangou.catalog import service as catalog
from tuangou.core.auth import Principal, Role
from tuangou.core.errors import DomainError
from tuangou.disputes import coupons, tickets
from tuangou.disputes import rules as dispute_rules
from tuangou.disputes import service as disputes
from tuangou.notify import service as notify
from tuangou.orders import rules as order_rules
from tuangou.orders import service as orders
from tuangou.web.session import PageError, back, check_csrf, error_text, render, require, uow

router = APIRouter(prefix="/console/buyer", include_in_schema=False, dependencies=[Depends(check_csrf)])
DISPUTABLE = (order_rules.OrderStatus.PAID, order_rules.OrderStatus.COMPLETED)


def _me(request: Request) -> Principal:
    return require(request, Role.BUYER)


def qr_svg(code: str) -> str:
    """The voucher's QR code (the API's `qr` payload) as inline SVG: no image request, scales on any screen."""
    return str(segno.make(order_rules.qr_payload(code), error="m").svg_inline(scale=4, dark="#202124"))


@router.get("", response_class=HTMLResponse)
def deals(request: Request) -> Response:
    _me(request)
    return render(request, "buyer/deals.html", {"deals": catalog.list_deals(uow(request, True), service_date=None,
                                                                            limit=50)})


def _deal(request: Request, deal_id: int, p: Principal) -> dict[str, Any]:
    found = catalog.list_deals(uow(request, True), service_date=None, status=None, order_ids=[deal_id], limit=1)
    if not found or found[0]["status"] == "draft":
        raise PageError(404, "no such deal")
    return found[0]


@router.get("/deals/{deal_id}", response_class=HTMLResponse)
def deal(request: Request, deal_id: int, error: str = "") -> Response:
    p = _me(request)
    return render(request, "buyer/deal.html", {"deal": _deal(request, deal_id, p), "error": error,
                                               "key": secrets.token_urlsafe(12)}, status_code=409 if error else 200)


@router.post("/deals/{deal_id}/order")
def place(request: Request, deal_id: int, quantity: int = Form(1, ge=1, le=100), key: str = Form(..., max_length=64),
          coupon_code: str = Form("", max_length=24)) -> Response:
    """The form's one-time key is the Idempotency-Key: a double tap or a resubmit gives the same order."""
    p = _me(request)
    try:
        order, _ = orders.place_order(uow(request), p, deal_id, quantity, f"console-{key}",
                                      ttl_minutes=request.app.state.settings.reservation_ttl_minutes,
                                      coupon_code=coupon_code.strip() or None)
    except DomainError as exc:
        return deal(request, deal_id, error=error_text(request, exc))
    return back(f"/console/buyer/orders/{order.id}")


@router.get("/orders", response_class=HTMLResponse)
def order_list(request: Request) -> Response:
    p = _me(request)
    items = orders.list_orders(uow(request, True), p, limit=50)
    titles = {d["id"]: d["title"] for d in catalog.list_deals(
        uow(request, True), service_date=None, status=None, order_ids=sorted({o.deal_id for o in items}), limit=200)}
    return render(request, "buyer/orders.html", {"orders": items, "titles": titles})


@router.get("/orders/{order_id}", response_class=HTMLResponse)
def order_page(request: Request, order_id: int, error: str = "") -> Response:
    p = _me(request)
    try:
        order = orders.get_order(uow(request, True), p, order_id)
    except DomainError as exc:
        raise PageError(404, "no such order") from exc
    open_disputes = [d for d in disputes.list_disputes(uow(request, True), p, limit=200) if d.order_id == order_id]
    return render(request, "buyer/order.html", {
        "order": order, "deal": _deal(request, order.deal_id, p), "error": error, "key": secrets.token_urlsafe(12),
        "qr": {v["code"]: qr_svg(v["code"]) for v in order.vouchers if v["status"] == "issued"},
        "disputes": open_disputes, "may_dispute": order.status in DISPUTABLE
        and not any(d.status in ("open", "contested", "escalated") for d in open_disputes),
        "kinds": [k.value for k in dispute_rules.DisputeKind],
        "tickets": [t for t in tickets.list_tickets(uow(request, True), p) if t["order_id"] == order_id]},
        status_code=409 if error else 200)


@router.post("/orders/{order_id}/pay")
def pay(request: Request, order_id: int, key: str = Form(..., max_length=64)) -> Response:
    p = _me(request)
    try:
        _, payment = orders.pay_order(uow(request), p, order_id, f"console-{key}",
                                      request.app.state.payment_gateway)
    except DomainError as exc:
        return order_page(request, order_id, error=error_text(request, exc))
    if payment.get("status") == order_rules.PaymentStatus.FAILED:
        return back(f"/console/buyer/orders/{order_id}", "declined")
    return back(f"/console/buyer/orders/{order_id}", "paid")


@router.post("/orders/{order_id}/dispute")
def open_dispute(request: Request, order_id: int, kind: str = Form(...),
                 description: str = Form("", max_length=2000), photo: str = Form("", max_length=200)) -> Response:
    p = _me(request)
    evidence = [{"kind": "photo", "name": photo}] if photo.strip() else []
    try:
        disputes.open_dispute(uow(request), p, order_id, kind, description, evidence=evidence,
                              gateway=request.app.state.payment_gateway)
    except DomainError as exc:
        return order_page(request, order_id, error=error_text(request, exc))
    return back(f"/console/buyer/orders/{order_id}", "disputed")


@router.post("/orders/{order_id}/ticket")
def open_ticket(request: Request, order_id: int, description: str = Form(..., min_length=1, max_length=2000),
                photos: list[UploadFile] | None = File(None)) -> Response:
    """An after-sales ticket with photos: the file names and sizes go to triage (the bytes stay here)."""
    p = _me(request)
    meta = [{"name": (f.filename or "photo")[:200], "size_bytes": f.size or 0} for f in photos or [] if f.filename]
    try:
        tickets.open_ticket(uow(request), p, order_id, description, meta[:10])
    except DomainError as exc:
        return order_page(request, order_id, error=error_text(request, exc))
    return back(f"/console/buyer/orders/{order_id}", "ticket")


@router.post("/tickets/{ticket_id}/choice")
def choose(request: Request, ticket_id: int, order_id: int = Form(...), proposal: int = Form(..., ge=0, le=20)
           ) -> Response:
    p = _me(request)
    try:
        tickets.choose(uow(request), p, ticket_id, proposal)
    except DomainError as exc:
        return order_page(request, order_id, error=error_text(request, exc))
    return back(f"/console/buyer/orders/{order_id}", "chosen")


@router.get("/me", response_class=HTMLResponse)
def me(request: Request) -> Response:
    p = _me(request)
    return render(request, "buyer/me.html", {"coupons": coupons.list_coupons(uow(request, True), p),
                                             "inbox": notify.inbox(uow(request, True), p.user_id, limit=30)})
