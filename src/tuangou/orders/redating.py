"""Re-dating a booked order (预约改期): the voucher binds its service date and slot, and a change of date
is agreed, never taken.

Two ways to agree: governance offers it in advance (the circuit breaker moved the order, a medium-tier
dispute promised a rebooking) and the buyer's pick inside the offer's window applies at once; or the
buyer proposes a date inside the policy window and the merchant approves or rejects it. Applying moves
the order's unused vouchers and their capacity units in one unit of work: the order row is locked first,
then the two buckets in key order, the target takes the units with a guarded UPDATE (never past its
cap) and only then does the source release them (`catalog.move_sold`).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update

from tuangou.capacity import service as capacity
from tuangou.catalog import rules as catalog_rules
from tuangou.catalog import service as catalog
from tuangou.core.audit import record_audit
from tuangou.core.auth import Principal, Role
from tuangou.core.db import InTransaction, UnitOfWork, retry_on_deadlock
from tuangou.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from tuangou.core.outbox import record_event
from tuangou.notify import service as notify
from tuangou.orders import rules
from tuangou.orders.models import Order, Redating, Voucher
from tuangou.orders.placing import refuse
from tuangou.orders.views import visible

OPEN = (rules.RedateStatus.OFFERED, rules.RedateStatus.PROPOSED)


def _locked_order(tx: InTransaction, order_id: int) -> Order:
    order = tx.session.scalar(select(Order).where(Order.id == order_id).with_for_update()
                              .execution_options(populate_existing=True))
    if order is None:
        raise NotFound(f"order {order_id} not found")
    return order


def _voucher_counts(tx: InTransaction, order_id: int) -> tuple[int, int]:
    rows = {status: n for status, n in tx.session.execute(
        select(Voucher.status, func.count()).where(Voucher.order_id == order_id).group_by(Voucher.status))}
    return int(rows.get(rules.VoucherStatus.ISSUED, 0)), int(rows.get(rules.VoucherStatus.REDEEMED, 0))


def _open_row(tx: InTransaction, order_id: int) -> Redating | None:
    return tx.session.scalar(select(Redating).where(Redating.order_id == order_id, Redating.status.in_(OPEN)))


def _today(tx: InTransaction, ctx: catalog.DealContext) -> date:
    return tx.now.astimezone(ZoneInfo(ctx.timezone)).date()


def _policy_window(tx: InTransaction, ctx: catalog.DealContext) -> tuple[date, date]:
    last_valid = ctx.valid_until.astimezone(ZoneInfo(ctx.timezone)).date()
    return rules.redate_window(_today(tx, ctx), capacity.cached_policy(tx).redate_window_days, last_valid)


def _case(tx: InTransaction, order: Order, ctx: catalog.DealContext, to_date: date, to_slot: str | None,
          window: tuple[date, date]) -> rules.RedateCase:
    issued, redeemed = _voucher_counts(tx, order.id)
    return rules.RedateCase(order.status, issued, redeemed, order.service_date, order.slot, to_date, to_slot,
                            _today(tx, ctx), window[0], window[1], frozenset(ctx.slots))


def _move(tx: InTransaction, order: Order, to_date: date, to_slot: str | None, units: int) -> bool:
    """Move the order's `units` unused vouchers to (to_date, to_slot) if the target has room."""
    assert order.service_date is not None
    old_key = catalog_rules.date_bucket(order.service_date, order.slot)
    new_key = catalog_rules.date_bucket(to_date, to_slot)
    if not catalog.move_sold(tx, order.deal_id, old_key, new_key, units,
                             capacity.day_target(tx, order.deal_id, to_date, to_slot)):
        return False
    old_date = order.service_date
    order.buckets = sorted(new_key if k == old_key else k for k in order.buckets)
    order.service_date, order.slot = to_date, to_slot
    tx.session.flush()
    record_event(tx.session, "OrderRedated", {"order_id": order.id, "from": old_date.isoformat(),
                                              "to": to_date.isoformat(), "slot": to_slot, "units": units},
                 tx.now, merchant_id=order.merchant_id)
    return True


def _close(tx: InTransaction, row: Redating, status: rules.RedateStatus, actor_id: int | None, **values: Any) -> bool:
    """Move an open offer or proposal on, once: a conditional UPDATE on its current status."""
    return bool(tx.session.execute(update(Redating).where(Redating.id == row.id, Redating.status == row.status)
                                   .values(status=status, decided_at=tx.now, decided_by=actor_id, **values))
                .rowcount)  # type: ignore[attr-defined]


def _view(r: Redating) -> dict[str, Any]:
    return {"id": r.id, "order_id": r.order_id, "deal_id": r.deal_id, "origin": r.origin, "status": r.status,
            "from_date": r.from_date.isoformat(), "from_slot": r.from_slot,
            "to_date": r.to_date.isoformat() if r.to_date else None, "to_slot": r.to_slot,
            "window_first": r.window_first.isoformat(), "window_last": r.window_last.isoformat(),
            "units": r.units, "ref": r.ref, "reason": r.reason, "created_at": r.created_at.isoformat(),
            "decided_at": r.decided_at.isoformat() if r.decided_at else None}


