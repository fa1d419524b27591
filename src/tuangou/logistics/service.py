"""Logistics use cases: carriers, warehouses, emergency plans, shipments and what buyers see.

The SLA, exceptions, cold chain, carrier events and performance live in their own modules
(sla, coldchain, tracking, performance); this module is the capability's entry point.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import select, update

from tuangou.core.audit import record_audit
from tuangou.core.auth import Principal, Role
from tuangou.core.db import UnitOfWork, insert_ignore, retry_on_deadlock
from tuangou.core.errors import Conflict, NotFound, ValidationFailed
from tuangou.core.outbox import record_event
from tuangou.logistics import flags, records, rules
from tuangou.logistics.models import (
    Carrier,
    EmergencyPlan,
    Shipment,
    ShippingOrder,
    TemperatureRange,
    Warehouse,
    WarehouseStock,
)
from tuangou.logistics.policy import current_policy, get_policy, update_policy
from tuangou.notify import service as notify
from tuangou.orders import service as orders

S = rules.ShipmentStatus


# ---- carriers ------------------------------------------------------------------------------------

def _carrier_view(c: Carrier, secret: bool = False) -> dict[str, Any]:
    view = {"code": c.code, "name": c.name, "tracking_pattern": c.tracking_pattern,
            "first_scan_minutes": c.first_scan_minutes, "down": c.down, "created_at": records.iso(c.created_at)}
    return {**view, "secret": c.secret} if secret else view


def add_carrier(uow: UnitOfWork, actor: Principal, *, code: str, name: str, tracking_pattern: str,
                first_scan_minutes: int | None, reason: str) -> dict[str, Any]:
    """Ops add a carrier; the answer carries the secret its pushed events are signed with (once)."""
    actor.require(Role.OPS)
    problem = rules.pattern_problem(tracking_pattern)
    if problem:
        raise ValidationFailed(problem, code="invalid_tracking_pattern")
    code = code.strip().lower()
    with uow:
        carrier = {"code": code, "name": name, "tracking_pattern": tracking_pattern,
                   "first_scan_minutes": first_scan_minutes, "secret": secrets.token_hex(24), "down": False,
                   "created_at": uow.now}
        if not insert_ignore(uow.session, Carrier.__table__, carrier, ["code"]):
            raise Conflict(f"carrier {code} exists", code="carrier_exists")
        record_audit(uow.session, actor_id=actor.user_id, actor_role="ops", action="add_carrier",
                     target=f"carrier:{code}", reason=reason or "new carrier", now=uow.now)
        uow.commit()
        return _carrier_view(records.carrier_of(uow, code), secret=True)


def list_carriers(uow: UnitOfWork) -> list[dict[str, Any]]:
    with uow:
        return [_carrier_view(c) for c in uow.session.scalars(select(Carrier).order_by(Carrier.code))]


def set_carrier_down(uow: UnitOfWork, actor: Principal, code: str, down: bool, reason: str) -> dict[str, Any]:
    actor.require(Role.OPS)
    if not reason.strip():
        raise ValidationFailed("a reason is required", code="reason_required")
    with uow:
        carrier = records.carrier_of(uow, code)
        carrier.down = down
        record_audit(uow.session, actor_id=actor.user_id, actor_role="ops", action="set_carrier_status",
                     target=f"carrier:{carrier.code}", reason=reason, now=uow.now, details={"down": down})
        uow.commit()
        return _carrier_view(carrier)


# ---- warehouses, stock, temperature ranges, emergency plans ------------------------------------------

def _merchant_of(actor: Principal, merchant_id: int | None) -> int:
    actor.require(Role.MERCHANT, Role.OPS)
    target = actor.merchant_id if actor.role == Role.MERCHANT else merchant_id
    if target is None:
        raise ValidationFailed("merchant_id is required", code="merchant_required")
    return target


def add_warehouse(uow: UnitOfWork, actor: Principal, *, code: str, name: str, lat: float | None, lon: float | None,
                  merchant_id: int | None = None) -> dict[str, Any]:
    owner = _merchant_of(actor, merchant_id)
    with uow:
        if not insert_ignore(uow.session, Warehouse.__table__, {"merchant_id": owner, "code": code, "name": name,
                             "lat": lat, "lon": lon, "created_at": uow.now}, ["merchant_id", "code"]):
            raise Conflict(f"warehouse {code} exists", code="warehouse_exists")
        w = uow.session.scalars(select(Warehouse).where(Warehouse.merchant_id == owner, Warehouse.code == code)).one()
        uow.commit()
        return {"id": w.id, "merchant_id": w.merchant_id, "code": w.code, "name": w.name, "lat": w.lat, "lon": w.lon}


def _own_warehouse(uow: UnitOfWork, merchant_id: int, warehouse_id: int) -> Warehouse:
    w = uow.session.get(Warehouse, warehouse_id)
    if w is None or w.merchant_id != merchant_id:
        raise NotFound(f"warehouse {warehouse_id} not found", code="unknown_warehouse")
    return w


def set_stock(uow: UnitOfWork, actor: Principal, warehouse_id: int, deal_id: int, units: int) -> dict[str, Any]:
    """The merchant declares what a warehouse holds of a deal (replenishment draws on it)."""
    if units < 0:
        raise ValidationFailed("units must not be negative")
    with uow:
        w = uow.session.get(Warehouse, warehouse_id)
        if w is None or not records.may_see(actor, w.merchant_id) or actor.role == Role.BUYER:
            raise NotFound(f"warehouse {warehouse_id} not found", code="unknown_warehouse")
        if not insert_ignore(uow.session, WarehouseStock.__table__, {"warehouse_id": w.id, "deal_id": deal_id,
                             "units": units}, ["warehouse_id", "deal_id"]):
            uow.session.execute(update(WarehouseStock).where(WarehouseStock.warehouse_id == w.id,
                                                             WarehouseStock.deal_id == deal_id).values(units=units))
        uow.commit()
        return {"warehouse_id": w.id, "deal_id": deal_id, "units": units}


def set_temperature_range(uow: UnitOfWork, actor: Principal, deal_id: int, min_c: float, max_c: float
                          ) -> dict[str, Any]:
    if min_c > max_c:
        raise ValidationFailed("min_c must not exceed max_c", code="invalid_range")
    with uow:
        deal = records.is_goods(uow, deal_id)
        if deal is None:
            raise Conflict(f"deal {deal_id} is not a goods deal", code="not_goods")
        if not records.may_see(actor, deal["merchant_id"]) or actor.role == Role.BUYER:
            raise NotFound(f"deal {deal_id} not found")
        values = {"deal_id": deal_id, "merchant_id": deal["merchant_id"], "min_c": min_c, "max_c": max_c}
        if not insert_ignore(uow.session, TemperatureRange.__table__, values, ["deal_id"]):
            uow.session.execute(update(TemperatureRange).where(TemperatureRange.deal_id == deal_id)
                                .values(min_c=min_c, max_c=max_c))
        uow.commit()
        return values


def set_plan(uow: UnitOfWork, actor: Principal, *, backup_carrier: str | None, backup_warehouse_ids: list[int],
             merchant_id: int | None = None) -> dict[str, Any]:
    """The merchant's emergency plan (B8): a backup carrier and backup warehouses, in order."""
    owner = _merchant_of(actor, merchant_id)
    with uow:
        if backup_carrier:
            backup_carrier = records.carrier_of(uow, backup_carrier).code
        for wid in backup_warehouse_ids:
            _own_warehouse(uow, owner, wid)
        values = {"merchant_id": owner, "backup_carrier": backup_carrier,
                  "backup_warehouse_ids": list(backup_warehouse_ids), "updated_at": uow.now}
        if not insert_ignore(uow.session, EmergencyPlan.__table__, values, ["merchant_id"]):
            uow.session.execute(update(EmergencyPlan).where(EmergencyPlan.merchant_id == owner).values(**values))
        uow.commit()
        return {**values, "updated_at": records.iso(uow.now)}


