"""Expiring unpaid reservations in bulk: a batch of orders ends in a few set-based statements (one guarded
UPDATE … RETURNING over the batch, one executemany for the buckets and one for the buyer counts touched,
multi-row INSERTs for the events and the buyers' inbox messages), not an ORM object per order.

Before a reservation ends, the gateway is asked about its current payment key (a process may have died
between a charge and its commit): the orders are read in one query, and only one the gateway did charge goes
through the single-order capture path. Runs safely twice: the UPDATE's status guard ends each order once."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import bindparam, select, update

from tuangou.catalog import service as catalog
from tuangou.core.db import UnitOfWork, retry_on_deadlock, table
from tuangou.core.outbox import event_row, insert_events
from tuangou.notify import service as notify
from tuangou.orders import rules
from tuangou.orders.gateway import PaymentGateway
from tuangou.orders.models import BuyerDealCount, Order
from tuangou.orders.participants import registry
from tuangou.orders.payments import _SNAPSHOT_COLS, record_charge, snapshot_from_row

_orders = table(Order)
_o = _orders.c
_counts = table(BuyerDealCount)
_UNCOUNT = (update(_counts).where(_counts.c.deal_id == bindparam("d"), _counts.c.buyer_id == bindparam("b"))
            .values(qty=_counts.c.qty - bindparam("q")))
def due_ids(uow: UnitOfWork, batch: int) -> list[int]:
    with uow:
        return list(uow.session.scalars(select(Order.id).where(Order.status == rules.OrderStatus.RESERVED,
                                                               Order.expires_at <= uow.now)
                                        .order_by(Order.id).limit(batch)))


def settle_charged(uow: UnitOfWork, gateway: PaymentGateway, ids: list[int]) -> list[int]:
    """The orders among `ids` whose current payment key the gateway did charge are captured (paid, not
    expired); returns the others. One read for the batch; the gateway is asked once per order."""
    if not ids:
        return []
    with uow.db.read_engine.connect() as conn:
        snaps = [snapshot_from_row(r, []) for r in conn.execute(select(*_SNAPSHOT_COLS).where(_o.id.in_(ids)))]
    captured = set()
    for snap in snaps:
        if snap.status != rules.OrderStatus.RESERVED:
            continue
        key = rules.payment_key(snap.id, snap.pay_attempt)
        found = gateway.lookup(key)
        if found is not None and found.ok:
            record_charge(uow, snap, key, found)
            captured.add(snap.id)
    return [i for i in ids if i not in captured]


@retry_on_deadlock
def expire(uow: UnitOfWork, ids: list[int]) -> int:
    """End the reservations among `ids` still reserved: their units go back on sale, per-buyer counts drop,
    order participants hear of it, and each buyer gets an inbox message. Returns how many ended."""
    if not ids:
        return 0
    with uow:
        ended = [snapshot_from_row(r, []) for r in uow.conn.execute(
            update(_orders).where(_o.id.in_(sorted(ids)), _o.status == rules.OrderStatus.RESERVED.value)
            .values(status=rules.OrderStatus.EXPIRED.value).returning(*_SNAPSHOT_COLS))]
        ended.sort(key=lambda s: s.id)
        units: dict[tuple[int, str], int] = defaultdict(int)
        held: dict[tuple[int, int], int] = defaultdict(int)
        for s in ended:
            for key in s.buckets:
                units[(s.deal_id, key)] += s.quantity
            held[(s.deal_id, s.buyer_id)] += s.quantity
        catalog.release_reserved_many(uow, units)
        if held:
            uow.conn.execute(_UNCOUNT, [{"d": d, "b": b, "q": q} for (d, b), q in sorted(held.items())])
        for s in ended:
            for p in registry.items:
                if p.wants_ended(s):
                    p.on_ended(uow, s)
        insert_events(uow.conn, [event_row("OrderExpired", {"order_id": s.id}, uow.now, merchant_id=s.merchant_id)
                                 for s in ended])
        notify.insert_inbox_rows(uow, [notify.inbox_row(
            s.buyer_id, "order_expired", f"Order #{s.id} expired",
            "It was not paid in time; the units went back on sale.", {"order_id": s.id}, uow.now) for s in ended])
        uow.commit()
        return len(ended)