def _row(tx: InTransaction, order: Order, origin: str, status: str, window: tuple[date, date], *,
         to_date: date | None = None, to_slot: str | None = None, units: int = 0, ref: str = "",
         reason: str = "", moved_from: tuple[date, str | None] | None = None) -> Redating:
    from_date, from_slot = moved_from or (order.service_date, order.slot)
    assert from_date is not None
    row = Redating(order_id=order.id, buyer_id=order.buyer_id, merchant_id=order.merchant_id, deal_id=order.deal_id,
                   origin=origin, status=status, from_date=from_date, from_slot=from_slot,
                   to_date=to_date, to_slot=to_slot, window_first=window[0], window_last=window[1], units=units,
                   ref=ref, reason=reason[:500], created_at=tx.now)
    tx.session.add(row)
    tx.session.flush()
    return row


# ---- the buyer ----------------------------------------------------------------------------------------

@retry_on_deadlock
def request_redating(uow: UnitOfWork, actor: Principal, order_id: int, to_date: date, to_slot: str | None = None,
                     reason: str = "") -> dict[str, Any]:
    """The buyer asks for another date. Inside an offer's window it applies at once (agreed in advance);
    otherwise it waits for the merchant. Refused with a stable code, changing nothing: `not_order_owner`,
    `voucher_already_redeemed`, `not_redatable`, `same_date`, `outside_window`, `invalid_slot`, `no_room`."""
    with uow:
        order = _locked_order(uow, order_id)
        if actor.role != Role.BUYER or order.buyer_id != actor.user_id:
            raise Forbidden("only the buyer of this order may ask for another date", code="not_order_owner")
        ctx = catalog.deal_context(uow, order.deal_id)
        pending = _open_row(uow, order.id)
        offer = pending if pending is not None and pending.status == rules.RedateStatus.OFFERED else None
        window = (offer.window_first, offer.window_last) if offer else _policy_window(uow, ctx)
        case = _case(uow, order, ctx, to_date, to_slot, window)
        problem = rules.redate_problem(case)
        if problem is not None:
            raise refuse(problem)
        new_key = catalog_rules.date_bucket(to_date, to_slot)
        room = catalog.room_on(uow, order.deal_id, [new_key]).get(new_key)
        if room is None:
            room = capacity.day_target(uow, order.deal_id, to_date, to_slot)
        if room < case.issued:
            raise Conflict(f"{to_date} has room for {room}, {case.issued} needed", code="no_room", remaining=room)
        if offer is not None:
            if not _move(uow, order, to_date, to_slot, case.issued):
                raise Conflict(f"{to_date} has no room left", code="no_room")
            _close(uow, offer, rules.RedateStatus.APPLIED, actor.user_id, to_date=to_date, to_slot=to_slot,
                   units=case.issued)
            notify.notify_merchant(uow, order.merchant_id, "order_redated", f"Order #{order.id} moved to {to_date}",
                                   f"As agreed ({offer.ref or offer.origin}), the buyer chose {to_date}.",
                                   {"order_id": order.id, "service_date": to_date.isoformat()})
            row = offer
        else:
            if pending is not None:
                _close(uow, pending, rules.RedateStatus.WITHDRAWN, actor.user_id)
            row = _row(uow, order, rules.RedateOrigin.BUYER, rules.RedateStatus.PROPOSED, window, to_date=to_date,
                       to_slot=to_slot, units=case.issued, reason=reason)
            notify.notify_merchant(uow, order.merchant_id, "redate_requested",
                                   f"Order #{order.id}: the buyer asks to come on {to_date}",
                                   f"Booked for {order.service_date}; approve or reject request #{row.id}.",
                                   {"order_id": order.id, "redating_id": row.id})
        uow.commit()
        uow.session.refresh(row)
        return _view(row)


def redate_options(uow: UnitOfWork, actor: Principal, order_id: int) -> dict[str, Any]:
    """The dates (and slots) an order may move to now, with the room on each: inside an open offer's
    window (applies at once) or the policy window (the merchant decides)."""
    with uow:
        order = uow.session.get(Order, order_id)
        if order is None or not visible(actor, order.buyer_id, order.merchant_id):
            raise NotFound(f"order {order_id} not found")
        ctx = catalog.deal_context(uow, order.deal_id)
        pending = _open_row(uow, order.id)
        offer = pending if pending is not None and pending.status == rules.RedateStatus.OFFERED else None
        first, last = (offer.window_first, offer.window_last) if offer else _policy_window(uow, ctx)
        first = max(first, _today(uow, ctx))
        issued, _ = _voucher_counts(uow, order.id)
        slots: list[str | None] = [*sorted(ctx.slots)] if ctx.slots else [None]
        days = [first + timedelta(days=i) for i in range(max(0, (last - first).days + 1))]
        keys = {(d, s): catalog_rules.date_bucket(d, s) for d in days for s in slots}
        room = catalog.room_on(uow, order.deal_id, list(keys.values()))
        dates = []
        for (d, s), key in keys.items():
            if (d, s) == (order.service_date, order.slot):
                continue
            left = room[key] if key in room else capacity.day_target(uow, order.deal_id, d, s)
            dates.append({"service_date": d.isoformat(), "slot": s, "remaining": left, "fits": left >= issued > 0})
        return {"order_id": order.id, "service_date": order.service_date.isoformat() if order.service_date else None,
                "slot": order.slot, "units": issued, "pre_agreed": offer is not None,
                "offer": _view(offer) if offer else None, "window_first": first.isoformat(),
                "window_last": last.isoformat(), "dates": dates}


