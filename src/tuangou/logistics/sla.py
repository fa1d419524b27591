"""The shipping SLA (C2) and logistics exceptions (C6).

Past the deadline with nothing shipped, one unit of work per order cancels it: a conditional UPDATE
claims the record (so a shipment, a second worker or a rerun finds nothing to do), the order is refunded
from escrow, the buyer is compensated by the platform first and the merchant owes it back, and a
`non_shipment` violation is recorded — all committed together or not at all, each keyed per order.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from tuangou.core.audit import record_audit
from tuangou.core.auth import Principal, Role
from tuangou.core.db import UnitOfWork, retry_on_deadlock
from tuangou.core.errors import Conflict, DomainError, NotFound, ValidationFailed
from tuangou.core.money import yuan
from tuangou.core.outbox import record_event
from tuangou.logistics import coldchain, records, rules
from tuangou.logistics.models import LogisticsException, ShippingOrder
from tuangou.logistics.policy import current_policy
from tuangou.merchants import service as merchants
from tuangou.notify import service as notify
from tuangou.orders import service as orders

OS = rules.OrderShipping
R = ShippingOrder


def warn_due(uow: UnitOfWork, batch: int = 1000) -> int:
    """Tell merchants about orders whose deadline is near; once per deadline."""
    with uow:
        rows = list(uow.session.scalars(select(R).where(R.status == OS.AWAITING, R.warn_at <= uow.now,
                                                        R.warned_at.is_(None), R.due_at > uow.now)
                                        .order_by(R.warn_at).limit(batch)))
        n = 0
        for r in rows:
            if uow.session.execute(update(R).where(R.order_id == r.order_id, R.warned_at.is_(None))
                                   .values(warned_at=uow.now)).rowcount:  # type: ignore[attr-defined]
                n += 1
                notify.notify_merchant(uow, r.merchant_id, "ship_soon", f"Ship order #{r.order_id} by "
                                       f"{r.due_at.isoformat()}", "Past the deadline the platform cancels it, "
                                       "refunds and compensates the buyer at your cost and records a non-shipment.",
                                       {"order_id": r.order_id, "ship_by": r.due_at.isoformat()}, severity="warning")
        uow.commit()
        return n


def overdue(uow: UnitOfWork, batch: int = 1000) -> list[int]:
    with uow:
        return list(uow.session.scalars(select(R.order_id).where(R.status == OS.AWAITING, R.due_at <= uow.now)
                                        .order_by(R.due_at).limit(batch)))


def cancel_overdue(uow: UnitOfWork, batch: int = 1000) -> int:
    """One unit of work per overdue order; safe with several workers and after a crash."""
    return sum(1 for order_id in overdue(uow, batch) if cancel_for_sla(uow, order_id))


@retry_on_deadlock
def cancel_for_sla(uow: UnitOfWork, order_id: int) -> bool:
    """Cancel, refund and compensate one order not shipped in time; False when someone else did (or the
    order shipped, was paused or ended meanwhile)."""
    with uow:
        policy = current_policy(uow)
        claimed = uow.session.execute(update(R).where(R.order_id == order_id, R.status == OS.AWAITING,
                                                      R.due_at <= uow.now)
                                      .values(status=OS.CANCELLED, ended_at=uow.now)).rowcount  # type: ignore[attr-defined]
        if not claimed:
            return False
        r = uow.session.get(R, order_id)
        assert r is not None
        uow.session.refresh(r)
        try:
            refunded = orders.refund_in_uow(uow, order_id, None, f"not shipped by {r.due_at.isoformat()}: "
                                            "cancelled by the platform")
        except DomainError:  # the buyer refunded first: no breach left to make good
            refunded = -1
        if refunded < 0:
            uow.session.execute(update(R).where(R.order_id == order_id).values(status=OS.CLOSED))
            uow.commit()
            return False
        amount = rules.late_compensation(r.amount_cents, policy)
        records.compensate(uow, r, amount, f"sla:{order_id}", f"order #{order_id} was not shipped in time")
        r.compensation_cents = amount
        merchants.record_violation(uow, merchant_id=r.merchant_id, category=r.category, kind="non_shipment",
                                   ref=f"order:{order_id}", reason=f"order #{order_id} not shipped by "
                                   f"{r.due_at.isoformat()}", deal_id=r.deal_id,
                                   details={"compensation_cents": amount})
        record_event(uow.session, "OrderCancelledForNonShipment", {"order_id": order_id, "refund_cents": refunded,
                     "compensation_cents": amount}, uow.now, merchant_id=r.merchant_id)
        notify.notify_user(uow, r.buyer_id, "order_cancelled_not_shipped", f"Order #{order_id} cancelled: not shipped",
                           f"Refund {yuan(refunded)} and compensation {yuan(amount)} are on their way.",
                           {"order_id": order_id, "compensation_cents": amount})
        notify.notify_merchant(uow, r.merchant_id, "order_cancelled_not_shipped",
                               f"Order #{order_id} cancelled: not shipped in time",
                               f"The buyer was compensated {yuan(amount)}, which you owe the platform.",
                               {"order_id": order_id}, severity="warning")
        uow.commit()
        return True


# ---- logistics exceptions (C6) --------------------------------------------------------------------

def _exception_view(e: LogisticsException) -> dict[str, Any]:
    return {"id": e.id, "merchant_id": e.merchant_id, "carrier": e.carrier, "kind": e.kind,
            "description": e.description, "evidence": e.evidence, "order_ids": e.order_ids,
            "starts_at": records.iso(e.starts_at), "until": records.iso(e.until), "status": e.status,
            "paused_minutes": e.paused_minutes, "created_at": records.iso(e.created_at),
            "decided_at": records.iso(e.decided_at), "decision_reason": e.decision_reason}


def report_exception(uow: UnitOfWork, actor: Principal, *, kind: str, description: str,
                     evidence: list[dict[str, Any]], order_ids: list[int], until: datetime,
                     carrier: str | None = None, starts_at: datetime | None = None) -> dict[str, Any]:
    """A merchant (or ops) reports a failure with evidence; ops decide. Nothing pauses until then."""
    actor.require(Role.MERCHANT, Role.OPS)
    if kind not in rules.ExceptionKind.__members__.values():
        raise ValidationFailed(f"kind must be one of {', '.join(rules.ExceptionKind)}", code="invalid_kind")
    if not evidence or not any(str(v).strip() for e in evidence for v in e.values()):
        raise ValidationFailed("an exception needs evidence (a photo, a notice, a carrier statement)",
                               code="evidence_required")
    if not order_ids and not carrier:
        raise ValidationFailed("name the affected orders or the carrier", code="orders_required")
    with uow:
        start = starts_at or uow.now
        if until <= start:
            raise ValidationFailed("until (the new estimate) must be after the start", code="invalid_estimate")
        if carrier:
            carrier = records.carrier_of(uow, carrier).code
        policy = current_policy(uow)
        for order_id in order_ids:
            facts = orders.order_facts(uow, order_id)
            if not records.may_see(actor, facts["merchant_id"]):
                raise NotFound(f"order {order_id} not found")
            records.ensure_tracked(uow, order_id, policy)
        e = LogisticsException(merchant_id=actor.merchant_id if actor.role == Role.MERCHANT else None,
                               carrier=carrier, kind=kind, description=description[:2000],
                               evidence=[{k: str(v)[:500] for k, v in x.items()} for x in evidence][:20],
                               order_ids=sorted(set(order_ids)), starts_at=start, until=until,
                               status=rules.ExceptionStatus.OPEN, paused_minutes=0, reported_by=actor.user_id,
                               reporter_role=actor.role, created_at=uow.now)
        uow.session.add(e)
        uow.session.flush()
        notify.notify_ops(uow, "logistics_exception", f"Logistics exception #{e.id} ({kind})", description[:200],
                          {"exception_id": e.id})
        uow.commit()
        return _exception_view(e)


def list_exceptions(uow: UnitOfWork, actor: Principal, status: str | None = None) -> list[dict[str, Any]]:
    actor.require(Role.MERCHANT, Role.OPS)
    with uow:
        q = select(LogisticsException).order_by(LogisticsException.id.desc()).limit(200)
        if actor.role == Role.MERCHANT:
            q = q.where(LogisticsException.merchant_id == actor.merchant_id)
        if status:
            q = q.where(LogisticsException.status == status)
        return [_exception_view(e) for e in uow.session.scalars(q)]


@retry_on_deadlock
def decide_exception(uow: UnitOfWork, actor: Principal, exception_id: int, *, accept: bool, reason: str
                     ) -> dict[str, Any]:
    """Ops accept (the clock pauses for the affected orders, their buyers get the new estimate; a carrier
    outage also marks the carrier down and re-routes open parcels) or reject an exception."""
    actor.require(Role.OPS)
    if not reason.strip():
        raise ValidationFailed("a reason is required", code="reason_required")
    with uow:
        e = uow.session.get(LogisticsException, exception_id)
        if e is None:
            raise NotFound(f"exception {exception_id} not found")
        policy = current_policy(uow)
        pause = rules.pause_minutes(e.starts_at, e.until, policy) if accept else 0
        status = rules.ExceptionStatus.ACCEPTED if accept else rules.ExceptionStatus.REJECTED
        if not uow.session.execute(update(LogisticsException).where(
                LogisticsException.id == e.id, LogisticsException.status == rules.ExceptionStatus.OPEN)
                .values(status=status, decided_at=uow.now, decided_by=actor.user_id, decision_reason=reason[:500],
                        paused_minutes=pause)).rowcount:  # type: ignore[attr-defined]
            raise Conflict(f"exception is {e.status}; it was decided already", code="exception_decided")
        uow.session.refresh(e)
        outcome: dict[str, Any] = {"paused_orders": 0, "rerouted": 0}
        if accept:
            outcome["paused_orders"] = _pause(uow, e, pause)
            if e.kind == rules.ExceptionKind.CARRIER_OUTAGE and e.carrier:
                outcome["rerouted"] = coldchain.reroute(uow, e.carrier, e.merchant_id, policy)
        record_audit(uow.session, actor_id=actor.user_id, actor_role="ops",
                     action="accept_logistics_exception" if accept else "reject_logistics_exception",
                     target=f"logistics_exception:{e.id}", reason=reason, now=uow.now, details=outcome)
        if e.merchant_id is not None:
            notify.notify_merchant(uow, e.merchant_id, "logistics_exception_decided",
                                   f"Exception #{e.id} {status.value}", reason, {"exception_id": e.id})
        uow.commit()
        return {**_exception_view(e), **outcome}


def _pause(uow: UnitOfWork, e: LogisticsException, minutes: int) -> int:
    """Move the affected open orders' deadlines by the paused time; the merchant is not late for it."""
    n = 0
    for order_id in e.order_ids:
        r = uow.session.get(R, order_id)
        if r is None or r.status not in (OS.AWAITING, OS.PARTIAL):
            continue
        due = r.due_at + timedelta(minutes=minutes)
        if uow.session.execute(update(R).where(R.order_id == order_id, R.status.in_((OS.AWAITING, OS.PARTIAL)),
                                               R.due_at == r.due_at)
                               .values(due_at=due, warn_at=r.warn_at + timedelta(minutes=minutes), warned_at=None,
                                       paused_minutes=R.paused_minutes + minutes)).rowcount:  # type: ignore[attr-defined]
            n += 1
            notify.notify_user(uow, r.buyer_id, "shipping_delayed", f"Order #{order_id} is delayed ({e.kind})",
                               f"{e.description[:200]} New estimate: ships by {due.isoformat()}.",
                               {"order_id": order_id, "ship_by": due.isoformat()})
    return n
