"""Governance while selling: red-line warnings, the circuit breaker and over-sale incidents,
cap changes, the 08:00 stock suggestion and the hourly sales push (A2, A4, A5).

Inventory change requests and stock counts (A10, C5) are in governance/inventory.py.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from tuangou.capacity import rules as capacity_rules
from tuangou.capacity import service as capacity
from tuangou.catalog import rules as catalog_rules
from tuangou.catalog import service as catalog
from tuangou.core.audit import record_audit, require_reason
from tuangou.core.auth import Principal, Role
from tuangou.core.db import InTransaction, UnitOfWork, insert_ignore, retry_on_deadlock
from tuangou.core.errors import Conflict, NotFound, ValidationFailed
from tuangou.core.money import yuan
from tuangou.core.outbox import record_event
from tuangou.governance import participants
from tuangou.governance.models import IncidentOrder, OversaleIncident, RedLineWarning
from tuangou.merchants import service as merchants
from tuangou.notify import service as notify
from tuangou.orders import rules as order_rules
from tuangou.orders import service as orders

# ---- red line (A4) ---------------------------------------------------------------------------------


def warn_crossing(tx: InTransaction, deal_id: int, merchant_id: int, title: str,
                  s: catalog_rules.BucketState, line: int | None, sold_out: bool) -> None:
    """Inside an open unit of work: tell the merchant a warning line was crossed, or that a bucket sold out.

    The (deal, bucket, kind, line) row is inserted if absent; only the transaction
    that inserts it sends the message, so concurrent orders warn once.
    """
    if line is not None and _first(tx, deal_id, s.key, "red_line", line):
        notify.notify_merchant(tx, merchant_id, "red_line_warning",
                               f"{s.remaining} more and you exceed: {title} ({s.key})",
                               "Add stock (file a change request) or stop selling.",
                               {"deal_id": deal_id, "bucket": s.key, "remaining": s.remaining}, "warning")
    if sold_out and _first(tx, deal_id, s.key, "sold_out", s.cap):
        notify.notify_merchant(tx, merchant_id, "sold_out", f"Sold out: {title} ({s.key})",
                               "Further orders get sold_out.", {"deal_id": deal_id, "bucket": s.key})


def _first(tx: InTransaction, deal_id: int, bucket: str, kind: str, line: int) -> bool:
    return bool(insert_ignore(tx.session, RedLineWarning.__table__, {
        "deal_id": deal_id, "bucket": bucket, "kind": kind, "line": line, "created_at": tx.now},
        ["deal_id", "bucket", "kind", "line"]))


# ---- cap changes -------------------------------------------------------------------------------------

@retry_on_deadlock
def set_bucket_cap(uow: UnitOfWork, actor: Principal, deal_id: int, key: str, cap: int, reason: str = ""
                   ) -> dict[str, Any]:
    """Set the cap of one bucket (a service date, a slot, `total` or `stock`).

    Capacity governance decides: a merchant's raise needs an approved inventory
    change request (refused with `change_request_required`); a decrease applies at
    once, and one below what is sold trips the circuit breaker.
    """
    if actor.role == Role.OPS:
        require_reason(reason)
    with uow:
        deal = catalog.own_deal(uow, actor, deal_id, for_update=True)
        if cap < 0:
            raise ValidationFailed("cap must be >= 0")
        result = set_cap(uow, deal.id, key, cap, may_raise=actor.role == Role.OPS,
                         cause=reason or f"cap of {key} lowered to {cap}")
        if actor.role == Role.OPS:
            record_audit(uow.session, actor_id=actor.user_id, actor_role="ops", action="set_cap",
                         target=f"deal:{deal_id}:{key}", reason=reason, now=uow.now, details={"cap": cap})
        uow.commit()
        return result


def set_cap(uow: UnitOfWork, deal_id: int, key: str, cap: int, *, may_raise: bool, cause: str) -> dict[str, Any]:
    """Inside an open unit of work: the merchant's cap for a bucket becomes `cap`.

    A raise needs `may_raise` (ops, or an approved change request); a decrease
    applies at once, and if it falls below what is sold the circuit breaker trips.
    """
    catalog.deal_facts(uow, deal_id, lock=True)
    current = capacity.current_offer(uow, deal_id, key)
    if cap > current and not may_raise:
        raise Conflict(f"raising the cap of {key} from {current} to {cap} needs an approved inventory change "
                       f"request: POST /api/v1/deals/{deal_id}/inventory-change-requests",
                       code="change_request_required", current_cap=current)
    capacity.set_offer(uow, deal_id, key, cap)
    target = capacity.follow_offer(uow, deal_id, key, cap, cause)  # capacity bounds days, slots and stock
    result = catalog.apply_cap(uow, deal_id, key, target, allow_below_sold=True)
    if result["over"] > 0 and capacity.policy(uow).circuit_breaker:
        trip_circuit_breaker(uow, deal_id, key, cause)
        result = next({"key": b.key, "cap": b.cap, "sold": b.sold, "reserved": b.reserved,
                       "over": max(0, b.sold + b.reserved - b.cap)}
                      for b in catalog.buckets_of(uow, deal_id) if b.key == key)
    return {**result, "offer": cap}


# ---- the circuit breaker (A4) ------------------------------------------------------------------------

def trip_circuit_breaker(uow: InTransaction, deal_id: int, key: str, cause: str) -> dict[str, Any] | None:
    """Inside an open unit of work: a bucket holds more than its cap.

    If only unpaid holds are over, the newest give way. If paid units are over, that bucket's
    date stops selling (paused with the cause; the deal's other dates keep selling), every hold on
    the bucket ends, and the over-sold paid orders (newest first by default) move to a new date or
    are refunded, each buyer gets a compensation coupon and the incident is recorded."""
    bucket = _bucket(uow, deal_id, key)
    if bucket is None or bucket.sold + bucket.reserved <= bucket.cap:
        return None
    facts = catalog.deal_facts(uow, deal_id)
    pol = capacity.policy(uow)
    if bucket.sold <= bucket.cap:
        # only unpaid holds are over: the newest give way, the deal stays on sale
        orders.cancel_reservations_on(uow, deal_id, key, f"{facts['title']} can no longer serve this hold: {cause}",
                                      units=bucket.sold + bucket.reserved - bucket.cap)
        record_event(uow.session, "HoldsCancelled", {"deal_id": deal_id, "bucket": key}, uow.now,
                     merchant_id=facts["merchant_id"])
        return None
    # only the date that lost capacity stops selling; the deal's other dates (those the moved buyers go to)
    # stay on sale, and this one reopens by itself once its cap is back above what is sold
    catalog.pause_date(uow, deal_id, key, f"circuit breaker: {cause}")
    orders.cancel_reservations_on(uow, deal_id, key, f"{facts['title']} was taken off sale for {key}: {cause}")
    bucket = _bucket(uow, deal_id, key)
    assert bucket is not None
    over = bucket.sold - bucket.cap
    notify.notify_merchant(uow, facts["merchant_id"], "date_paused", f"{facts['title']}: sales for {key} paused",
                           f"Its cap for {key} fell to {bucket.cap}, below the {bucket.sold} sold ({cause}). Other "
                           f"dates stay on sale; {key} reopens when its cap is back above what is sold.",
                           {"deal_id": deal_id, "bucket": key, "reason": cause}, "critical")
    incident = OversaleIncident(deal_id=deal_id, merchant_id=facts["merchant_id"], category=facts["category"],
                                bucket=key, cap=bucket.cap, sold=bucket.sold, over=over, cause=cause,
                                created_at=uow.now)
    uow.session.add(incident)
    uow.session.flush()
    paid = {o["id"]: o for o in orders.paid_orders_on(uow, deal_id, key)}
    chosen = capacity_rules.pick_oversold([capacity_rules.PaidOrder(o["id"], o["quantity"], o["created_at"])
                                          for o in paid.values()], over, pol.oversale_pick)
    for order_id in chosen:
        _compensate(uow, incident, facts, paid[order_id], pol)
    ref = f"incident:{incident.id}"
    view = _incident_view(uow, incident)
    # the case report (A9) teaches from these figures: the deal, the units over, and what the platform paid
    # (the coupons; a refund gives the buyer's own money back and is not compensation)
    merchants.record_violation(uow, merchant_id=facts["merchant_id"], category=facts["category"], kind="oversale",
                               ref=ref, reason=f"{over} unit(s) over the cap on {key}: {cause}", deal_id=deal_id,
                               details={"oversold_units": over, "sold": bucket.sold, "bucket": key,
                                        "compensation_cents": sum(o["coupon_cents"] for o in view["orders"])})
    notify.notify_ops(uow, "oversale_incident", f"Over-sale incident #{incident.id} on deal {deal_id}",
                      f"{over} over the cap on {key}; {len(chosen)} order(s) handled.", {"incident_id": incident.id},
                      "warning")
    record_event(uow.session, "OversaleIncidentRecorded", {"incident_id": incident.id, "deal_id": deal_id,
                                                           "bucket": key, "over": over, "orders": chosen},
                 uow.now, merchant_id=facts["merchant_id"])
    return view


def _bucket(uow: InTransaction, deal_id: int, key: str) -> catalog_rules.BucketState | None:
    return next((b for b in catalog.buckets_of(uow, deal_id) if b.key == key), None)


def _compensate(uow: InTransaction, incident: OversaleIncident, facts: dict[str, Any], order: dict[str, Any],
                pol: capacity_rules.GovernancePolicy) -> None:
    new_day = _postpone(uow, incident, facts, order, pol)
    refund = 0
    if new_day is None:
        refund = orders.refund_in_uow(uow, order["id"], None, f"over-sold: {facts['title']} cannot be served")
    coupon = pol.compensation_coupon_cents
    if coupon > 0:
        for p in participants.registry.items:  # the coupon itself lives with disputes
            p.compensate(uow, buyer_id=order["buyer_id"], amount_cents=coupon, reason=f"over-sold {facts['title']}",
                         ref=f"incident:{incident.id}:order:{order['id']}", valid_days=pol.coupon_valid_days,
                         liable_merchant_id=facts["merchant_id"])
    uow.session.add(IncidentOrder(incident_id=incident.id, order_id=order["id"], buyer_id=order["buyer_id"],
                                  outcome="postponed" if new_day else "refunded", new_date=new_day,
                                  refund_cents=refund, coupon_cents=coupon))
    gift = f" You get a {yuan(coupon)} no-threshold coupon." if coupon else ""
    if new_day is not None:
        title = f"Order #{order['id']} moved to {new_day.isoformat()}"
        body = (f"{facts['title']} cannot serve everyone on {order['service_date']}. Your order is now for "
                f"{new_day.isoformat()}; sorry.{gift} You may pick another date with room within "
                f"{pol.postpone_search_days} days (POST /api/v1/orders/{order['id']}/redate) or ask for a refund.")
    else:
        title = f"Order #{order['id']} refunded"
        body = f"{facts['title']} cannot serve your order and no other date is free: {yuan(refund)} refunded.{gift}"
    notify.notify_user(uow, order["buyer_id"], "oversale_compensation", title, body,
                       {"order_id": order["id"], "incident_id": incident.id,
                        "new_date": new_day.isoformat() if new_day else None, "coupon_cents": coupon,
                        "refund_cents": refund}, "warning")


def _postpone(uow: InTransaction, incident: OversaleIncident, facts: dict[str, Any], order: dict[str, Any],
              pol: capacity_rules.GovernancePolicy) -> date | None:
    """Move the order to the first date with room in the policy window (the date that lost capacity must
    be freed now), then offer the buyer any other date with room in that window, agreed in advance."""
    if order["service_date"] is None:
        return None
    zone = ZoneInfo(facts["timezone"])
    last = min(facts["valid_until"].astimezone(zone).date(),
               max(order["service_date"], uow.now.astimezone(zone).date()) + timedelta(days=pol.postpone_search_days))
    first = max(order["service_date"], uow.now.astimezone(zone).date()) + timedelta(days=1)
    ref = f"incident:{incident.id}"
    why = f"{facts['title']} cannot serve everyone on {order['service_date']}"
    for i in range((last - first).days + 1):
        day: date = first + timedelta(days=i)
        if orders.move_by_agreement(uow, order["id"], day, order_rules.RedateOrigin.BREAKER, ref, why):
            orders.offer_redating(uow, order["id"], first, last, order_rules.RedateOrigin.BREAKER, ref, why)
            return day
    return None


def _incident_view(uow: InTransaction, incident: OversaleIncident) -> dict[str, Any]:
    affected = uow.session.scalars(select(IncidentOrder).where(IncidentOrder.incident_id == incident.id)
                                   .order_by(IncidentOrder.id))
    return {"id": incident.id, "deal_id": incident.deal_id, "merchant_id": incident.merchant_id,
            "category": incident.category, "bucket": incident.bucket, "cap": incident.cap, "sold": incident.sold,
            "over": incident.over, "cause": incident.cause, "created_at": incident.created_at.isoformat(),
            "ref": f"incident:{incident.id}",
            "orders": [{"order_id": a.order_id, "buyer_id": a.buyer_id, "outcome": a.outcome,
                        "new_date": a.new_date.isoformat() if a.new_date else None, "refund_cents": a.refund_cents,
                        "coupon_cents": a.coupon_cents} for a in affected]}


def oversale_incident_for_order(uow: UnitOfWork, order_id: int) -> dict[str, Any] | None:
    """Inside an open unit of work: the (latest) over-sale incident that hit this order, if any."""
    row = uow.session.execute(select(OversaleIncident, IncidentOrder.order_id).join(
        IncidentOrder, IncidentOrder.incident_id == OversaleIncident.id).where(IncidentOrder.order_id == order_id)
        .order_by(OversaleIncident.id.desc()).limit(1)).first()
    if row is None:
        return None
    incident = row[0]
    return {"id": incident.id, "deal_id": incident.deal_id, "merchant_id": incident.merchant_id,
            "order_id": order_id, "category": incident.category, "ref": f"incident:{incident.id}",
            "bucket": incident.bucket, "created_at": incident.created_at}


def list_incidents(uow: UnitOfWork, actor: Principal, deal_id: int | None = None) -> list[dict[str, Any]]:
    with uow:
        q = select(OversaleIncident).order_by(OversaleIncident.id.desc()).limit(200)
        merchant_id = actor.merchant_scope()
        if merchant_id is not None:
            q = q.where(OversaleIncident.merchant_id == merchant_id)
        if deal_id:
            q = q.where(OversaleIncident.deal_id == deal_id)
        return [_incident_view(uow, i) for i in uow.session.scalars(q)]


def get_incident(uow: UnitOfWork, actor: Principal, incident_id: int) -> dict[str, Any]:
    with uow:
        incident = uow.session.get(OversaleIncident, incident_id)
        if incident is None or not (actor.role == Role.OPS or actor.merchant_id == incident.merchant_id):
            raise NotFound(f"incident {incident_id} not found")
        return _incident_view(uow, incident)
