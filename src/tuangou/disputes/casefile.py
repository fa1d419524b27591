"""A dispute's case file: its view (history, coupons, stack request), who may see it, its log and notices.

Shared by the commands that open and answer disputes (`service.py`) and those that confirm and remedy
them (`remedies.py`); also the two reads, `get_dispute` and `list_disputes`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from tuangou.core.auth import Principal, Role
from tuangou.core.db import UnitOfWork
from tuangou.core.errors import NotFound
from tuangou.disputes import coupons
from tuangou.disputes.models import Dispute, DisputeEvent, StackRequest
from tuangou.notify import service as notify


@dataclass
class DisputeView:
    id: int
    order_id: int
    buyer_id: int
    merchant_id: int
    kind: str
    tier: str
    status: str
    description: str
    oversale: bool
    opened_role: str
    opened_at: str
    respond_by: str
    decided_at: str | None
    remedy: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    coupons: list[dict[str, Any]] = field(default_factory=list)
    stack_request: dict[str, Any] | None = None


def view_of(uow: UnitOfWork, d: Dispute, full: bool = True) -> DisputeView:
    view = DisputeView(d.id, d.order_id, d.buyer_id, d.merchant_id, d.kind, d.tier, d.status, d.description,
                       d.oversale, d.opened_role, d.opened_at.isoformat(), d.respond_by.isoformat(),
                       d.decided_at.isoformat() if d.decided_at else None, dict(d.remedy or {}))
    if full:
        view.history = [{"action": e.action, "actor_id": e.actor_id, "actor_role": e.actor_role, "note": e.note,
                         "evidence": e.evidence, "at": e.at.isoformat()}
                        for e in uow.session.scalars(select(DisputeEvent).where(DisputeEvent.dispute_id == d.id)
                                                     .order_by(DisputeEvent.id))]
        stack = uow.session.scalar(select(StackRequest).where(StackRequest.dispute_id == d.id))
        refs = [f"dispute:{d.id}", f"dispute:{d.id}:side"] + ([f"stack:{stack.id}"] if stack else [])
        view.coupons = coupons.coupons_for_refs(uow, refs)
        if stack is not None:
            view.stack_request = {"id": stack.id, "status": stack.status, "note": stack.note,
                                  "decision_reason": stack.decision_reason}
    return view


def _visible(actor: Principal, d: Dispute) -> bool:
    return (actor.role == Role.OPS or (actor.role == Role.BUYER and d.buyer_id == actor.user_id)
            or (actor.role == Role.MERCHANT and d.merchant_id == actor.merchant_id))


def load_dispute(uow: UnitOfWork, actor: Principal, dispute_id: int) -> Dispute:
    d = uow.session.get(Dispute, dispute_id)
    if d is None or not _visible(actor, d):
        raise NotFound(f"dispute {dispute_id} not found")
    return d


def log_action(uow: UnitOfWork, d: Dispute, action: str, actor_id: int | None, role: str, note: str = "",
         evidence: list[dict[str, Any]] | None = None) -> None:
    uow.session.add(DisputeEvent(dispute_id=d.id, action=action, actor_id=actor_id, actor_role=role, note=note,
                                 evidence=evidence or [], at=uow.now))


def tell_both(uow: UnitOfWork, d: Dispute, kind: str, title: str, body: str = "") -> None:
    data = {"dispute_id": d.id, "order_id": d.order_id}
    notify.notify_user(uow, d.buyer_id, kind, title, body, data)
    notify.notify_merchant(uow, d.merchant_id, kind, title, body, data)


def get_dispute(uow: UnitOfWork, actor: Principal, dispute_id: int) -> DisputeView:
    with uow:
        return view_of(uow, load_dispute(uow, actor, dispute_id))


def list_disputes(uow: UnitOfWork, actor: Principal, *, status: str | None = None, cursor: int | None = None,
                  limit: int = 50) -> list[DisputeView]:
    with uow:
        q = actor.own_rows(select(Dispute).order_by(Dispute.id.desc()).limit(limit), buyer=Dispute.buyer_id,
                           merchant=Dispute.merchant_id, what="disputes")
        if status:
            q = q.where(Dispute.status == status)
        if cursor:
            q = q.where(Dispute.id < cursor)
        return [view_of(uow, d, full=False) for d in uow.session.scalars(q)]


def clean_evidence(evidence: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [{k: str(v)[:500] for k, v in e.items()} for e in (evidence or [])][:20]
