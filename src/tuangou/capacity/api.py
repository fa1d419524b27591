"""Capacity over HTTP: policy, declarations, consumption, audits, disruptions, daily caps, safe sales."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, Field

from tuangou.capacity import service
from tuangou.core.http import Auth, Merchant, Ops, ReadUoW, UoW
from tuangou.core.input import Body

router = APIRouter(prefix="/api/v1", tags=["capacity"])


class PolicyChange(Body):
    changes: dict[str, Any] = Field(description="fields of the governance policy to change")
    reason: str = Field(min_length=1, max_length=500)


class MachineIn(Body):
    name: str = Field(min_length=1, max_length=60)
    per_hour: float = Field(ge=0, le=1_000_000)
    count: int = Field(default=1, ge=0, le=1000)


class DeclarationIn(Body):
    opens: str = Field(default="10:00", pattern=r"^\d{2}:\d{2}$")
    closes: str = Field(default="20:00", pattern=r"^\d{2}:\d{2}$")
    staff: int | None = Field(default=None, ge=0, le=100_000)
    per_staff_per_hour: float | None = Field(default=None, ge=0, le=100_000)
    ingredient_units_per_day: float | None = Field(default=None, ge=0, le=10_000_000)
    max_reception_per_day: int | None = Field(default=None, ge=0, le=10_000_000)
    machines: list[MachineIn] = Field(default_factory=list, max_length=50)
    storage_units: float | None = Field(default=None, ge=0, le=10_000_000,
                                        description="units the store holds at once (a cold room): goods deals' cap")
    weekday_factors: dict[int, float] = Field(default_factory=dict, description="0=Monday .. 6=Sunday -> factor")
    holidays: dict[date, float] = Field(default_factory=dict, description="date -> factor")


class ConsumptionIn(Body):
    consumption: dict[str, float] = Field(description="resource (staff, ingredients, reception, machine:<name>) "
                                                      "-> units used by one deal unit")


class InspectionIn(Body):
    findings: dict[str, Any] = Field(description="declaration fields as found on site, e.g. "
                                                 "{'machines': [{'name': 'sealer', 'per_hour': 40}]}")
    note: str = Field(default="", max_length=2000)
    reason: str = Field(min_length=1, max_length=500)


class Decision(Body):
    reason: str = Field(min_length=1, max_length=500)


class DisruptionIn(Body):
    kind: str = Field(description="chef_on_leave | ingredients_short | machine_broken | other")
    capacity_factor: float = Field(default=1.0, ge=0, le=1, description="share of capacity left")
    max_units: int | None = Field(default=None, ge=0, le=10_000_000, description="absolute limit per day")
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    deal_id: int | None = Field(default=None, description="only this deal (default: the whole store)")
    reason: str = Field(default="", max_length=500)


@router.get("/governance-policy", summary="Capacity governance policy (thresholds, coupon, factors, 08:00)")
def get_policy(p: Auth, uow: ReadUoW) -> dict[str, Any]:
    return service.get_policy(uow)


@router.put("/governance-policy", summary="Ops change policy numbers (audited)")
def set_policy(body: PolicyChange, p: Ops, uow: UoW) -> dict[str, Any]:
    return service.set_policy(uow, p, body.changes, body.reason)


@router.put("/stores/{store_id}/capacity-declaration", summary="Declare a store's capacity and day factors")
def declare(store_id: int, body: DeclarationIn, p: Merchant, uow: UoW) -> dict[str, Any]:
    decl = body.model_dump(exclude={"weekday_factors", "holidays"})
    return service.declare_capacity(uow, p, store_id, decl, body.weekday_factors, body.holidays)


@router.get("/stores/{store_id}/capacity-declaration")
def get_declaration(store_id: int, p: Merchant, uow: ReadUoW) -> dict[str, Any]:
    return service.get_declaration(uow, p, store_id)


@router.put("/deals/{deal_id}/consumption", summary="What one unit of the deal uses of each resource")
def set_consumption(deal_id: int, body: ConsumptionIn, p: Merchant, uow: UoW) -> dict[str, Any]:
    return service.set_consumption(uow, p, deal_id, body.consumption)


@router.post("/deals/{deal_id}/capacity-audits", status_code=201, summary="File a pre-sale capacity audit")
def request_audit(deal_id: int, p: Merchant, uow: UoW) -> dict[str, Any]:
    return service.request_audit(uow, p, deal_id)


@router.get("/capacity-audits")
def list_audits(p: Merchant, uow: ReadUoW, status: str | None = None, deal_id: int | None = None) -> dict[str, Any]:
    return {"items": service.list_audits(uow, p, status, deal_id), "next_cursor": None}


@router.post("/capacity-audits/{audit_id}/inspection", summary="Ops record on-site inspection findings")
def inspect(audit_id: int, body: InspectionIn, p: Ops, uow: UoW) -> dict[str, Any]:
    return service.record_inspection(uow, p, audit_id, body.findings, body.note, body.reason)


@router.post("/capacity-audits/{audit_id}/approve", summary="Ops approve: the tightest bottleneck is the cap")
def approve(audit_id: int, body: Decision, p: Ops, uow: UoW) -> dict[str, Any]:
    return service.decide_audit(uow, p, audit_id, True, body.reason)


@router.post("/capacity-audits/{audit_id}/reject")
def reject(audit_id: int, body: Decision, p: Ops, uow: UoW) -> dict[str, Any]:
    return service.decide_audit(uow, p, audit_id, False, body.reason)


@router.post("/stores/{store_id}/disruptions", status_code=201, summary="Report lost capacity; caps follow at once")
def report(store_id: int, body: DisruptionIn, p: Merchant, uow: UoW) -> dict[str, Any]:
    return service.report_disruption(uow, p, store_id, kind=body.kind, capacity_factor=body.capacity_factor,
                                     max_units=body.max_units, starts_at=body.starts_at, ends_at=body.ends_at,
                                     deal_id=body.deal_id, reason=body.reason)


@router.get("/stores/{store_id}/disruptions")
def list_disruptions(store_id: int, p: Merchant, uow: ReadUoW) -> dict[str, Any]:
    return {"items": service.list_disruptions(uow, p, store_id), "next_cursor": None}


@router.post("/disruptions/{disruption_id}/end", summary="Capacity is back; caps follow at once")
def end(disruption_id: int, p: Merchant, uow: UoW, body: Decision | None = None) -> dict[str, Any]:
    return service.end_disruption(uow, p, disruption_id, body.reason if body else "")


@router.get("/deals/{deal_id}/daily-caps", summary="How each day's cap is made: base x factor x disruptions")
def daily_caps(deal_id: int, p: Merchant, uow: ReadUoW, start: date | None = Query(None, alias="from"),
               days: int = Query(7, ge=1, le=62)) -> dict[str, Any]:
    return {"items": service.daily_caps(uow, p, deal_id, start, days)}


@router.get("/safe-sales", summary="Safe-sales calculator: daily reception x activity days x 0.8")
def safe_sales(uow: ReadUoW, daily_reception: int = Query(ge=0, le=10_000_000),
               activity_days: int = Query(ge=1, le=366)) -> dict[str, Any]:
    return service.safe_sales_calculator(uow, daily_reception, activity_days)


@router.get("/stores/{store_id}/safe-sales", summary="Safe sales of a multi-day campaign from the declaration")
def store_safe_sales(store_id: int, p: Merchant, uow: ReadUoW, activity_days: int = Query(ge=1, le=366)
                     ) -> dict[str, Any]:
    return service.safe_sales_for_store(uow, p, store_id, activity_days)
