"""Helpers inside an open unit of work shared by the logistics use cases: shipping records, shipments,
compensation, views. Nothing here commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, select, update

from tuangou.campaigns import service as campaigns
from tuangou.catalog import rules as catalog_rules
from tuangou.catalog import service as catalog
from tuangou.core import ledger
from tuangou.core.auth import Principal, Role
from tuangou.core.db import UnitOfWork, insert_ignore
from tuangou.core.errors import Conflict, NotFound
from tuangou.disputes import service as disputes
from tuangou.logistics import rules
from tuangou.logistics.models import Carrier, Shipment, ShippingOrder, TemperatureRange, TrackingEvent
from tuangou.orders import service as orders

S = rules.ShipmentStatus
OS = rules.OrderShipping


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def is_goods(uow: UnitOfWork, deal_id: int, cache: dict[int, dict[str, Any]] | None = None) -> dict[str, Any] | None:
    """The deal's facts when it is a goods deal (shipped), else None."""
    facts = cache.get(deal_id) if cache is not None else None
    if facts is None:
        facts = catalog.deal_facts(uow, deal_id)
        if cache is not None:
            cache[deal_id] = facts
    return facts if facts["kind"] == catalog_rules.DealKind.GOODS else None


def deadline(uow: UnitOfWork, paid_at: datetime, deal: dict[str, Any], policy: rules.LogisticsPolicy) -> datetime:
    """When a paid order of this goods deal must ship (a group-buy's line: by its delivery time at the latest)."""
    return rules.ship_deadline(paid_at, deal["category"], policy, campaigns.delivery_due(uow, deal["id"]))


def track_order(uow: UnitOfWork, order: dict[str, Any], deal: dict[str, Any], policy: rules.LogisticsPolicy) -> bool:
    """Start the shipping clock of a paid goods order (`orders.order_facts`), once: True if new."""
    due = deadline(uow, order["paid_at"], deal, policy)
    return bool(insert_ignore(uow.session, ShippingOrder.__table__, {
        "order_id": order["id"], "merchant_id": order["merchant_id"], "buyer_id": order["buyer_id"],
        "deal_id": order["deal_id"], "category": deal["category"], "quantity": order["quantity"],
        "amount_cents": order["amount_cents"], "paid_at": order["paid_at"], "due_at": due,
        "warn_at": rules.warn_at(due, policy), "warned_at": None, "paused_minutes": 0, "status": OS.AWAITING,
        "shipped_units": 0, "shipped_at": None, "delivered_at": None, "ended_at": None, "compensation_cents": 0,
        "defect": False}, ["order_id"]))


def ensure_tracked(uow: UnitOfWork, order_id: int, policy: rules.LogisticsPolicy) -> ShippingOrder:
    """The order's shipping record, started now when paying did not (an order paid
    before logistics took part in paying).
    Conflict when the order is not a paid goods order."""
    record = uow.session.get(ShippingOrder, order_id)
    if record is None:
        facts = orders.order_facts(uow, order_id)
        deal = is_goods(uow, facts["deal_id"])
        if deal is None:
            raise Conflict(f"order {order_id} is not a goods order; nothing ships", code="not_goods")
        if facts["status"] != "paid" or facts["paid_at"] is None:
            raise Conflict(f"order {order_id} is {facts['status']}; only paid orders ship", code="not_shippable")
        track_order(uow, facts, deal, policy)
        record = uow.session.get(ShippingOrder, order_id)
        assert record is not None
    return record


def carrier_of(uow: UnitOfWork, code: str) -> Carrier:
    carrier = uow.session.get(Carrier, code.strip().lower())
    if carrier is None:
        raise NotFound(f"no carrier {code!r}", code="unknown_carrier")
    return carrier


def take_units(uow: UnitOfWork, order_id: int, units: int, now: datetime) -> bool:
    """Count `units` more as shipped, never past the order's quantity and never on an ended order
    (one conditional UPDATE, so a shipment and the SLA cancellation cannot both win)."""
    r = ShippingOrder
    full = r.shipped_units + units >= r.quantity
    return bool(uow.session.execute(update(r).where(
        r.order_id == order_id, r.status.in_((OS.AWAITING, OS.PARTIAL)), r.shipped_units + units <= r.quantity)
        .values(shipped_units=r.shipped_units + units,
                status=case((full, OS.SHIPPED.value), else_=OS.PARTIAL.value),
                shipped_at=case((full, now), else_=r.shipped_at))).rowcount)  # type: ignore[attr-defined]


def give_back_units(uow: UnitOfWork, order_id: int, units: int) -> None:
    """A voided shipment never counted: its units are due again (and the SLA clock with them)."""
    r = ShippingOrder
    left = r.shipped_units - units
    uow.session.execute(update(r).where(r.order_id == order_id, r.status.in_((OS.PARTIAL, OS.SHIPPED, OS.DELIVERED)),
                                        r.shipped_units >= units)
                        .values(shipped_units=left, shipped_at=None, delivered_at=None,
                                status=case((left <= 0, OS.AWAITING.value), else_=OS.PARTIAL.value)))


