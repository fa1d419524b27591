"""The shipping SLA: a warning before the deadline, then cancel + refund + compensation (platform first,
recovered from the merchant) + non_shipment, exactly once with two workers or after a crash; accepted
exceptions pause the clock."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, event, func, select

from tests.integration.disputes_support import assert_ledger_consistent
from tests.integration.logistics_support import carrier, goods_deal, later, ship, shipping
from tuangou.core.auth import Principal, Role
from tuangou.core.db import UnitOfWork, table
from tuangou.core.errors import Conflict
from tuangou.disputes.models import RecoveryClaim
from tuangou.logistics import service, sla
from tuangou.logistics.models import ShippingOrder
from tuangou.logistics.participant import ShippingClock
from tuangou.merchants import service as merchants
from tuangou.merchants.models import Violation
from tuangou.orders.models import Order, Refund
from tuangou.orders.participants import registry
from tuangou.orders.rules import OrderSnapshot


def _order(stage, price=3900, quantity=1):
    merchant_id, merchant = stage.merchant()
    deal = goods_deal(stage, merchant, price=price)
    buyer = stage.buyer()
    return merchant_id, merchant, buyer, stage.paid_order(buyer, deal, quantity)


def _count(db, model, *where):
    with UnitOfWork(db, readonly=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_unshipped_order_is_warned_then_cancelled_refunded_and_compensated_once(any_stage):
    stage = any_stage
    merchant_id, merchant, buyer, order = _order(stage)
    stage.tick("logistics")
    assert shipping(stage, buyer, order["id"])["status"] == "awaiting_shipment"
    # 12 h before the 48 h deadline the merchant is warned, once
    later(stage, hours=37)
    assert stage.tick("logistics")["logistics"]["warned"] == 1
    assert stage.tick("logistics")["logistics"]["warned"] == 0
    inbox = stage.client.get("/api/v1/inbox?kind=ship_soon", headers=merchant).json()["items"]
    assert len(inbox) == 1
    # past the deadline: cancelled, refunded 39.00, compensated 30 % = 11.70, recovered from the merchant
    later(stage, hours=12)
    assert stage.tick("logistics")["logistics"]["cancelled"] == 1
    assert stage.tick("logistics")["logistics"]["cancelled"] == 0
    view = shipping(stage, buyer, order["id"])
    assert (view["status"], view["compensation_cents"]) == ("cancelled", 1170)
    assert stage.client.get(f"/api/v1/orders/{order['id']}", headers=buyer).json()["status"] == "refunded"
    with UnitOfWork(stage.db, readonly=True) as uow:
        refunds = sorted(uow.session.scalars(select(Refund.amount_cents).where(Refund.order_id == order["id"])))
    assert refunds == [1170, 3900]
    assert _count(stage.db, Violation, Violation.kind == "non_shipment", Violation.merchant_id == merchant_id) == 1
    assert _count(stage.db, RecoveryClaim, RecoveryClaim.merchant_id == merchant_id) == 1
    assert_ledger_consistent(stage.db)
    # the merchant can no longer ship it
    carrier(stage)
    late = ship(stage, merchant, order["id"], "SB0000000001")
    assert (late.status_code, late.json()["code"]) == (409, "not_shippable")


def test_shipping_in_time_stops_the_clock(any_stage):
    stage = any_stage
    _, merchant, buyer, order = _order(stage)
    carrier(stage)
    assert ship(stage, merchant, order["id"], "SB0000000001").status_code == 201
    later(stage, days=3)
    assert stage.tick("logistics")["logistics"]["cancelled"] == 0
    assert shipping(stage, buyer, order["id"])["status"] == "shipped"


def test_cheap_order_gets_the_minimum_compensation_partly_as_a_coupon(any_stage):
    stage = any_stage
    _, _, buyer, order = _order(stage, price=300)
    later(stage, hours=49)
    stage.tick("logistics")
    assert shipping(stage, buyer, order["id"])["compensation_cents"] == 500
    coupons = stage.client.get("/api/v1/coupons", headers=buyer).json()["items"]
    assert [c["value"] for c in coupons] == [200]
    assert_ledger_consistent(stage.db)


def test_two_workers_racing_one_cancellation_cancel_it_once(any_stage):
    stage = any_stage
    merchant_id, _, buyer, order = _order(stage)
    stage.tick("logistics")
    later(stage, hours=49)
    results, barrier = [], threading.Barrier(2)

    def worker():
        barrier.wait()
        results.append(sla.cancel_for_sla(UnitOfWork(stage.db, stage.clock), order["id"]))
    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == [False, True]
    assert _count(stage.db, Refund, Refund.order_id == order["id"]) == 2
    assert _count(stage.db, Violation, Violation.merchant_id == merchant_id) == 1
    assert_ledger_consistent(stage.db)


def test_a_shipment_racing_the_cancellation_either_ships_or_is_refused(any_stage):
    stage = any_stage
    # given an order whose deadline has just passed, and a merchant shipping it at that very moment
    _, _, buyer, order = _order(stage)
    carrier(stage)
    later(stage, hours=49)
    outcome, barrier = {}, threading.Barrier(2)

    def shipper():
        barrier.wait()
        try:
            service.ship(UnitOfWork(stage.db, stage.clock), Principal(0, Role.OPS), order["id"], carrier="sandbox",
                         tracking_number="SB0000000009", units=None, warehouse_id=None)
            outcome["shipped"] = True
        except Conflict as exc:
            outcome["shipped"] = exc.code

    def canceller():
        barrier.wait()
        outcome["cancelled"] = sla.cancel_for_sla(UnitOfWork(stage.db, stage.clock), order["id"])
    threads = [threading.Thread(target=shipper), threading.Thread(target=canceller)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    # then exactly one of them won, and what the buyer sees agrees with it
    status = shipping(stage, buyer, order["id"])
    if outcome["cancelled"]:
        assert outcome["shipped"] == "not_shippable" and status["status"] == "cancelled"
        assert status["shipments"] == []
    else:
        assert outcome["shipped"] is True and status["status"] == "shipped"
        assert _count(stage.db, Refund, Refund.order_id == order["id"]) == 0


def test_a_worker_killed_mid_cancellation_leaves_nothing_and_the_next_one_finishes(any_stage, monkeypatch):
    stage = any_stage
    merchant_id, _, buyer, order = _order(stage)
    stage.tick("logistics")
    later(stage, hours=49)
    real = merchants.record_violation

    def die(*args, **kwargs):
        raise SystemExit("worker killed")
    monkeypatch.setattr(merchants, "record_violation", die)
    with pytest.raises(SystemExit):
        sla.cancel_for_sla(UnitOfWork(stage.db, stage.clock), order["id"])
    assert shipping(stage, buyer, order["id"])["status"] == "awaiting_shipment"
    assert _count(stage.db, Refund, Refund.order_id == order["id"]) == 0
    monkeypatch.setattr(merchants, "record_violation", real)
    assert stage.tick("logistics")["logistics"]["cancelled"] == 1
    assert _count(stage.db, Refund, Refund.order_id == order["id"]) == 2
    assert _count(stage.db, Violation, Violation.merchant_id == merchant_id) == 1


def test_an_accepted_exception_pauses_the_clock_and_tells_the_buyer(any_stage):
    stage = any_stage
    _, merchant, buyer, order = _order(stage)
    stage.tick("logistics")
    due = shipping(stage, buyer, order["id"])["ship_by"]
    until = (stage.clock.now() + timedelta(hours=24)).isoformat()
    body = {"kind": "weather", "description": "typhoon: roads closed", "order_ids": [order["id"]], "until": until}
    refused = stage.client.post("/api/v1/logistics-exceptions", headers=merchant, json=body)
    assert (refused.status_code, refused.json()["code"]) == (422, "evidence_required")
    r = stage.client.post("/api/v1/logistics-exceptions", headers=merchant,
                          json={**body, "evidence": [{"kind": "notice", "url": "https://example.test/typhoon.jpg"}]})
    assert r.status_code == 201, r.text
    assert shipping(stage, buyer, order["id"])["ship_by"] == due  # nothing pauses before ops decide
    ok = stage.client.post(f"/api/v1/logistics-exceptions/{r.json()['id']}/accept", headers=stage.ops,
                           json={"reason": "typhoon warning confirmed"})
    assert ok.status_code == 200 and ok.json()["paused_orders"] == 1
    again = stage.client.post(f"/api/v1/logistics-exceptions/{r.json()['id']}/accept", headers=stage.ops,
                              json={"reason": "twice"})
    assert again.json()["code"] == "exception_decided"
    view = shipping(stage, buyer, order["id"])
    assert view["paused_minutes"] == 24 * 60 and view["ship_by"] > due
    # at the old deadline nothing happens; past the new one the SLA applies
    later(stage, hours=49)
    assert stage.tick("logistics")["logistics"]["cancelled"] == 0
    later(stage, hours=24)
    assert stage.tick("logistics")["logistics"]["cancelled"] == 1
    titles = [i["title"] for i in stage.client.get("/api/v1/inbox", headers=buyer).json()["items"]]
    assert any("delayed" in t for t in titles)


def test_a_rejected_exception_changes_nothing(any_stage):
    stage = any_stage
    _, merchant, buyer, order = _order(stage)
    due = shipping(stage, buyer, order["id"])["ship_by"]
    r = stage.client.post("/api/v1/logistics-exceptions", headers=merchant, json={
        "kind": "road_closure", "description": "closed", "order_ids": [order["id"]],
        "evidence": [{"note": "photo of the sign"}], "until": (stage.clock.now() + timedelta(days=2)).isoformat()})
    stage.client.post(f"/api/v1/logistics-exceptions/{r.json()['id']}/reject", headers=stage.ops,
                      json={"reason": "the road was open"})
    assert shipping(stage, buyer, order["id"])["ship_by"] == due


def test_paying_a_goods_order_starts_its_clock_in_the_paying_transaction(any_stage):
    stage = any_stage
    # given a goods deal and a voucher deal of one merchant
    _, merchant = stage.merchant()
    goods = goods_deal(stage, merchant)
    voucher_deal = stage.deal(merchant, stage.store(merchant))
    buyer = stage.buyer()
    # when both are paid, with no worker tick at all
    order = stage.paid_order(buyer, goods, 2)
    voucher = stage.paid_order(buyer, voucher_deal)
    # then the goods order's clock runs from its payment (48 h for fresh goods) and the voucher has none
    view = shipping(stage, buyer, order["id"])
    assert view["status"] == "awaiting_shipment" and view["quantity"] == 2
    assert datetime.fromisoformat(view["ship_by"]) == datetime.fromisoformat(order["paid_at"]) + timedelta(hours=48)
    assert _count(stage.db, ShippingOrder, ShippingOrder.order_id == order["id"]) == 1
    assert _count(stage.db, ShippingOrder, ShippingOrder.order_id == voucher["id"]) == 0


def _snapshot(db, order_id):
    o = table(Order).c
    extra = registry.order_columns(o)
    with db.engine.connect() as conn:
        r = conn.execute(select(o.id, *[c.label(n) for n, c in extra.items()]).where(o.id == order_id)).one()
    return OrderSnapshot(order_id, 0, 0, 0, 0, 1, 0, 0, "paid", datetime.now(UTC), [], 0, {},
                         {n: r._mapping[n] for n in extra})


def test_the_shipping_clock_costs_a_voucher_order_nothing_and_a_goods_order_one_statement(any_stage):
    stage = any_stage
    # given a paid goods order whose record is gone (as if paid before logistics took part) and a voucher order
    _, merchant = stage.merchant()
    buyer = stage.buyer()
    order = stage.paid_order(buyer, goods_deal(stage, merchant))
    voucher = stage.paid_order(buyer, stage.deal(merchant, stage.store(merchant)))
    with UnitOfWork(stage.db, stage.clock) as uow:
        uow.session.execute(delete(ShippingOrder))
        uow.commit()
    clock = ShippingClock()
    statements: list[str] = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(stage.db.engine, "before_cursor_execute", seen)
    try:
        # when the participant is asked about each, inside a paying transaction (twice: a retried one)
        assert not clock.wants_paid(_snapshot(stage.db, voucher["id"]))
        goods = _snapshot(stage.db, order["id"])
        assert clock.wants_paid(goods)
        statements.clear()
        with UnitOfWork(stage.db, stage.clock) as uow:
            clock.on_paid(uow, goods)
            clock.on_paid(uow, goods)
            uow.commit()
    finally:
        event.remove(stage.db.engine, "before_cursor_execute", seen)
    # then one INSERT each time, the second one changing nothing
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT")]
    assert len(inserts) == 2 and len([s for s in statements if not s.lstrip().upper().startswith(
        ("INSERT", "BEGIN", "COMMIT", "PRAGMA"))]) == 0, statements
    assert _count(stage.db, ShippingOrder) == 1
