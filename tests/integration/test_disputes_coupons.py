"""Coupons: issued once per cause, applied atomically at checkout, restored on refund, all in the ledger."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.disputes_support import assert_ledger_consistent, me
from tuangou.core import ledger
from tuangou.core.auth import Principal, Role
from tuangou.core.db import UnitOfWork
from tuangou.core.errors import DomainError
from tuangou.disputes import service as disputes
from tuangou.orders import service as orders


def _give(stage, buyer_id, amount=3000, ref=None, **kw):
    with UnitOfWork(stage.db, stage.clock) as uow:
        coupon = disputes.issue_compensation_coupon(uow, buyer_id=buyer_id, amount_cents=amount, reason="sorry",
                                                    ref=ref or uuid.uuid4().hex, **kw)
        uow.commit()
    return coupon


def _shop(stage, price=1000, cap=20):
    merchant_id, merchant = stage.merchant()
    deal = stage.deal(merchant, stage.store(merchant), price_cents=price, original_price_cents=price * 2,
                      daily_cap=cap)
    return merchant_id, merchant, deal


def test_compensation_coupon_is_issued_once_per_cause(stage):
    buyer = stage.buyer()
    buyer_id = me(stage, buyer)
    first = _give(stage, buyer_id, 500, ref="oversale:1")
    again = _give(stage, buyer_id, 500, ref="oversale:1")
    assert first["created"] and not again["created"] and first["code"] == again["code"]
    assert len(stage.client.get("/api/v1/coupons", headers=buyer).json()["items"]) == 1
    b = assert_ledger_consistent(stage.db)
    assert b[ledger.COMPENSATION] == -500  # the platform's liability, traceable to the coupon


def test_checkout_with_a_coupon_pays_less_and_the_merchant_still_gets_the_full_price(stage):
    merchant_id, merchant, deal = _shop(stage, price=3900)
    buyer = stage.buyer()
    coupon = _give(stage, me(stage, buyer), 1000)
    order = stage.paid_order(buyer, deal, 2, coupon_code=coupon["code"].lower())
    assert order["amount_cents"] == 6800 and order["payment"]["amount_cents"] == 6800
    assert stage.client.get("/api/v1/coupons?status=used", headers=buyer).json()["items"][0]["order_id"] == order["id"]
    code = order["vouchers"][0]["code"]
    assert stage.client.post(f"/api/v1/vouchers/{code}/redeem", headers=merchant).status_code == 200
    b = assert_ledger_consistent(stage.db)
    assert b[ledger.merchant_account(merchant_id)] + b[ledger.REVENUE] == 3900
    reused = stage.order(buyer, deal, coupon_code=coupon["code"])
    assert reused.status_code == 409 and reused.json()["code"] == "coupon_unavailable"
    assert stage.order(stage.buyer(), deal, coupon_code=coupon["code"]).status_code == 404


def test_threshold_is_enforced(stage):
    _, _, deal = _shop(stage, price=1000)
    buyer = stage.buyer()
    coupon = _give(stage, me(stage, buyer), 300, threshold_cents=2000)
    assert stage.order(buyer, deal, 1, coupon_code=coupon["code"]).json()["code"] == "coupon_not_applicable"
    assert stage.order(buyer, deal, 2, coupon_code=coupon["code"]).json()["amount_cents"] == 1700


def test_unpaid_order_ending_gives_the_coupon_back(stage):
    _, _, deal = _shop(stage)
    buyer = stage.buyer()
    coupon = _give(stage, me(stage, buyer), 300)
    order = stage.order(buyer, deal, coupon_code=coupon["code"]).json()
    assert_ledger_consistent(stage.db)
    stage.clock.advance(timedelta(minutes=16))
    stage.tick("orders")
    assert stage.client.get(f"/api/v1/orders/{order['id']}", headers=buyer).json()["status"] == "expired"
    assert stage.client.get("/api/v1/coupons", headers=buyer).json()["items"][0]["status"] == "available"
    assert_ledger_consistent(stage.db)
    again = stage.order(buyer, deal, coupon_code=coupon["code"]).json()
    assert stage.client.post(f"/api/v1/orders/{again['id']}/cancel", headers=buyer).status_code == 200
    assert stage.client.get("/api/v1/coupons", headers=buyer).json()["items"][0]["status"] == "available"


def test_full_refund_restores_the_coupon_partial_refund_returns_only_the_cash_share(stage):
    _, _, deal = _shop(stage, price=1000)
    buyer = stage.buyer()
    coupon = _give(stage, me(stage, buyer), 600)
    whole = stage.paid_order(buyer, deal, 2, coupon_code=coupon["code"])
    stage.client.post(f"/api/v1/orders/{whole['id']}/refund", headers=buyer, json={})
    assert stage.client.get("/api/v1/coupons", headers=buyer).json()["items"][0]["status"] == "available"
    stage.tick("orders")
    assert_ledger_consistent(stage.db)
    partial = stage.paid_order(buyer, deal, 2, coupon_code=coupon["code"])
    assert partial["amount_cents"] == 1400
    first, second = (v["code"] for v in partial["vouchers"])
    stage.client.post(f"/api/v1/orders/{partial['id']}/refund", headers=buyer, json={"codes": [first]})
    assert stage.client.get("/api/v1/coupons", headers=buyer).json()["items"][0]["status"] == "used"
    stage.client.post(f"/api/v1/orders/{partial['id']}/refund", headers=buyer, json={"codes": [second]})
    stage.tick("orders")
    b = assert_ledger_consistent(stage.db)
    assert b[ledger.EXTERNAL_BUYERS] == 0  # the buyer got back exactly the ¥14 paid, in two refunds


def test_a_coupon_is_used_once_under_concurrency(any_stage):
    stage = any_stage
    _, _, deal = _shop(stage, cap=100)
    buyer = stage.buyer()
    buyer_id = me(stage, buyer)
    coupon = _give(stage, buyer_id, 500)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def race() -> None:
        barrier.wait(timeout=10)
        try:
            orders.place_order(UnitOfWork(stage.db, stage.clock), Principal(buyer_id, Role.BUYER), deal, 1,
                               uuid.uuid4().hex, coupon_code=coupon["code"])
            result = "ok"
        except DomainError as exc:
            result = exc.code
        with lock:
            outcomes[result] += 1

    threads = [threading.Thread(target=race) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes == Counter({"ok": 1, "coupon_unavailable": 7})
    assert_ledger_consistent(stage.db)


ACTIONS = st.lists(st.sampled_from(["buy", "buy_coupon", "pay", "refund_one", "refund_all", "redeem", "dispute",
                                    "stack", "expire", "jobs"]), min_size=1, max_size=8)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=ACTIONS, tier=st.sampled_from(["light", "medium", "severe"]))
def test_ledger_balances_and_mirrors_the_rows_after_every_step(stage, steps, tier):
    # given one shop, one buyer with a coupon; when any sequence of commerce and dispute steps runs
    merchant_id, merchant, deal = _shop(stage, price=1500, cap=1000)
    buyer = stage.buyer()
    buyer_id = me(stage, buyer)
    coupon = _give(stage, buyer_id, 700)
    open_orders: list[dict] = []
    confirmed: list[int] = []
    for step in steps:
        if step in ("buy", "buy_coupon"):
            r = stage.order(buyer, deal, 2, coupon_code=coupon["code"] if step == "buy_coupon" else None)
            if r.status_code == 201:
                open_orders.append(r.json())
        elif step == "pay" and open_orders:
            stage.client.post(f"/api/v1/orders/{open_orders[-1]['id']}/pay", headers=buyer)
        elif step.startswith("refund") and open_orders:
            order = stage.client.get(f"/api/v1/orders/{open_orders[0]['id']}", headers=buyer).json()
            issued = [v["code"] for v in order["vouchers"] if v["status"] == "issued"]
            body = {"codes": issued[:1]} if step == "refund_one" and issued else {}
            stage.client.post(f"/api/v1/orders/{order['id']}/refund", headers=buyer, json=body)
        elif step == "redeem" and open_orders:
            order = stage.client.get(f"/api/v1/orders/{open_orders[-1]['id']}", headers=buyer).json()
            for v in order["vouchers"][:1]:
                stage.client.post(f"/api/v1/vouchers/{v['code']}/redeem", headers=merchant)
        elif step == "dispute" and open_orders:
            r = stage.client.post("/api/v1/disputes", headers=buyer,
                                  json={"order_id": open_orders[-1]["id"], "kind": "cannot_fulfil"})
            if r.status_code == 201:
                c = stage.client.post(f"/api/v1/disputes/{r.json()['id']}/confirm", headers=stage.ops,
                                      json={"reason": "step", "tier": tier, "oversale": True})
                if c.status_code == 200:
                    confirmed.append(c.json()["id"])
        elif step == "stack" and confirmed:
            stage.client.post(f"/api/v1/disputes/{confirmed[-1]}/stack-request", headers=buyer)
            stage.client.post(f"/api/v1/disputes/{confirmed[-1]}/stack-request/decision", headers=stage.ops,
                              json={"approve": True, "reason": "step"})
        elif step == "expire":
            stage.clock.advance(timedelta(minutes=16))
            stage.tick("orders")
        elif step == "jobs":
            stage.tick()
        # then after every step the ledger sums to zero and each account equals the rows it mirrors
        assert_ledger_consistent(stage.db)
    for dispute_id in confirmed:
        d = stage.client.get(f"/api/v1/disputes/{dispute_id}", headers=stage.ops).json()
        claims = stage.client.get(f"/api/v1/recovery-claims?merchant_id={merchant_id}", headers=stage.ops).json()
        mine = [c for c in claims["items"] if c["ref"] == f"dispute:{dispute_id}"]
        assert sum(c["amount_cents"] for c in mine) == d["remedy"]["recovery_cents"]


def test_compensation_coupon_with_a_liable_merchant_books_its_recovery_once(stage):
    merchant_id, merchant, _ = _shop(stage)
    buyer_id = me(stage, stage.buyer())
    for _ in range(2):
        _give(stage, buyer_id, 500, ref="oversale:9", liable_merchant_id=merchant_id)
    claims = stage.client.get("/api/v1/recovery-claims", headers=merchant).json()
    assert [c["amount_cents"] for c in claims["items"]] == [500] and claims["merchant_balance_cents"] == -500
    b = assert_ledger_consistent(stage.db)
    assert b.get(ledger.COMPENSATION, 0) == 0
