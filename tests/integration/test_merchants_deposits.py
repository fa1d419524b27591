"""Penalties apply everywhere (C7): bans stop group-buys too; deposits are funded through the gateway, a
minimum per category gates listings, a deduction never drives the deposit below zero."""

from __future__ import annotations

import threading
from datetime import timedelta

from tests.integration.campaign_stage import goods_deal
from tuangou.core.auth import Principal, Role
from tuangou.core.db import UnitOfWork
from tuangou.merchants import service as merchants
from tuangou.merchants.deposits import top_up


def campaign_body(stage, deal_id):
    now = stage.clock.now()
    return {"deal_id": deal_id, "threshold": 3, "max_size": 5, "deadline": (now + timedelta(hours=24)).isoformat(),
            "delivery_at": (now + timedelta(hours=72)).isoformat(), "pickup_point": "Building 3 lobby"}


def penalise(stage, merchant_id, kind, **extra):
    r = stage.client.post(f"/api/v1/merchants/{merchant_id}/penalties", headers=stage.ops, json={
        "kind": kind, "rule": "two over-sales in a promotion", "evidence": "incident:1", "reason": "protect buyers",
        **extra})
    assert r.status_code == 201, r.text
    return r.json()


def test_a_promotion_ban_or_a_listing_suspension_stops_a_group_buy(stage):
    # given two merchants with goods deals, one banned from promotions, one suspended from listing
    banned_id, banned = stage.merchant("Banned")
    suspended_id, suspended = stage.merchant("Suspended")
    banned_deal, suspended_deal = goods_deal(stage, banned), goods_deal(stage, suspended)
    penalise(stage, banned_id, "promotion_ban", days=30)
    penalise(stage, suspended_id, "listing_suspension", days=7)
    # when they open group-buys
    r1 = stage.client.post("/api/v1/campaigns", headers=banned, json=campaign_body(stage, banned_deal))
    r2 = stage.client.post("/api/v1/campaigns", headers=suspended, json=campaign_body(stage, suspended_deal))
    # then both are refused with a stable code, and nothing was opened
    assert (r1.status_code, r1.json()["code"]) == (409, "promotion_banned")
    assert (r2.status_code, r2.json()["code"]) == (409, "listing_suspended")
    assert stage.client.get("/api/v1/campaigns", headers=banned).json()["items"] == []
    # and once the ban ends, the group-buy opens
    stage.clock.advance(timedelta(days=30, minutes=1))
    banned = stage.login(f"m{1}@test.tuangou")
    r = stage.client.post("/api/v1/campaigns", headers=banned, json=campaign_body(stage, banned_deal))
    assert r.status_code == 201, r.text


def deposit(stage, merchant_id, headers):
    return stage.client.get(f"/api/v1/merchants/{merchant_id}/deposit", headers=headers).json()


def test_a_top_up_funds_the_deposit_once_per_key_through_the_gateway(stage):
    merchant_id, merchant = stage.merchant()
    # when the merchant tops up 500 yuan, and the request is retried with the same key
    url = f"/api/v1/merchants/{merchant_id}/deposit/top-ups"
    first = stage.client.post(url, headers={**merchant, "Idempotency-Key": "t-1"}, json={"amount_cents": 50_000})
    again = stage.client.post(url, headers={**merchant, "Idempotency-Key": "t-1"}, json={"amount_cents": 50_000})
    # then it is charged once and booked once
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "succeeded" and again.json()["id"] == first.json()["id"]
    assert deposit(stage, merchant_id, merchant)["balance_cents"] == 50_000
    # and the same key for another amount is a conflict; a declined charge books nothing
    other = stage.client.post(url, headers={**merchant, "Idempotency-Key": "t-1"}, json={"amount_cents": 1})
    assert (other.status_code, other.json()["code"]) == (409, "idempotency_conflict")
    declined = stage.client.post(url, headers={**merchant, "Idempotency-Key": "t-2"},
                                 json={"amount_cents": 9_000, "outcome": "fail"})
    assert declined.json()["status"] == "failed"
    assert stage.client.post(url, headers=merchant, json={"amount_cents": 1}).json()["code"] == "idempotency_key_required"
    view = deposit(stage, merchant_id, merchant)
    assert view["balance_cents"] == 50_000 and [e["kind"] for e in view["entries"]] == ["deposit_top_up"]
    # and nobody else tops up or reads this merchant's deposit
    _, other_merchant = stage.merchant("Other")
    assert stage.client.get(f"/api/v1/merchants/{merchant_id}/deposit", headers=other_merchant).status_code == 403