def add_shipment(uow: UnitOfWork, record: ShippingOrder, *, carrier: Carrier, tracking_number: str | None,
                 units: int, warehouse_id: int | None, policy: rules.LogisticsPolicy, replaces: int | None = None,
                 reason: str = "") -> Shipment:
    temp = uow.session.get(TemperatureRange, record.deal_id)
    labelled = tracking_number is not None
    shipment = Shipment(order_id=record.order_id, merchant_id=record.merchant_id, buyer_id=record.buyer_id,
                        deal_id=record.deal_id, carrier=carrier.code, tracking_number=tracking_number, units=units,
                        warehouse_id=warehouse_id, status=S.AWAITING_SCAN if labelled else S.LABEL_PENDING,
                        service="standard", created_at=uow.now, labelled_at=uow.now if labelled else None,
                        scan_due_at=rules.first_scan_deadline(uow.now, carrier.first_scan_minutes, policy)
                        if labelled else None, scan_checked=not labelled,
                        temp_min_c=temp.min_c if temp else None, temp_max_c=temp.max_c if temp else None,
                        replaces_id=replaces, reason=reason)
    uow.session.add(shipment)
    uow.session.flush()
    return shipment


def compensate(uow: UnitOfWork, record: ShippingOrder, amount: int, key: str, why: str) -> int:
    """The platform pays the buyer `amount` first (a refund from platform:compensation) and books the
    same amount as a recovery claim against the merchant; once per `key`."""
    if amount <= 0:
        return 0
    if amount <= record.amount_cents:
        orders.owe_extra_refund(uow, record.order_id, amount, f"logistics:{key}", why, ledger.COMPENSATION)
    else:  # more than the order cost (the ¥5 minimum on a cheap order): the rest as a coupon
        orders.owe_extra_refund(uow, record.order_id, record.amount_cents, f"logistics:{key}", why,
                                ledger.COMPENSATION)
        disputes.issue_compensation_coupon(uow, buyer_id=record.buyer_id,
                                           amount_cents=amount - record.amount_cents, reason=why,
                                           ref=f"order:{record.order_id}:{key}")
    disputes.book_recovery(uow, merchant_id=record.merchant_id, amount_cents=amount,
                           ref=f"order:{record.order_id}:{key}")
    return amount


def may_see(actor: Principal, merchant_id: int, buyer_id: int | None = None) -> bool:
    return (actor.role == Role.OPS or (actor.role == Role.MERCHANT and actor.merchant_id == merchant_id)
            or (buyer_id is not None and actor.role == Role.BUYER and actor.user_id == buyer_id))


def shipment_view(uow: UnitOfWork, s: Shipment, events: int = 0) -> dict[str, Any]:
    view = {"id": s.id, "order_id": s.order_id, "carrier": s.carrier, "tracking_number": s.tracking_number,
            "units": s.units, "warehouse_id": s.warehouse_id, "status": s.status, "service": s.service,
            "created_at": iso(s.created_at), "scan_due_at": iso(s.scan_due_at), "first_scan_at": iso(s.first_scan_at),
            "last_event_at": iso(s.last_event_at), "delivered_at": iso(s.delivered_at),
            "excursion_at": iso(s.excursion_at), "temperature_range": [s.temp_min_c, s.temp_max_c]
            if s.temp_min_c is not None else None, "replaces_id": s.replaces_id, "reason": s.reason,
            "buyer_choice": s.buyer_choice}
    if events and s.tracking_number:
        rows = uow.session.scalars(select(TrackingEvent).where(
            TrackingEvent.carrier == s.carrier, TrackingEvent.tracking_number == s.tracking_number)
            .order_by(TrackingEvent.occurred_at.desc(), TrackingEvent.id.desc()).limit(events))
        view["events"] = [{"event_id": e.event_id, "kind": e.kind, "occurred_at": iso(e.occurred_at),
                           "location": e.location, "temperature_c": e.temperature_c, "detail": e.detail}
                          for e in rows]
    return view


def order_view(uow: UnitOfWork, r: ShippingOrder) -> dict[str, Any]:
    shipments = uow.session.scalars(select(Shipment).where(Shipment.order_id == r.order_id).order_by(Shipment.id))
    return {"order_id": r.order_id, "status": r.status, "quantity": r.quantity, "shipped_units": r.shipped_units,
            "paid_at": iso(r.paid_at), "ship_by": iso(r.due_at), "paused_minutes": r.paused_minutes,
            "shipped_at": iso(r.shipped_at), "delivered_at": iso(r.delivered_at), "ended_at": iso(r.ended_at),
            "compensation_cents": r.compensation_cents,
            "shipments": [shipment_view(uow, s, events=20) for s in shipments]}
