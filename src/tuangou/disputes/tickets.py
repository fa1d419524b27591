"""Self-service after-sales tickets (B11): the buyer describes the problem with photos, triage proposes
return / reship / discount, the buyer picks, the merchant or ops confirm, and money and stock follow.

Money for a return or a discount comes from the merchant's account (it was settled for the goods);
a return puts the unit back on sale, a reship takes one more unit of stock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from tuangou.catalog import service as catalog
from tuangou.core import ledger
from tuangou.core.audit import record_audit
from tuangou.core.auth import Principal, Role
from tuangou.core.db import UnitOfWork
from tuangou.core.errors import Conflict, NotFound, ValidationFailed
from tuangou.core.outbox import record_event
from tuangou.disputes import rules
from tuangou.disputes.models import AfterSalesTicket
from tuangou.notify import service as notify
from tuangou.orders import service as orders

TRIAGE: rules.Triage = rules.RuleTriage()  # swap for a model-backed triage with the same `propose`


def _view(t: AfterSalesTicket) -> dict[str, Any]:
    return {"id": t.id, "order_id": t.order_id, "buyer_id": t.buyer_id, "merchant_id": t.merchant_id,
            "description": t.description, "photos": t.photos, "proposals": t.proposals, "chosen": t.chosen,
            "status": t.status, "decision_reason": t.decision_reason, "created_at": t.created_at.isoformat(),
            "decided_at": t.decided_at.isoformat() if t.decided_at else None}


def _photo(p: dict[str, Any]) -> rules.Photo:
    taken = p.get("taken_at")
    when = datetime.fromisoformat(taken) if isinstance(taken, str) and taken else None
    if when is not None and when.tzinfo is None:
        raise ValidationFailed("photo taken_at needs a time zone offset")
    return rules.Photo(str(p.get("name", ""))[:200], when, int(p.get("size_bytes") or 0))


def open_ticket(uow: UnitOfWork, actor: Principal, order_id: int, description: str,
                photos: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    actor.require(Role.BUYER)
    if not description.strip():
        raise ValidationFailed("describe the problem", code="description_required")
    try:
        parsed = tuple(_photo(p) for p in (photos or [])[:10])
    except ValueError as exc:
        raise ValidationFailed(f"bad photo metadata: {exc}") from exc
    with uow:
        facts = orders.order_facts(uow, order_id)
        if facts["buyer_id"] != actor.user_id:
            raise NotFound(f"order {order_id} not found")
        if facts["status"] not in ("paid", "completed"):
            raise Conflict(f"order is {facts['status']}; after-sales needs a paid order", code="not_eligible")
        proposals = TRIAGE.propose(rules.TicketFacts(description, facts["amount_cents"], facts["quantity"],
                                                     facts["paid_at"], uow.now, parsed))
        t = AfterSalesTicket(order_id=order_id, buyer_id=actor.user_id, merchant_id=facts["merchant_id"],
                             description=description[:2000],
                             photos=[{"name": p.name, "taken_at": p.taken_at.isoformat() if p.taken_at else None,
                                      "size_bytes": p.size_bytes} for p in parsed],
                             proposals=[{"remedy": p.remedy, "amount_cents": p.amount_cents, "units": p.units,
                                         "why": p.why} for p in proposals],
                             status=rules.TicketStatus.PROPOSED, created_at=uow.now)
        uow.session.add(t)
        uow.session.flush()
        record_event(uow.session, "TicketOpened", {"ticket_id": t.id, "order_id": order_id}, uow.now,
                     merchant_id=t.merchant_id)
        notify.notify_merchant(uow, t.merchant_id, "ticket_opened", f"After-sales ticket #{t.id}",
                               description[:200], {"ticket_id": t.id})
        uow.commit()
        return _view(t)


def _load(uow: UnitOfWork, actor: Principal, ticket_id: int) -> AfterSalesTicket:
    t = uow.session.get(AfterSalesTicket, ticket_id)
    if t is None or not (actor.role == Role.OPS or (actor.role == Role.BUYER and t.buyer_id == actor.user_id)
                         or (actor.role == Role.MERCHANT and t.merchant_id == actor.merchant_id)):
        raise NotFound(f"ticket {ticket_id} not found")
    return t


def _move(uow: UnitOfWork, t: AfterSalesTicket, source: str, **values: Any) -> None:
    moved = uow.session.execute(update(AfterSalesTicket).where(AfterSalesTicket.id == t.id,
                                                               AfterSalesTicket.status == source)
                                .values(**values)).rowcount  # type: ignore[attr-defined]
    if not moved:
        raise Conflict(f"ticket is {t.status}", code="invalid_transition")
    uow.session.refresh(t)


def choose(uow: UnitOfWork, actor: Principal, ticket_id: int, proposal: int) -> dict[str, Any]:
    actor.require(Role.BUYER)
    with uow:
        t = _load(uow, actor, ticket_id)
        if not 0 <= proposal < len(t.proposals):
            raise ValidationFailed(f"proposal must be between 0 and {len(t.proposals) - 1}")
        _move(uow, t, rules.TicketStatus.PROPOSED, status=rules.TicketStatus.CHOSEN, chosen=proposal)
        notify.notify_merchant(uow, t.merchant_id, "ticket_chosen", f"Ticket #{t.id}: buyer chose "
                               f"{t.proposals[proposal]['remedy']}", "", {"ticket_id": t.id})
        uow.commit()
        return _view(t)


def decide(uow: UnitOfWork, actor: Principal, ticket_id: int, approve: bool, reason: str = "") -> dict[str, Any]:
    """The merchant (its own) or ops confirm the buyer's choice, or turn it down."""
    actor.require(Role.MERCHANT, Role.OPS)
    if (actor.role == Role.OPS or not approve) and not reason.strip():
        raise ValidationFailed("a reason is required", code="reason_required")
    with uow:
        t = _load(uow, actor, ticket_id)
        status = rules.TicketStatus.RESOLVED if approve else rules.TicketStatus.REJECTED
        _move(uow, t, rules.TicketStatus.CHOSEN, status=status, decided_by=actor.user_id, decision_reason=reason,
              decided_at=uow.now)
        if approve and t.chosen is not None:
            _carry_out(uow, t, t.proposals[t.chosen])
        if actor.role == Role.OPS:
            record_audit(uow.session, actor_id=actor.user_id, actor_role=actor.role, action=f"ticket_{status}",
                         target=f"ticket:{t.id}", reason=reason, now=uow.now)
        record_event(uow.session, f"Ticket{status.value.capitalize()}", {"ticket_id": t.id, "order_id": t.order_id},
                     uow.now, merchant_id=t.merchant_id)
        notify.notify_user(uow, t.buyer_id, f"ticket_{status}", f"After-sales ticket #{t.id} {status}", reason,
                           {"ticket_id": t.id})
        uow.commit()
        return _view(t)