# ---- shipments -----------------------------------------------------------------------------------

@retry_on_deadlock
def ship(uow: UnitOfWork, actor: Principal, order_id: int, *, carrier: str, tracking_number: str, units: int | None,
         warehouse_id: int | None) -> dict[str, Any]:
    """The merchant hands (some of) a paid goods order to a carrier. Refused, changing nothing, for an
    unknown carrier or warehouse, a number that fails the carrier's format, more units than the order
    has left, or an order the SLA already cancelled."""
    actor.require(Role.MERCHANT, Role.OPS)
    number = tracking_number.strip().upper()
    with uow:
        policy = current_policy(uow)
        facts = orders.order_facts(uow, order_id)
        if not records.may_see(actor, facts["merchant_id"]):
            raise NotFound(f"order {order_id} not found")
        found = records.carrier_of(uow, carrier)
        if found.down:
            raise Conflict(f"carrier {found.code} is down; use your backup carrier", code="carrier_down")
        if not rules.tracking_number_ok(found.tracking_pattern, number):
            raise ValidationFailed(f"{number!r} is not a {found.name} tracking number ({found.tracking_pattern})",
                                   code="invalid_tracking_number")
        record = records.ensure_tracked(uow, order_id, policy)
        count = units if units is not None else record.quantity - record.shipped_units
        problem = rules.units_problem(record.quantity, record.shipped_units, count)
        if problem:
            raise ValidationFailed(problem, code="too_many_units")
        if warehouse_id is not None:
            _own_warehouse(uow, record.merchant_id, warehouse_id)
            _take_stock(uow, warehouse_id, record.deal_id, count)
        if not records.take_units(uow, order_id, count, uow.now):
            uow.session.refresh(record)
            if record.status not in (rules.OrderShipping.AWAITING, rules.OrderShipping.PARTIAL):
                raise Conflict(f"order shipping is {record.status}; nothing more ships", code="not_shippable")
            raise ValidationFailed("more units than the order has left", code="too_many_units")
        s = records.add_shipment(uow, record, carrier=found, tracking_number=number, units=count,
                                 warehouse_id=warehouse_id, policy=policy)
        flags.check_reuse(uow, s)
        record_event(uow.session, "ShipmentCreated", {"shipment_id": s.id, "order_id": order_id, "carrier": found.code,
                                                      "units": count}, uow.now, merchant_id=record.merchant_id)
        notify.notify_user(uow, record.buyer_id, "order_shipped", f"Order #{order_id} shipped ({count} unit(s))",
                           f"{found.name} {number}", {"order_id": order_id, "shipment_id": s.id})
        uow.commit()
        return records.shipment_view(uow, s)


