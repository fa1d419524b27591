"""The core commerce story over HTTP: sign up, publish, order, pay, redeem, refund."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from tuangou.core import ledger
from tuangou.core.db import UnitOfWork
from tuangou.core.outbox import OutboxEvent


def test_buyer_orders_pays_and_merchant_redeems_once(stage):
    # given a published deal of 20 a day
    _, merchant = stage.merchant()
    deal = stage.deal(merchant, stage.store(merchant))
    buyer = stage.buyer()
    # when the buyer orders two and pays
    order = stage.paid_order(buyer, deal, 2)
    # then two vouchers are issued and the calendar shows 2 sold
    assert order["status"] == "paid" and len(order["vouchers"]) == 2
    code = order["vouchers"][0]["code"]
    assert order["vouchers"][0]["qr"].endswith(code)
    listing = stage.client.get("/api/v1/deals").json()["items"][0]["availability"]
    assert (listing["cap"], listing["sold"], listing["remaining"], listing["status"]) == (20, 2, 18, "on_sale")
    # when the merchant redeems the voucher twice
    first = stage.client.post(f"/api/v1/vouchers/{code}/redeem", headers=merchant)
    second = stage.client.post(f"/api/v1/vouchers/{code}/redeem", headers=merchant)
    # then only the first succeeds
    assert first.status_code == 200
    assert second.status_code == 409 and second.json()["code"] == "already_redeemed"
    assert second.headers["content-type"].startswith("application/problem+json")


def test_same_idempotency_key_returns_the_same_order(stage):
    _, merchant = stage.merchant()
    deal = stage.deal(merchant, stage.store(merchant))
    buyer = stage.buyer()
    first = stage.order(buyer, deal, 1, key="k-1")
    again = stage.order(buyer, deal, 1, key="k-1")
    other_body = stage.order(buyer, deal, 2, key="k-1")
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    assert other_body.status_code == 409 and other_body.json()["code"] == "idempotency_conflict"
    cal = stage.client.get(f"/api/v1/deals/{deal}/calendar").json()["items"]
    assert sum(b["reserved"] for b in cal) == 1


def test_missing_idempotency_key_is_refused_and_changes_nothing(stage):
    _, merchant = stage.merchant()
    deal = stage.deal(merchant, stage.store(merchant))
    buyer = stage.buyer()
    r = stage.client.post("/api/v1/orders", headers=buyer, json={"deal_id": deal, "quantity": 1})
    assert r.status_code == 422 and r.json()["code"] == "idempotency_key_required"
    assert stage.client.get("/api/v1/orders", headers=buyer).json()["items"] == []


def test_merchant_cannot_touch_another_merchants_deal_or_orders(stage):
    _, merchant_a = stage.merchant("A")
    _, merchant_b = stage.merchant("B")
    deal = stage.deal(merchant_a, stage.store(merchant_a))
    order = stage.paid_order(stage.buyer(), deal, 1)
    code = order["vouchers"][0]["code"]
    assert stage.client.post(f"/api/v1/deals/{deal}/delist", headers=merchant_b).json()["code"] == "forbidden"
    assert stage.client.put(f"/api/v1/deals/{deal}/capacity", headers=merchant_b,
                            json={"bucket": "total", "cap": 1}).status_code == 403
    assert stage.client.post(f"/api/v1/vouchers/{code}/redeem", headers=merchant_b).status_code == 404
    assert stage.client.get(f"/api/v1/orders/{order['id']}", headers=merchant_b).status_code == 403
    assert stage.client.post(f"/api/v1/orders/{order['id']}/refund", headers=stage.buyer()).status_code == 403
    assert stage.client.get("/api/v1/orders", headers=merchant_b).json()["items"] == []
    assert len(stage.client.get("/api/v1/orders", headers=merchant_a).json()["items"]) == 1


def test_buyer_cannot_act_as_merchant_or_ops(stage):
    buyer = stage.buyer()
    assert stage.client.post("/api/v1/stores", headers=buyer, json={"name": "x", "category": "catering"}
                             ).json()["code"] == "forbidden"
    assert stage.client.get("/api/v1/audit", headers=buyer).status_code == 403
    assert stage.client.get("/api/v1/orders").status_code == 401


def test_unpaid_reservation_expires_and_capacity_returns(stage):
    _, merchant = stage.merchant()
    deal = stage.deal(merchant, stage.store(merchant), daily_cap=1)
    buyer = stage.buyer()
    order = stage.order(buyer, deal).json()
    assert stage.order(stage.buyer(), deal).json()["code"] == "sold_out"
    stage.clock.advance(timedelta(minutes=16))
    stage.tick("orders")
    assert stage.client.get(f"/api/v1/orders/{order['id']}", headers=buyer).json()["status"] == "expired"
    assert stage.order(stage.buyer(), deal).status_code == 201
    late = stage.client.post(f"/api/v1/orders/{order['id']}/pay", headers=buyer)
    assert late.status_code == 409 and late.json()["code"] == "not_payable"


def test_refund_returns_capacity_and_money_through_the_ledger(stage):
    _, merchant = stage.merchant()
    deal = stage.deal(merchant, stage.store(merchant), daily_cap=2)
    buyer = stage.buyer()
    order = stage.paid_order(buyer, deal, 2)
    code = order["vouchers"][0]["code"]
    r = stage.client.post(f"/api/v1/orders/{order['id']}/refund", headers=buyer, json={"codes": [code]})
    assert r.status_code == 200, r.text
    assert [v["status"] for v in r.json()["vouchers"]] == ["refunded", "issued"]
    again = stage.client.post(f"/api/v1/orders/{order['id']}/refund", headers=buyer, json={"codes": [code]})
    assert again.status_code == 409 and again.json()["code"] == "not_refundable"
    assert stage.order(stage.buyer(), deal).status_code == 201  # the refunded unit is back on sale
    stage.tick("orders")
    with UnitOfWork(stage.db) as uow:
        balances = ledger.balances(uow.session)
        assert ledger.total(uow.session) == 0
        assert balances[ledger.ESCROW] == 1000  # one voucher still held
        assert balances[ledger.EXTERNAL_BUYERS] == -1000
        assert balances.get("platform:refunds_payable", 0) == 0


def test_failed_payment_is_402_and_order_stays_payable(stage):
    _, merchant = stage.merchant()
    deal = stage.deal(merchant, stage.store(merchant))
    buyer = stage.buyer()
    order = stage.order(buyer, deal).json()
    declined = stage.client.post(f"/api/v1/orders/{order['id']}/pay", headers={**buyer, "Idempotency-Key": "p1"},
                                 json={"outcome": "fail"})
    assert declined.status_code == 402 and declined.json()["code"] == "payment_declined"
    ok = stage.client.post(f"/api/v1/orders/{order['id']}/pay", headers={**buyer, "Idempotency-Key": "p2"},
                           json={"outcome": "succeed"})
    assert ok.status_code == 200 and ok.json()["status"] == "paid"


def test_gateway_timeout_is_reconciled_by_the_worker(stage):
    _, merchant = stage.merchant()
    deal = stage.deal(merchant, stage.store(merchant))
    buyer = stage.buyer()
    order = stage.order(buyer, deal).json()
    r = stage.client.post(f"/api/v1/orders/{order['id']}/pay", headers=buyer, json={"outcome": "timeout"})
    assert r.status_code == 202 and r.json()["payment"]["status"] == "unknown"
    stage.clock.advance(timedelta(minutes=2))
    stage.tick("orders")
    assert stage.client.get(f"/api/v1/orders/{order['id']}", headers=buyer).json()["status"] == "paid"


def test_every_change_writes_outbox_events_and_inbox_messages(stage):
    # given a paid order, whose row is the outbox of its hot-path events
    _, merchant = stage.merchant()
    deal = stage.deal(merchant, stage.store(merchant))
    buyer = stage.buyer()
    stage.paid_order(buyer, deal)

    def order_events():
        with UnitOfWork(stage.db) as uow:
            return [e.type for e in uow.session.scalars(select(OutboxEvent).order_by(OutboxEvent.id))
                    if e.type.startswith("Order")]
    assert order_events() == []
    # when the worker ticks twice
    stage.tick("orders")
    stage.tick("orders")
    # then each event and the receipt were written once
    assert order_events() == ["OrderPlaced", "OrderPaid"]
    inbox = stage.client.get("/api/v1/inbox", headers=buyer).json()["items"]
    assert inbox[0]["kind"] == "order_paid" and not inbox[0]["read"]
    assert stage.client.post("/api/v1/inbox/read", headers=buyer, json={}).json()["marked"] == 1
    assert stage.client.get("/api/v1/inbox?unread=true", headers=buyer).json()["items"] == []


def test_bad_input_gets_a_clear_4xx(stage):
    _, merchant = stage.merchant()
    store = stage.store(merchant)
    r = stage.client.post(f"/api/v1/stores/{store}/deals", headers=merchant, json={"title": "x"})
    assert r.status_code == 422 and r.json()["code"] == "validation_error"
    r = stage.client.post("/api/v1/stores", headers=merchant, json={"name": "x", "category": "catering",
                                                                     "timezone": "Mars/Olympus"})
    assert r.status_code == 422 and "time zone" in r.json()["detail"]
    assert stage.client.get("/api/v1/deals/999").json()["code"] == "not_found"
    r = stage.order(stage.buyer(), 999)
    assert r.status_code == 404


def test_a_double_click_on_pay_never_charges_twice(stage):
    # given a payment that timed out and is still unknown
    _, merchant = stage.merchant()
    deal = stage.deal(merchant, stage.store(merchant))
    buyer = stage.buyer()
    order = stage.order(buyer, deal).json()
    first = stage.client.post(f"/api/v1/orders/{order['id']}/pay", headers=buyer, json={"outcome": "timeout"})
    assert first.status_code == 202
    # when the buyer presses pay again without an Idempotency-Key
    again = stage.client.post(f"/api/v1/orders/{order['id']}/pay", headers=buyer, json={"outcome": "succeed"})
    # then the second press asks the gateway with the same key, finds the first charge and pays the order with it
    assert again.status_code == 200 and again.json()["status"] == "paid"
    stage.clock.advance(timedelta(minutes=2))
    stage.tick("orders")
    with UnitOfWork(stage.db) as uow:
        assert ledger.balance(uow.session, ledger.EXTERNAL_BUYERS) == -1000
    assert len(stage.gateway._charges) == 1


def test_ops_refund_is_audited_with_its_reason(stage):
    _, merchant = stage.merchant()
    deal = stage.deal(merchant, stage.store(merchant))
    order = stage.paid_order(stage.buyer(), deal)
    r = stage.client.post(f"/api/v1/orders/{order['id']}/refund", headers=stage.ops,
                          json={"reason": "store closed for renovation"})
    assert r.status_code == 200 and r.json()["status"] == "refunded"
    audit = stage.client.get("/api/v1/audit?action=refund_order", headers=stage.ops).json()["items"]
    assert [(a["target"], a["reason"]) for a in audit] == [(f"order:{order['id']}", "store closed for renovation")]
