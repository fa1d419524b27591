"""The order row is the outbox of OrderPlaced / OrderPaid: every order announced once, whoever runs the job."""

from __future__ import annotations

import threading
from collections import Counter

from sqlalchemy import select

from tuangou.core.db import UnitOfWork
from tuangou.core.outbox import OutboxEvent
from tuangou.notify.models import Notification
from tuangou.orders.announce import announce_orders


def _announced(stage) -> tuple[Counter[tuple[str, int]], Counter[int]]:
    with UnitOfWork(stage.db, stage.clock) as uow:
        events = Counter((e.type, e.payload["order_id"]) for e in uow.session.scalars(
            select(OutboxEvent).where(OutboxEvent.type.in_(("OrderPlaced", "OrderPaid")))))
        receipts = Counter(n.data["order_id"] for n in uow.session.scalars(
            select(Notification).where(Notification.kind == "order_paid")))
    return events, receipts


def test_two_workers_announcing_at_once_write_each_event_and_receipt_once(any_stage):
    # given 12 paid orders and 6 left unpaid
    stage = any_stage
    _, merchant = stage.merchant()
    deal = stage.deal(merchant, stage.store(merchant))
    buyer = stage.buyer()
    paid = [stage.paid_order(buyer, deal)["id"] for _ in range(12)]
    unpaid = [stage.order(buyer, deal).json()["id"] for _ in range(6)]
    # when four workers announce at the same moment, in small batches, twice each
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait(timeout=30)
        for _ in range(2):
            while announce_orders(UnitOfWork(stage.db, stage.clock), batch=5):
                pass

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    # then every order was announced placed once, every paid one paid once, with one receipt each
    events, receipts = _announced(stage)
    assert {k: v for k, v in events.items() if k[0] == "OrderPlaced"} == {("OrderPlaced", i): 1 for i in paid + unpaid}
    assert {k: v for k, v in events.items() if k[0] == "OrderPaid"} == {("OrderPaid", i): 1 for i in paid}
    assert receipts == Counter({i: 1 for i in paid})


def test_an_order_paid_after_it_was_announced_placed_announces_its_payment_later(stage):
    # given an order announced while still unpaid
    _, merchant = stage.merchant()
    deal = stage.deal(merchant, stage.store(merchant))
    buyer = stage.buyer()
    order = stage.order(buyer, deal).json()
    assert announce_orders(UnitOfWork(stage.db, stage.clock)) == 1
    assert announce_orders(UnitOfWork(stage.db, stage.clock)) == 0  # nothing owed while it waits for payment
    # when it is paid and the worker ticks
    assert stage.client.post(f"/api/v1/orders/{order['id']}/pay", headers=buyer, json={}).status_code == 200
    stage.tick("notify")
    # then OrderPaid follows OrderPlaced, and the buyer has the receipt
    events, receipts = _announced(stage)
    assert events == Counter({("OrderPlaced", order["id"]): 1, ("OrderPaid", order["id"]): 1})
    assert receipts == Counter({order["id"]: 1})
