"""Merchant console: deals and their capacity calendar — how each day's cap is made, lowering a cap
(applies at once), raising one through a change request with evidence, and disruptions."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from tuangou.capacity import rules as capacity_rules
from tuangou.capacity import service as capacity
from tuangou.catalog import rules as catalog_rules
from tuangou.catalog import service as catalog
from tuangou.core.auth import Principal, Role
from tuangou.core.errors import DomainError
from tuangou.governance import inventory
from tuangou.governance import service as governance
from tuangou.web.session import back, check_csrf, error_text, render, require, uow

router = APIRouter(prefix="/console/merchant", include_in_schema=False, dependencies=[Depends(check_csrf)])


def _me(request: Request) -> Principal:
    return require(request, Role.MERCHANT)


@router.get("/deals", response_class=HTMLResponse)
def deals(request: Request, error: str = "", raise_deal: int | None = None, raise_day: str = "",
          raise_cap: int | None = None) -> Response:
    p = _me(request)
    shown: list[dict[str, Any]] = []
    for d in catalog.list_deals(uow(request, True), service_date=None, merchant_id=p.merchant_id, status=None,
                                limit=100):
        try:
            days = capacity.daily_caps(uow(request, True), p, d["id"], None, 7)
        except DomainError:
            days = []  # goods and slot deals have no daily calendar
        shown.append({"deal": d, "days": days})
    stores = [{"store": s, "disruptions": capacity.list_disruptions(uow(request, True), p, s.id)}
              for s in catalog.list_stores(uow(request, True), p)]
    requests = inventory.list_change_requests(uow(request, True), p, None, None)
    return render(request, "merchant/deals.html", {
        "deals": shown, "stores": stores, "requests": requests[:20], "error": error,
        "kinds": [k.value for k in capacity_rules.DisruptionKind],
        "raise": {"deal": raise_deal, "day": raise_day, "cap": raise_cap} if raise_deal else None},
        status_code=409 if error else 200)


@router.post("/deals/{deal_id}/cap")
def set_cap(request: Request, deal_id: int, day: date = Form(...), cap: int = Form(..., ge=0, le=10_000_000),
            reason: str = Form("", max_length=500)) -> Response:
    """Lower a day's cap at once; a raise is refused with change_request_required, so the page offers the
    change-request form for it."""
    p = _me(request)
    try:
        governance.set_bucket_cap(uow(request), p, deal_id, catalog_rules.date_bucket(day), cap, reason)
    except DomainError as exc:
        if exc.code == "change_request_required":
            return deals(request, error=error_text(request, exc), raise_deal=deal_id, raise_day=day.isoformat(),
                         raise_cap=cap)
        return deals(request, error=error_text(request, exc))
    return back("/console/merchant/deals", "cap")


@router.post("/deals/{deal_id}/change-requests")
def file_change_request(request: Request, deal_id: int, bucket: Annotated[str, Form(max_length=40)],
                        requested_cap: Annotated[int, Form(ge=0, le=10_000_000)],
                        reason: Annotated[str, Form(min_length=1, max_length=500)],
                        evidence: Annotated[UploadFile, File()]) -> Response:
    p = _me(request)
    data = evidence.file.read(inventory.MAX_EVIDENCE_BYTES + 1)
    try:
        inventory.file_change_request(uow(request), p, deal_id, bucket=bucket, requested_cap=requested_cap,
                                      reason=reason, evidence_name=evidence.filename or "evidence",
                                      evidence_type=evidence.content_type or "application/octet-stream",
                                      evidence=data)
    except DomainError as exc:
        return deals(request, error=error_text(request, exc))
    return back("/console/merchant/deals", "requested")


@router.post("/stores/{store_id}/disruptions")
def report(request: Request, store_id: int, kind: str = Form(...), share_left: int = Form(100, ge=0, le=100),
           max_units: int | None = Form(None, ge=0, le=10_000_000), reason: str = Form("", max_length=500)
           ) -> Response:
    p = _me(request)
    try:
        capacity.report_disruption(uow(request), p, store_id, kind=kind, capacity_factor=share_left / 100,
                                   max_units=max_units, starts_at=None, ends_at=None, deal_id=None, reason=reason)
    except DomainError as exc:
        return deals(request, error=error_text(request, exc))
    return back("/console/merchant/deals", "disruption")


@router.post("/disruptions/{disruption_id}/end")
def end(request: Request, disruption_id: int) -> Response:
    p = _me(request)
    try:
        capacity.end_disruption(uow(request), p, disruption_id, "capacity is back")
    except DomainError as exc:
        return deals(request, error=error_text(request, exc))
    return back("/console/merchant/deals", "ended")