def _take_stock(uow: UnitOfWork, warehouse_id: int, deal_id: int, units: int) -> None:
    """A warehouse with declared stock of the deal gives `units` of it (never below zero)."""
    row = uow.session.get(WarehouseStock, (warehouse_id, deal_id))
    if row is None:
        return  # stock not declared there: not tracked
    if not uow.session.execute(update(WarehouseStock).where(
            WarehouseStock.warehouse_id == warehouse_id, WarehouseStock.deal_id == deal_id,
            WarehouseStock.units >= units).values(units=WarehouseStock.units - units)).rowcount:  # type: ignore[attr-defined]
        raise Conflict(f"warehouse {warehouse_id} has fewer than {units} unit(s) of deal {deal_id}",
                       code="warehouse_out_of_stock")


@retry_on_deadlock
def attach_label(uow: UnitOfWork, actor: Principal, shipment_id: int, tracking_number: str) -> dict[str, Any]:
    """A replacement or re-routed parcel gets its tracking number; its first-scan clock starts."""
    actor.require(Role.MERCHANT, Role.OPS)
    number = tracking_number.strip().upper()
    with uow:
        policy = current_policy(uow)
        s = uow.session.get(Shipment, shipment_id)
        if s is None or not records.may_see(actor, s.merchant_id):
            raise NotFound(f"shipment {shipment_id} not found")
        carrier = records.carrier_of(uow, s.carrier)
        if not rules.tracking_number_ok(carrier.tracking_pattern, number):
            raise ValidationFailed(f"{number!r} is not a {carrier.name} tracking number", code="invalid_tracking_number")
        if not uow.session.execute(update(Shipment).where(Shipment.id == s.id, Shipment.status == S.LABEL_PENDING)
                                   .values(tracking_number=number, status=S.AWAITING_SCAN, labelled_at=uow.now,
                                           scan_checked=False, scan_due_at=rules.first_scan_deadline(
                                               uow.now, carrier.first_scan_minutes, policy))).rowcount:  # type: ignore[attr-defined]
            raise Conflict(f"shipment is {s.status}; it has its label", code="already_labelled")
        uow.session.refresh(s)
        flags.check_reuse(uow, s)
        notify.notify_user(uow, s.buyer_id, "order_shipped", f"Order #{s.order_id}: parcel on its way",
                           f"{carrier.name} {number}", {"order_id": s.order_id, "shipment_id": s.id})
        uow.commit()
        return records.shipment_view(uow, s)


