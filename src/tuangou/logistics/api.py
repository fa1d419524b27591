"""Shipping and logistics over HTTP: carriers and their signed events, shipments, flags, exceptions,
emergency plans, performance rates."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import AwareDatetime, BaseModel, Field, ValidationError

from tuangou.core.errors import ValidationFailed
from tuangou.core.http import Auth, Buyer, IdPath, Merchant, Ops, ReadUoW, UoW, page, uow
from tuangou.logistics import coldchain, flags, jobs, performance, rules, sandbox, service, sla, tracking

router = APIRouter(prefix="/api/v1", tags=["logistics"])
DB_INT = 2**31 - 1
CarrierCode = Annotated[str, Path(min_length=1, max_length=32)]


class PolicyChange(BaseModel):
    changes: dict[str, Any] = Field(description="fields to change, e.g. {'ship_within_minutes': 1440}")
    reason: str = Field(min_length=1, max_length=500)


class NewCarrier(BaseModel):
    code: str = Field(min_length=2, max_length=32, pattern=r"^[a-zA-Z0-9_-]+$")
    name: str = Field(min_length=1, max_length=100)
    tracking_pattern: str = Field(min_length=1, max_length=200, description="a regular expression the whole "
                                  "number must match, e.g. ^SF[0-9]{12}$")
    first_scan_minutes: int | None = Field(default=None, ge=1, le=100_000)
    reason: str = Field(default="", max_length=500)


class CarrierStatus(BaseModel):
    down: bool
    reason: str = Field(min_length=1, max_length=500)


class EventIn(BaseModel):
    event_id: str = Field(min_length=1, max_length=64)
    tracking_number: str = Field(min_length=1, max_length=64)
    kind: rules.EventKind
    occurred_at: AwareDatetime
    lat: float | None = Field(default=None, ge=-90, le=90, allow_inf_nan=False)
    lon: float | None = Field(default=None, ge=-180, le=180, allow_inf_nan=False)
    temperature_c: float | None = Field(default=None, ge=-100, le=100, allow_inf_nan=False)
    location: str = Field(default="", max_length=120)
    detail: str = Field(default="", max_length=300)

    def to_rule(self) -> rules.CarrierEvent:
        return rules.CarrierEvent(self.event_id, self.tracking_number.strip().upper(), self.kind, self.occurred_at,
                                  self.lat, self.lon, self.temperature_c, self.location, self.detail)


class BulkEvents(BaseModel):
    events: list[EventIn] = Field(min_length=1, max_length=tracking.MAX_EVENTS)


class NewWarehouse(BaseModel):
    code: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=120)
    lat: float | None = Field(default=None, ge=-90, le=90, allow_inf_nan=False)
    lon: float | None = Field(default=None, ge=-180, le=180, allow_inf_nan=False)
    merchant_id: int | None = Field(default=None, ge=1, le=DB_INT, description="ops only")


class Stock(BaseModel):
    units: int = Field(ge=0, le=10_000_000)


class TempRange(BaseModel):
    min_c: float = Field(ge=-100, le=100, allow_inf_nan=False)
    max_c: float = Field(ge=-100, le=100, allow_inf_nan=False)


class Plan(BaseModel):
    backup_carrier: str | None = Field(default=None, max_length=32)
    backup_warehouse_ids: list[Annotated[int, Field(ge=1, le=DB_INT)]] = Field(default_factory=list, max_length=20)
    merchant_id: int | None = Field(default=None, ge=1, le=DB_INT, description="ops only")


class NewShipment(BaseModel):
    carrier: str = Field(min_length=1, max_length=32)
    tracking_number: str = Field(min_length=1, max_length=64)
    units: int | None = Field(default=None, ge=1, le=100_000, description="default: every unit not shipped yet")
    warehouse_id: int | None = Field(default=None, ge=1, le=DB_INT)


class Label(BaseModel):
    tracking_number: str = Field(min_length=1, max_length=64)


class Choice(BaseModel):
    choice: rules.BuyerChoice


class Decision(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class Evidence(BaseModel):
    kind: Literal["photo", "notice", "carrier_statement", "text", "other"] = "photo"
    url: str = Field(default="", max_length=500)
    note: str = Field(default="", max_length=500)


class NewException(BaseModel):
    kind: rules.ExceptionKind
    description: str = Field(min_length=1, max_length=2000)
    evidence: list[Evidence] = Field(default_factory=list, max_length=20)
    order_ids: list[Annotated[int, Field(ge=1, le=DB_INT)]] = Field(default_factory=list, max_length=1000)
    carrier: str | None = Field(default=None, max_length=32)
    starts_at: AwareDatetime | None = None
    until: AwareDatetime = Field(description="the new estimate: when shipping can resume")


class Simulation(BaseModel):
    scenario: Literal["normal", "cold_excursion", "far_first_scan", "stuck"] = "normal"


# ---- policy and carriers ---------------------------------------------------------------------------

@router.get("/logistics-policy", summary="Shipping SLA, compensation, tracking checks and performance targets")
def get_policy(_: Auth, u: ReadUoW) -> dict[str, Any]:
    return service.get_policy(u)


@router.put("/logistics-policy", summary="Ops change the logistics policy (audited)")
def set_policy(body: PolicyChange, p: Ops, u: UoW) -> dict[str, Any]:
    return service.update_policy(u, p, body.changes, body.reason)


@router.post("/carriers", status_code=201, summary="Ops add a carrier; the answer carries its signing secret")
def add_carrier(body: NewCarrier, p: Ops, u: UoW) -> dict[str, Any]:
    return service.add_carrier(u, p, code=body.code, name=body.name, tracking_pattern=body.tracking_pattern,
                               first_scan_minutes=body.first_scan_minutes, reason=body.reason)


@router.get("/carriers")
def list_carriers(u: ReadUoW) -> dict[str, Any]:
    return {"items": service.list_carriers(u)}


@router.post("/carriers/{code}/status", summary="Ops mark a carrier down or up again")
def carrier_status(code: CarrierCode, body: CarrierStatus, p: Ops, u: UoW) -> dict[str, Any]:
    return service.set_carrier_down(u, p, code, body.down, body.reason)


async def _ingest(code: str, request: Request, signature: str, bulk: bool) -> dict[str, Any]:
    raw = await request.body()
    try:
        events = BulkEvents.model_validate_json(raw).events if bulk else [EventIn.model_validate_json(raw)]
    except ValidationError as exc:
        errors = exc.errors()
        where = ".".join(str(p) for p in errors[0]["loc"]) if errors else ""
        msg = errors[0]["msg"] if errors else "invalid events"
        raise ValidationFailed(f"{where}: {msg}", code="invalid_events") from exc
    return await run_in_threadpool(tracking.ingest, await uow(request), code, raw, signature,
                                   [e.to_rule() for e in events])


SIGNATURE = Header(default="", alias="X-Tuangou-Signature",
                   description="t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.' + body with the carrier's secret>")


@router.post("/carriers/{code}/events", summary="A carrier pushes one signed event (body: one event)")
async def push_event(code: CarrierCode, request: Request,
                     x_tuangou_signature: str = SIGNATURE) -> dict[str, Any]:
    return await _ingest(code, request, x_tuangou_signature, bulk=False)


@router.post("/carriers/{code}/events/bulk", summary="A carrier or aggregator pushes up to 10,000 signed events "
             "(body: {\"events\": [...]}); duplicates are counted, never stored twice")
async def push_events(code: CarrierCode, request: Request,
                      x_tuangou_signature: str = SIGNATURE) -> dict[str, Any]:
    return await _ingest(code, request, x_tuangou_signature, bulk=True)


# ---- warehouses, ranges, plans -------------------------------------------------------------------------

@router.post("/warehouses", status_code=201)
def add_warehouse(body: NewWarehouse, p: Merchant, u: UoW) -> dict[str, Any]:
    return service.add_warehouse(u, p, code=body.code, name=body.name, lat=body.lat, lon=body.lon,
                                 merchant_id=body.merchant_id)


@router.put("/warehouses/{warehouse_id}/stock/{deal_id}", summary="Units of a deal a warehouse holds")
def set_stock(warehouse_id: IdPath, deal_id: IdPath, body: Stock, p: Merchant, u: UoW) -> dict[str, Any]:
    return service.set_stock(u, p, warehouse_id, deal_id, body.units)


@router.put("/deals/{deal_id}/temperature-range", summary="The cold-chain range of a goods deal (°C)")
def set_range(deal_id: IdPath, body: TempRange, p: Merchant, u: UoW) -> dict[str, Any]:
    return service.set_temperature_range(u, p, deal_id, body.min_c, body.max_c)


@router.put("/emergency-plan", summary="The merchant's backup carrier and warehouses")
def set_plan(body: Plan, p: Merchant, u: UoW) -> dict[str, Any]:
    return service.set_plan(u, p, backup_carrier=body.backup_carrier, backup_warehouse_ids=body.backup_warehouse_ids,
                            merchant_id=body.merchant_id)


# ---- shipments ---------------------------------------------------------------------------------

@router.post("/orders/{order_id}/shipments", status_code=201, summary="The merchant ships (part of) a goods order")
def ship(order_id: IdPath, body: NewShipment, p: Merchant, u: UoW) -> dict[str, Any]:
    return service.ship(u, p, order_id, carrier=body.carrier, tracking_number=body.tracking_number, units=body.units,
                        warehouse_id=body.warehouse_id)


@router.get("/orders/{order_id}/shipping", summary="Shipping status, deadline and parcels of an order")
def order_shipping(order_id: IdPath, p: Auth, u: ReadUoW) -> dict[str, Any]:
    return service.order_shipping(u, p, order_id)


@router.get("/shipments")
def list_shipments(p: Auth, u: ReadUoW, status: rules.ShipmentStatus | None = None,
                   cursor: Annotated[int | None, Query(ge=1, le=DB_INT)] = None,
                   limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
    return page(service.list_shipments(u, p, status=status, cursor=cursor, limit=limit), limit, lambda s: s["id"])


@router.get("/shipments/{shipment_id}")
def get_shipment(shipment_id: IdPath, p: Auth, u: ReadUoW) -> dict[str, Any]:
    return service.get_shipment(u, p, shipment_id)


@router.post("/shipments/{shipment_id}/label", summary="Give a replacement or re-routed parcel its tracking number")
def label(shipment_id: IdPath, body: Label, p: Merchant, u: UoW) -> dict[str, Any]:
    return service.attach_label(u, p, shipment_id, body.tracking_number)


@router.post("/shipments/{shipment_id}/choice", summary="The buyer of a re-routed parcel: wait, upgrade or coupon")
def choose(shipment_id: IdPath, body: Choice, p: Buyer, u: UoW) -> dict[str, Any]:
    return coldchain.choose(u, p, shipment_id, body.choice)


@router.post("/shipments/{shipment_id}/simulate", summary="The sandbox carrier pushes this parcel's events now")
def simulate(shipment_id: IdPath, body: Simulation, p: Merchant, u: UoW) -> dict[str, Any]:
    return sandbox.simulate(u, p, shipment_id, body.scenario)


# ---- verification flags ------------------------------------------------------------------------

@router.get("/shipment-flags", summary="Suspected fake shipments (ops: all; merchants: their own)")
def list_flags(p: Merchant, u: ReadUoW, status: rules.FlagStatus | None = None,
               merchant_id: Annotated[int | None, Query(ge=1, le=DB_INT)] = None,
               cursor: Annotated[int | None, Query(ge=1, le=DB_INT)] = None,
               limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
    return page(flags.list_flags(u, p, status=status, merchant_id=merchant_id, cursor=cursor, limit=limit), limit,
                lambda f: f["id"])


@router.post("/shipment-flags/{flag_id}/confirm", summary="Ops confirm a fake shipment (fake_shipment, -10)")
def confirm_flag(flag_id: IdPath, body: Decision, p: Ops, u: UoW) -> dict[str, Any]:
    return flags.review_flag(u, p, flag_id, confirm=True, reason=body.reason)


@router.post("/shipment-flags/{flag_id}/dismiss")
def dismiss_flag(flag_id: IdPath, body: Decision, p: Ops, u: UoW) -> dict[str, Any]:
    return flags.review_flag(u, p, flag_id, confirm=False, reason=body.reason)


# ---- exceptions, performance, the tick -------------------------------------------------------------

@router.post("/logistics-exceptions", status_code=201, summary="Report a logistics failure with evidence")
def report_exception(body: NewException, p: Merchant, u: UoW) -> dict[str, Any]:
    return sla.report_exception(u, p, kind=body.kind, description=body.description,
                                evidence=[e.model_dump() for e in body.evidence], order_ids=body.order_ids,
                                until=body.until, carrier=body.carrier, starts_at=body.starts_at)


@router.get("/logistics-exceptions")
def list_exceptions(p: Merchant, u: ReadUoW, status: rules.ExceptionStatus | None = None) -> dict[str, Any]:
    return {"items": sla.list_exceptions(u, p, status)}


@router.post("/logistics-exceptions/{exception_id}/accept", summary="Ops accept: the SLA clock pauses")
def accept_exception(exception_id: IdPath, body: Decision, p: Ops, u: UoW) -> dict[str, Any]:
    return sla.decide_exception(u, p, exception_id, accept=True, reason=body.reason)


@router.post("/logistics-exceptions/{exception_id}/reject")
def reject_exception(exception_id: IdPath, body: Decision, p: Ops, u: UoW) -> dict[str, Any]:
    return sla.decide_exception(u, p, exception_id, accept=False, reason=body.reason)


@router.get("/merchants/{merchant_id}/shipping-performance", summary="Late shipment, cancel, valid tracking and "
            "defect rates over 7/30/60 days, with the orders behind each")
def shipping_performance(merchant_id: IdPath, p: Auth, u: ReadUoW) -> dict[str, Any]:
    return performance.merchant_performance(u, p, merchant_id)


@router.post("/logistics/run", summary="Ops run the logistics tick now (the worker runs it anyway)")
def run_now(_: Ops, request: Request) -> dict[str, Any]:
    return jobs.run_due(request.app.state.job_context)
