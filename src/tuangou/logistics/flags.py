"""Tracking-number verification (C3): suspected fake shipments are flagged with an explanation, ops review
each flag, and a confirmed one voids the shipment and records a `fake_shipment` violation."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from tuangou.core.audit import record_audit
from tuangou.core.auth import Principal, Role
from tuangou.core.db import UnitOfWork, insert_ignore, retry_on_deadlock
from tuangou.core.errors import Conflict, NotFound, ValidationFailed
from tuangou.core.outbox import record_event
from tuangou.logistics import records, rules
from tuangou.logistics.models import Flag, Shipment, ShippingOrder, Warehouse
from tuangou.logistics.policy import current_policy
from tuangou.merchants import service as merchants
from tuangou.notify import service as notify

S = rules.ShipmentStatus


def raise_flag(uow: UnitOfWork, s: Shipment, kind: rules.FlagKind, explanation: str,
               evidence: dict[str, Any]) -> bool:
    """Inside an open unit of work: flag a shipment once per kind; ops are told. True if new."""
    new = insert_ignore(uow.session, Flag.__table__, {
        "shipment_id": s.id, "order_id": s.order_id, "merchant_id": s.merchant_id, "kind": kind.value,
        "explanation": explanation[:500], "evidence": evidence, "status": rules.FlagStatus.OPEN,
        "created_at": uow.now, "decided_at": None, "decided_by": None, "decision_reason": ""},
        ["shipment_id", "kind"])
    if new:
        record_event(uow.session, "ShipmentFlagged", {"shipment_id": s.id, "order_id": s.order_id,
                                                      "kind": kind.value}, uow.now, merchant_id=s.merchant_id)
        notify.notify_ops(uow, "shipment_flagged", f"Suspected fake shipment #{s.id} ({kind.value})", explanation,
                          {"shipment_id": s.id, "order_id": s.order_id})
    return bool(new)


def check_reuse(uow: UnitOfWork, s: Shipment) -> bool:
    """The same tracking number on another buyer's order is a parcel that cannot be in two places."""
    others = list(uow.session.execute(select(Shipment.id, Shipment.order_id).where(
        Shipment.carrier == s.carrier, Shipment.tracking_number == s.tracking_number, Shipment.id != s.id,
        Shipment.buyer_id != s.buyer_id, Shipment.status != S.VOIDED).limit(20)))
    if not others:
        return False
    return raise_flag(uow, s, rules.FlagKind.REUSED_NUMBER,
                      f"tracking number {s.tracking_number} of {s.carrier} is also used on unrelated order(s) "
                      f"{', '.join(str(o) for _, o in others)}",
                      {"other_shipments": [i for i, _ in others], "other_orders": [o for _, o in others]})


def check_first_scans(uow: UnitOfWork, batch: int = 2000, max_batches: int = 200) -> dict[str, int]:
    """Shipments whose first-scan time has come: no scan -> flag; a first scan far from the warehouse
    -> flag. Each shipment is checked once (scan_checked), so the tick stays cheap with many open
    parcels; batches of `batch`, one transaction each, until none is left."""
    counts = {"checked": 0, "flagged": 0}
    for _ in range(max_batches):
        done = _check_batch(uow, batch, counts)
        if done < batch:
            break
    return counts


def _check_batch(uow: UnitOfWork, batch: int, counts: dict[str, int]) -> int:
    with uow:
        policy = current_policy(uow)
        due = list(uow.session.scalars(select(Shipment).where(
            Shipment.scan_checked.is_(False), Shipment.scan_due_at <= uow.now).order_by(Shipment.scan_due_at)
            .limit(batch)))
        scanned = list(uow.session.scalars(select(Shipment).where(
            Shipment.scan_checked.is_(False), Shipment.first_scan_at.is_not(None)).limit(batch)))
        places = {w.id: (w.lat, w.lon) for w in uow.session.scalars(select(Warehouse).where(Warehouse.id.in_(
            {s.warehouse_id for s in due + scanned if s.warehouse_id is not None})))}
        unique = list({s.id: s for s in due + scanned}.values())
        for i in range(0, len(unique), 500):
            uow.session.execute(update(Shipment).where(Shipment.id.in_([s.id for s in unique[i:i + 500]]))
                                .values(scan_checked=True))
        for s in unique:
            counts["checked"] += 1
            if s.status in (S.VOIDED, S.LABEL_PENDING, S.REROUTED):
                continue
            if s.first_scan_at is None or (s.scan_due_at is not None and s.first_scan_at > s.scan_due_at):
                counts["flagged"] += raise_flag(
                    uow, s, rules.FlagKind.NO_FIRST_SCAN,
                    f"{s.carrier} {s.tracking_number}: no carrier scan by {records.iso(s.scan_due_at)} "
                    f"(uploaded {records.iso(s.labelled_at)})", {"scan_due_at": records.iso(s.scan_due_at)})
                continue
            home = places.get(s.warehouse_id) if s.warehouse_id is not None else None
            scan = (s.first_scan_lat, s.first_scan_lon) if s.first_scan_lat is not None else None
            km = rules.far_first_scan(home if home and home[0] is not None else None,  # type: ignore[arg-type]
                                      scan, policy)  # type: ignore[arg-type]
            if km is not None:
                counts["flagged"] += raise_flag(
                    uow, s, rules.FlagKind.FAR_FIRST_SCAN,
                    f"{s.carrier} {s.tracking_number}: first scan {km} km from the ship-from warehouse "
                    f"(more than {policy.far_first_scan_km} km)", {"km": km, "warehouse_id": s.warehouse_id})
        uow.commit()
        return max(len(due), len(scanned))