def _carry_out(uow: UnitOfWork, t: AfterSalesTicket, p: dict[str, Any]) -> None:
    facts = orders.order_facts(uow, t.order_id)
    if p["amount_cents"]:
        orders.owe_extra_refund(uow, t.order_id, int(p["amount_cents"]), f"ticket:{t.id}",
                                f"after-sales ticket #{t.id}: {p['remedy']}", ledger.merchant_account(t.merchant_id))
    if p["remedy"] == rules.Remedy.RETURN and p["units"]:
        catalog.release_sold(uow, facts["deal_id"], facts["buckets"], int(p["units"]))
    elif p["remedy"] == rules.Remedy.RESHIP and p["units"]:
        ctx = catalog.deal_context(uow, facts["deal_id"])
        catalog.reserve(uow, ctx, facts["buckets"], int(p["units"]))  # refuses when no stock is left
        catalog.confirm_sold(uow, facts["deal_id"], facts["buckets"], int(p["units"]))


def get_ticket(uow: UnitOfWork, actor: Principal, ticket_id: int) -> dict[str, Any]:
    with uow:
        return _view(_load(uow, actor, ticket_id))


def list_tickets(uow: UnitOfWork, actor: Principal, status: str | None = None) -> list[dict[str, Any]]:
    with uow:
        q = select(AfterSalesTicket).order_by(AfterSalesTicket.id.desc()).limit(100)
        if actor.role == Role.BUYER:
            q = q.where(AfterSalesTicket.buyer_id == actor.user_id)
        elif actor.role == Role.MERCHANT:
            q = q.where(AfterSalesTicket.merchant_id == actor.merchant_id)
        elif actor.role != Role.OPS:
            return []
        if status:
            q = q.where(AfterSalesTicket.status == status)
        return [_view(t) for t in uow.session.scalars(q)]