def order_shipping(uow: UnitOfWork, actor: Principal, order_id: int) -> dict[str, Any]:
    """What the buyer (and merchant, ops) see: shipping status with timestamps and the parcels' events.
    An order paid before logistics took part in paying has no record yet: its clock is shown as it
    will be recorded when it ships."""
    with uow:
        facts = orders.order_facts(uow, order_id)
        if not records.may_see(actor, facts["merchant_id"], facts["buyer_id"]):
            raise NotFound(f"order {order_id} not found")
        record = uow.session.get(ShippingOrder, order_id)
        if record is not None:
            return records.order_view(uow, record)
        deal = records.is_goods(uow, facts["deal_id"])
        if deal is None:
            raise Conflict(f"order {order_id} is not a goods order; nothing ships", code="not_goods")
        if facts["paid_at"] is None or facts["status"] != "paid":
            raise Conflict(f"order {order_id} is {facts['status']}; nothing ships", code="not_shippable")
        due = records.deadline(uow, facts["paid_at"], deal, current_policy(uow))
        return {"order_id": order_id, "status": rules.OrderShipping.AWAITING, "quantity": facts["quantity"],
                "shipped_units": 0, "paid_at": records.iso(facts["paid_at"]), "ship_by": records.iso(due),
                "paused_minutes": 0, "shipped_at": None, "delivered_at": None, "ended_at": None,
                "compensation_cents": 0, "shipments": []}


def get_shipment(uow: UnitOfWork, actor: Principal, shipment_id: int) -> dict[str, Any]:
    with uow:
        s = uow.session.get(Shipment, shipment_id)
        if s is None or not records.may_see(actor, s.merchant_id, s.buyer_id):
            raise NotFound(f"shipment {shipment_id} not found")
        return records.shipment_view(uow, s, events=100)


def list_shipments(uow: UnitOfWork, actor: Principal, *, status: str | None = None, cursor: int | None = None,
                   limit: int = 50) -> list[dict[str, Any]]:
    with uow:
        q = actor.own_rows(select(Shipment).order_by(Shipment.id.desc()).limit(limit), buyer=Shipment.buyer_id,
                           merchant=Shipment.merchant_id, what="shipments")
        if status:
            q = q.where(Shipment.status == status)
        if cursor:
            q = q.where(Shipment.id < cursor)
        return [records.shipment_view(uow, s) for s in uow.session.scalars(q)]


__all__ = ["add_carrier", "add_warehouse", "attach_label", "get_policy", "get_shipment",
           "list_carriers", "list_shipments", "order_shipping", "set_carrier_down", "set_plan",
           "set_stock", "set_temperature_range", "ship", "update_policy"]
