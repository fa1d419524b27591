"""Announcing orders: the order row is the outbox of its own OrderPlaced and OrderPaid events.

Placing and paying are the hot path; each event row and inbox receipt written there was one more
statement inside the transaction that holds a bucket (docs/adr/0010). Instead the row carries
`announced` (rules.Announced) and this job, first in every worker tick, writes what each order still
owes: the events to the outbox and the buyer's receipt to the inbox, in one transaction per batch.
Nothing committed is lost (the row is the message) and nothing is written twice: an order's rows are
written only by the transaction whose guarded UPDATE moved its `announced` on, and the event ids are
derived from the order, so even a second writer could not add a second copy.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import bindparam, select, update

from tuangou.core.db import UnitOfWork, retry_on_deadlock, table, upsertable_insert
from tuangou.core.money import yuan
from tuangou.core.outbox import OutboxEvent
from tuangou.notify import service as notify
from tuangou.orders import rules
from tuangou.orders.models import Order

_orders = table(Order)
_o = _orders.c
_NAMESPACE = uuid.UUID("6f1b0c56-7d1e-4a53-9c5a-2b0d3c1e8a11")
_OWED = (select(_o.id, _o.buyer_id, _o.deal_id, _o.merchant_id, _o.quantity, _o.amount_cents, _o.status,
                _o.announced, _o.created_at, _o.paid_at)
         .where(_o.announced < rules.Announced.ALL,
                (_o.announced == rules.Announced.NOTHING) | (_o.paid_at.is_not(None))
                | (_o.status.not_in(sorted(rules.MAY_BE_PAID))))
         .order_by(_o.id).limit(bindparam("batch")))


def event_id(order_id: int, event_type: str) -> str:
    """The same order and event always get the same id: a second copy would hit the unique key."""
    return str(uuid.uuid5(_NAMESPACE, f"order:{order_id}:{event_type}"))


@retry_on_deadlock
def announce_orders(uow: UnitOfWork, batch: int = 1000) -> int:
    """Write the events and receipts orders still owe; returns how many orders moved on. Safe to rerun."""
    with uow:
        conn = uow.conn
        rows = conn.execute(_OWED, {"batch": batch}).all()
        if not rows:
            return 0
        moves: dict[tuple[int, int], list[Any]] = defaultdict(list)
        owed: dict[int, list[str]] = {}
        for r in rows:
            owed[r.id], after = rules.announcements(r.announced, r.status, r.paid_at is not None)
            moves[(r.announced, after)].append(r)
        mine: set[int] = set()
        for (before, moved_to), group in moves.items():
            mine.update(conn.execute(update(_orders).where(_o.id.in_([r.id for r in group]),
                                                           _o.announced == before)
                                     .values(announced=moved_to).returning(_o.id)).scalars())
        events: list[dict[str, Any]] = []
        receipts: list[dict[str, Any]] = []
        for r in rows:
            if r.id not in mine:
                continue  # another worker announced it meanwhile
            for type_ in owed[r.id]:
                placed = type_ == "OrderPlaced"
                events.append({
                    "event_id": event_id(r.id, type_), "type": type_, "merchant_id": r.merchant_id,
                    "occurred_at": r.created_at if placed else r.paid_at, "relayed_at": None,
                    "payload": rules.placed_event(r.id, r.deal_id, r.quantity, r.buyer_id) if placed
                    else rules.paid_event(r.id, r.amount_cents, r.deal_id, r.quantity)})
                if not placed:
                    receipts.append(notify.inbox_row(
                        r.buyer_id, "order_paid", f"Paid {yuan(r.amount_cents)} for order #{r.id}",
                        f"{r.quantity} voucher(s) ready to use.", {"order_id": r.id}, r.paid_at))
        if events:
            conn.execute(upsertable_insert(conn.dialect.name, table(OutboxEvent))
                         .on_conflict_do_nothing(index_elements=["event_id"]), events)
        if receipts:
            notify.inbox_insert(conn, receipts)
        uow.commit()
        return len(mine)


__all__ = ["announce_orders", "event_id"]