def _flag_view(f: Flag) -> dict[str, Any]:
    return {"id": f.id, "shipment_id": f.shipment_id, "order_id": f.order_id, "merchant_id": f.merchant_id,
            "kind": f.kind, "explanation": f.explanation, "evidence": f.evidence, "status": f.status,
            "created_at": records.iso(f.created_at), "decided_at": records.iso(f.decided_at),
            "decision_reason": f.decision_reason}


def list_flags(uow: UnitOfWork, actor: Principal, *, status: str | None = None, merchant_id: int | None = None,
               cursor: int | None = None, limit: int = 50) -> list[dict[str, Any]]:
    actor.require(Role.OPS, Role.MERCHANT)
    with uow:
        q = select(Flag).order_by(Flag.id.desc()).limit(limit)
        if actor.role == Role.MERCHANT:
            q = q.where(Flag.merchant_id == actor.merchant_id)
        elif merchant_id is not None:
            q = q.where(Flag.merchant_id == merchant_id)
        if status:
            q = q.where(Flag.status == status)
        if cursor:
            q = q.where(Flag.id < cursor)
        return [_flag_view(f) for f in uow.session.scalars(q)]


@retry_on_deadlock
def review_flag(uow: UnitOfWork, actor: Principal, flag_id: int, *, confirm: bool, reason: str) -> dict[str, Any]:
    """Ops decide a flag. Confirmed: the shipment is void (its units are due again, so the SLA
    cancels and compensates if the deadline has passed), a `fake_shipment` violation (once per
    shipment) and an inbox notice to the merchant."""
    actor.require(Role.OPS)
    if not reason.strip():
        raise ValidationFailed("a reason is required", code="reason_required")
    with uow:
        flag = uow.session.get(Flag, flag_id)
        if flag is None:
            raise NotFound(f"flag {flag_id} not found")
        status = rules.FlagStatus.CONFIRMED if confirm else rules.FlagStatus.DISMISSED
        if not uow.session.execute(update(Flag).where(Flag.id == flag.id, Flag.status == rules.FlagStatus.OPEN)
                                   .values(status=status, decided_at=uow.now, decided_by=actor.user_id,
                                           decision_reason=reason[:500])).rowcount:  # type: ignore[attr-defined]
            raise Conflict(f"flag is {flag.status}; it was decided already", code="flag_decided")
        uow.session.refresh(flag)
        if confirm:
            _confirm_fake(uow, flag, reason)
        record_audit(uow.session, actor_id=actor.user_id, actor_role="ops",
                     action="confirm_fake_shipment" if confirm else "dismiss_shipment_flag",
                     target=f"shipment:{flag.shipment_id}", reason=reason, now=uow.now, details={"flag_id": flag.id})
        uow.commit()
        return _flag_view(flag)


def _confirm_fake(uow: UnitOfWork, flag: Flag, reason: str) -> None:
    s = uow.session.get(Shipment, flag.shipment_id)
    assert s is not None
    if uow.session.execute(update(Shipment).where(Shipment.id == s.id, Shipment.status.in_(
            (S.AWAITING_SCAN, S.IN_TRANSIT, S.DELIVERED))).values(status=S.VOIDED)).rowcount:  # type: ignore[attr-defined]
        records.give_back_units(uow, s.order_id, s.units)
    uow.session.execute(update(ShippingOrder).where(ShippingOrder.order_id == s.order_id).values(defect=True))
    record = uow.session.get(ShippingOrder, s.order_id)
    category = record.category if record is not None else "other"
    merchants.record_violation(uow, merchant_id=s.merchant_id, category=category, kind="fake_shipment",
                               ref=f"shipment:{s.id}", reason=f"fake shipment confirmed: {flag.explanation}"[:500],
                               deal_id=s.deal_id, details={"order_id": s.order_id, "flag_id": flag.id})
    notify.notify_merchant(uow, s.merchant_id, "fake_shipment", f"Shipment #{s.id} confirmed as fake",
                           f"{flag.explanation}. Ops: {reason}. Ship the order for real before its deadline.",
                           {"shipment_id": s.id, "order_id": s.order_id}, severity="warning")
    notify.notify_user(uow, s.buyer_id, "shipment_voided", f"Order #{s.order_id}: that tracking number was not real",
                       "The platform is following up; if the goods do not ship in time you are refunded and "
                       "compensated automatically.", {"order_id": s.order_id})
    record_event(uow.session, "FakeShipmentConfirmed", {"shipment_id": s.id, "order_id": s.order_id}, uow.now,
                 merchant_id=s.merchant_id)
