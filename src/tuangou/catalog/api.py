"""Stores and deals over HTTP."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime, Field

from tuangou.catalog import rules, service
from tuangou.core.auth import Principal
from tuangou.core.http import Merchant, ReadUoW, UoW, optional_principal
from tuangou.core.input import Body

router = APIRouter(prefix="/api/v1", tags=["catalog"])


class NewStore(Body):
    name: str = Field(min_length=1, max_length=120)
    category: rules.Category
    timezone: str = Field(default="Asia/Shanghai", max_length=64)
    address: str = Field(default="", max_length=300)
    merchant_id: int | None = Field(default=None, description="ops only: the owning merchant")


class NewDeal(Body):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    kind: rules.DealKind = rules.DealKind.VOUCHER
    price_cents: int = Field(gt=0, le=100_000_000)
    original_price_cents: int = Field(gt=0, le=100_000_000)
    valid_from: AwareDatetime
    valid_until: AwareDatetime
    per_buyer_limit: int | None = Field(default=None, gt=0, le=10_000)
    daily_cap: int | None = Field(default=None, ge=0, le=10_000_000)
    total_cap: int | None = Field(default=None, ge=0, le=100_000_000)
    stock: int | None = Field(default=None, ge=0, le=100_000_000)
    slots: dict[str, int] | None = Field(default=None, description="time slot -> cap per day, e.g. {'18:00': 20}")
    large_promotion: bool = Field(default=False, description="buy-one-get-one and similar: needs a capacity audit")


class Reason(Body):
    reason: str = Field(default="", max_length=500)


def _optional_principal(request: Request) -> Principal | None:
    return optional_principal(request)


@router.post("/stores", status_code=201)
def create_store(body: NewStore, p: Merchant, uow: UoW) -> dict[str, Any]:
    return asdict(service.create_store(uow, p, body.name, body.category, body.timezone, body.address,
                                       body.merchant_id))


@router.get("/stores")
def list_stores(request: Request, uow: ReadUoW, merchant_id: int | None = None) -> dict[str, Any]:
    items = [asdict(s) for s in service.list_stores(uow, _optional_principal(request), merchant_id)]
    return {"items": items, "next_cursor": None}


@router.get("/stores/{store_id}")
def get_store(store_id: int, uow: ReadUoW) -> dict[str, Any]:
    return asdict(service.get_store(uow, store_id))


@router.post("/stores/{store_id}/deals", status_code=201, summary="Create a draft deal in a store")
def create_deal(store_id: int, body: NewDeal, p: Merchant, uow: UoW) -> dict[str, Any]:
    return asdict(service.create_deal(
        uow, p, store_id, title=body.title, kind=body.kind, price_cents=body.price_cents,
        original_price_cents=body.original_price_cents, valid_from=body.valid_from,
        valid_until=body.valid_until, description=body.description, per_buyer_limit=body.per_buyer_limit,
        daily_cap=body.daily_cap, total_cap=body.total_cap, stock=body.stock, slots=body.slots,
        large_promotion=body.large_promotion))


@router.post("/deals/{deal_id}/publish")
def publish_deal(deal_id: int, p: Merchant, uow: UoW, body: Reason | None = None) -> dict[str, Any]:
    return asdict(service.publish_deal(uow, p, deal_id, body.reason if body else ""))


@router.post("/deals/{deal_id}/delist")
def delist_deal(deal_id: int, p: Merchant, uow: UoW, body: Reason | None = None) -> dict[str, Any]:
    return asdict(service.delist_deal(uow, p, deal_id, body.reason if body else ""))


@router.get("/deals", summary="Published deals with availability on a date (default: each store's today)")
def list_deals(uow: ReadUoW, request: Request, date: date | None = None,
               category: rules.Category | None = None, store_id: int | None = None,
               merchant_id: int | None = None, status: rules.DealStatus = rules.DealStatus.PUBLISHED,
               cursor: int | None = None, limit: int = Query(50, ge=1, le=200)) -> dict[str, Any]:
    p = _optional_principal(request)
    if status != rules.DealStatus.PUBLISHED:
        # drafts and delisted deals are visible to their merchant and to ops only
        if p is None:
            status = rules.DealStatus.PUBLISHED
        elif p.role == "merchant":
            merchant_id = p.merchant_id
        elif p.role != "ops":
            status = rules.DealStatus.PUBLISHED
    items = service.list_deals(uow, service_date=date, category=category, store_id=store_id,
                               merchant_id=merchant_id, status=status, cursor=cursor, limit=limit)
    return {"items": items, "next_cursor": str(items[-1]["id"]) if len(items) == limit else None}


@router.get("/deals/{deal_id}")
def get_deal(deal_id: int, request: Request, uow: ReadUoW) -> dict[str, Any]:
    return asdict(service.get_deal(uow, deal_id, _optional_principal(request)))


@router.get("/deals/{deal_id}/calendar", summary="Cap, sold, reserved and status per service date")
def calendar(deal_id: int, request: Request, uow: ReadUoW) -> dict[str, Any]:
    return {"items": service.deal_calendar(uow, deal_id, _optional_principal(request))}