def test_a_deduction_takes_what_the_deposit_holds_and_books_the_rest_as_owed(stage):
    # given a deposit of 100 yuan
    merchant_id, merchant = stage.merchant()
    top_up(UnitOfWork(stage.db, stage.clock), merchants_principal(merchant_id), merchant_id, 10_000, "k",
           stage.gateway)
    # when ops deduct 300 yuan
    penalty = penalise(stage, merchant_id, "deposit_deduction", amount_cents=30_000)
    # then the deposit is empty, never negative, and 200 yuan are owed from the next settlements
    view = deposit(stage, merchant_id, merchant)
    assert (view["balance_cents"], view["owed_cents"]) == (0, 20_000)
    # and an upheld appeal gives back exactly what was taken, where it was taken from
    appeal = stage.client.post("/api/v1/appeals", headers=merchant, data={
        "target": f"penalty:{penalty['id']}", "statement": "wrong merchant"},
        files=[("files", ("log.txt", b"log", "text/plain"))]).json()
    stage.client.post(f"/api/v1/appeals/{appeal['id']}/decision", headers=stage.ops,
                      json={"uphold": True, "reason": "the incident was another shop's"})
    view = deposit(stage, merchant_id, merchant)
    assert (view["balance_cents"], view["owed_cents"]) == (10_000, 0)


def test_concurrent_deductions_never_drive_the_deposit_negative(any_stage):
    stage = any_stage
    merchant_id, merchant = stage.merchant()
    top_up(UnitOfWork(stage.db, stage.clock), merchants_principal(merchant_id), merchant_id, 10_000, "k",
           stage.gateway)
    errors: list[Exception] = []

    def deduct() -> None:
        try:
            merchants.impose_penalty(UnitOfWork(stage.db, stage.clock), ops_principal(), merchant_id,
                                     kind="deposit_deduction", rule="r", evidence="e", reason="x",
                                     amount_cents=6_000)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=deduct) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    view = deposit(stage, merchant_id, merchant)
    assert (view["balance_cents"], view["owed_cents"]) == (0, 14_000)


def test_a_category_minimum_deposit_gates_publishing(stage):
    # given ops require 1,000 yuan of deposit for fresh food
    r = stage.client.put("/api/v1/accountability-policy", headers=stage.ops,
                         json={"changes": {"min_deposit_cents": {"fresh": 100_000}}, "reason": "fresh food risk"})
    assert r.status_code == 200, r.text
    merchant_id, merchant = stage.merchant()
    fresh = stage.deal(merchant, stage.store(merchant, "fresh"), publish=False)
    catering = stage.deal(merchant, stage.store(merchant, "catering"), publish=False)
    # when the merchant publishes with an empty deposit
    r = stage.client.post(f"/api/v1/deals/{fresh}/publish", headers=merchant)
    # then the fresh deal is refused with a stable code naming the shortfall; catering has no minimum
    assert (r.status_code, r.json()["code"]) == (409, "deposit_below_minimum")
    assert r.json()["shortfall_cents"] == 100_000
    assert stage.client.post(f"/api/v1/deals/{catering}/publish", headers=merchant).status_code == 200
    # and after a top-up it publishes
    stage.client.post(f"/api/v1/merchants/{merchant_id}/deposit/top-ups",
                      headers={**merchant, "Idempotency-Key": "t"}, json={"amount_cents": 100_000})
    assert stage.client.post(f"/api/v1/deals/{fresh}/publish", headers=merchant).status_code == 200


def merchants_principal(merchant_id):
    return Principal(0, Role.MERCHANT, merchant_id)


def ops_principal():
    return Principal(1, Role.OPS)