# ---- the merchant ---------------------------------------------------------------------------------------

@retry_on_deadlock
def decide_redating(uow: UnitOfWork, actor: Principal, redating_id: int, approve: bool, reason: str = ""
                    ) -> dict[str, Any]:
    """The merchant (or ops, with a reason) approves a buyer's proposed date, moving the order and its
    capacity units at once, or rejects it; the order keeps its date when refused (`no_room` and the rest)."""
    actor.require(Role.MERCHANT, Role.OPS)
    if actor.role == Role.OPS and not reason.strip():
        raise ValidationFailed("a reason is required", code="reason_required")
    with uow:
        found = uow.session.get(Redating, redating_id)
        if found is None or not (actor.role == Role.OPS or found.merchant_id == actor.merchant_id):
            raise NotFound(f"re-dating {redating_id} not found")
        order = _locked_order(uow, found.order_id)  # the order first, then the buckets: one lock order
        uow.session.refresh(found)
        if found.status != rules.RedateStatus.PROPOSED or found.to_date is None:
            raise Conflict(f"re-dating is {found.status}; only a proposal is decided", code="not_pending")
        if approve:
            ctx = catalog.deal_context(uow, order.deal_id)
            case = _case(uow, order, ctx, found.to_date, found.to_slot, (found.window_first, found.window_last))
            problem = rules.redate_problem(case)
            if problem is not None:
                raise refuse(problem)
            if not _move(uow, order, found.to_date, found.to_slot, case.issued):
                raise Conflict(f"{found.to_date} has no room left", code="no_room")
            _close(uow, found, rules.RedateStatus.APPLIED, actor.user_id, units=case.issued)
        else:
            _close(uow, found, rules.RedateStatus.REJECTED, actor.user_id, reason=reason[:500])
        if actor.role == Role.OPS:
            record_audit(uow.session, actor_id=actor.user_id, actor_role="ops",
                         action="approve_redating" if approve else "reject_redating",
                         target=f"redating:{found.id}", reason=reason, now=uow.now)
        title = (f"Order #{order.id} moved to {found.to_date}" if approve
                 else f"Order #{order.id} keeps {order.service_date}")
        notify.notify_user(uow, order.buyer_id, "redate_decided", title, reason,
                           {"order_id": order.id, "redating_id": found.id, "approved": approve})
        uow.commit()
        uow.session.refresh(found)
        return _view(found)


def list_redatings(uow: UnitOfWork, actor: Principal, status: str | None = None) -> list[dict[str, Any]]:
    with uow:
        # a leader or supplier is refused, not shown everyone's bookings
        q = actor.own_rows(select(Redating).order_by(Redating.id.desc()).limit(200), buyer=Redating.buyer_id,
                           merchant=Redating.merchant_id, what="re-datings")
        if status:
            q = q.where(Redating.status == status)
        return [_view(r) for r in uow.session.scalars(q)]


# ---- governance: moves and offers agreed in advance --------------------------------------------------------

def move_by_agreement(tx: InTransaction, order_id: int, to_date: date, origin: str, ref: str, reason: str) -> bool:
    """Inside an open unit of work: move a paid order's unused vouchers to `to_date` (same slot) if they fit
    there, recorded as an applied re-dating. False, changing nothing, when they do not fit."""
    order = _locked_order(tx, order_id)
    if order.status != rules.OrderStatus.PAID or order.service_date is None or order.service_date == to_date:
        return False
    issued, redeemed = _voucher_counts(tx, order.id)
    moved_from = (order.service_date, order.slot)
    if issued == 0 or redeemed or not _move(tx, order, to_date, order.slot, issued):
        return False
    _row(tx, order, origin, rules.RedateStatus.APPLIED, (to_date, to_date), to_date=to_date, to_slot=order.slot,
         units=issued, ref=ref, reason=reason, moved_from=moved_from)
    return True


def offer_redating(tx: InTransaction, order_id: int, first: date, last: date, origin: str, ref: str,
                   reason: str) -> dict[str, Any] | None:
    """Inside an open unit of work: agree in advance that the buyer may move the order to any date in
    [first, last] with room; their pick applies at once. Replaces an open offer or proposal. None when
    the order has nothing left to move or the window is empty."""
    order = _locked_order(tx, order_id)
    issued, redeemed = _voucher_counts(tx, order.id)
    if order.status != rules.OrderStatus.PAID or order.service_date is None or not issued or redeemed or last < first:
        return None
    pending = _open_row(tx, order.id)
    if pending is not None:
        _close(tx, pending, rules.RedateStatus.WITHDRAWN, None)
    return _view(_row(tx, order, origin, rules.RedateStatus.OFFERED, (first, last), ref=ref, reason=reason))
