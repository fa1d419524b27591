"""Compensation in kind (A6, E2): the medium tier's free side dish is an item voucher the merchant serves once,
its cost booked against that merchant and settled in kind, on both databases."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

from tests.integration.disputes_support import assert_ledger_consistent
from tuangou.core import ledger
from tuangou.core.auth import Principal, Role
from tuangou.core.db import UnitOfWork
from tuangou.core.errors import DomainError
from tuangou.disputes import inkind


def _not_today(stage, name="Hotpot"):
    """A merchant admits it cannot serve a paid order today: a medium dispute, confirmed at once."""
    merchant_id, merchant = stage.merchant(name)
    deal = stage.deal(merchant, stage.store(merchant), price_cents=5000, original_price_cents=9000)
    buyer = stage.buyer()
    order = stage.paid_order(buyer, deal)
    r = stage.client.post("/api/v1/disputes", headers=merchant, json={
        "order_id": order["id"], "kind": "cannot_fulfil_today", "description": "no table tonight"})
    assert r.status_code == 201, r.text
    return merchant_id, merchant, deal, buyer, r.json()


def _balance(stage, account):
    with UnitOfWork(stage.db) as uow:
        return ledger.balance(uow.session, account)


def _redeem(stage, who, code):
    return stage.client.post(f"/api/v1/item-vouchers/{code}/redeem", headers=who)


def test_the_medium_tier_gives_a_free_side_dish_the_merchant_serves_once(any_stage):
    stage = any_stage
    # given a medium dispute confirmed on a hotpot order
    merchant_id, merchant, deal, buyer, d = _not_today(stage)
    _, other = stage.merchant("Elsewhere")
    # then the buyer holds a voucher for a free side dish at that merchant, not a cash coupon
    assert (d["tier"], d["remedy"]["side_item"], d["remedy"]["side_item_cents"]) == ("medium", "free side dish", 1500)
    [voucher] = d["coupons"]
    assert (voucher["kind"], voucher["item"], voucher["merchant_id"], voucher["status"]) == (
        "item", "free side dish", merchant_id, "available")
    assert [c["code"] for c in stage.client.get("/api/v1/coupons", headers=buyer).json()["items"]] == [voucher["code"]]
    inbox = stage.client.get("/api/v1/inbox", headers=buyer, params={"kind": "item_voucher_issued"}).json()["items"]
    assert inbox[0]["data"]["code"] == voucher["code"] and "free side dish" in inbox[0]["title"]
    # and it takes nothing off an order
    refused = stage.order(buyer, deal, coupon_code=voucher["code"])
    assert refused.status_code == 409 and refused.json()["code"] == "coupon_not_applicable"
    # and its cost is booked against the merchant at once, as a claim of its own
    claims = stage.client.get("/api/v1/recovery-claims", headers=merchant).json()
    assert [(c["ref"], c["amount_cents"], c["status"]) for c in claims["items"]] == [
        (f"coupon:{voucher['id']}", 1500, "open")]
    owed = _balance(stage, ledger.merchant_account(merchant_id))
    assert owed == -1500
    assert_ledger_consistent(stage.db)
    # when another merchant, then a bad code, try to redeem it
    wrong = _redeem(stage, other, voucher["code"])
    assert wrong.status_code == 403 and wrong.json()["code"] == "item_voucher_wrong_merchant"
    assert _redeem(stage, merchant, "NOSUCHCODE99").json()["code"] == "item_voucher_not_found"
    # when the merchant serves the dish and redeems the voucher
    served = _redeem(stage, merchant, voucher["code"].lower())
    assert served.status_code == 200 and served.json()["status"] == "used"
    # then the claim is recovered in kind: the merchant paid with the dish, not in cash as well
    claims = stage.client.get("/api/v1/recovery-claims", headers=merchant).json()["items"]
    assert [c["status"] for c in claims] == ["recovered"]
    assert _balance(stage, ledger.merchant_account(merchant_id)) == 0
    assert_ledger_consistent(stage.db)
    # and a second redemption is refused with its own code
    again = _redeem(stage, merchant, voucher["code"])
    assert again.status_code == 409 and again.json()["code"] == "item_voucher_used"
    assert _balance(stage, ledger.merchant_account(merchant_id)) == 0


def test_an_unused_item_voucher_expires_and_the_merchant_owes_nothing_for_it(any_stage):
    stage = any_stage
    merchant_id, merchant, _, _, d = _not_today(stage)
    [voucher] = d["coupons"]
    # when its 30 days pass unused
    stage.clock.advance(timedelta(days=31))
    late = _redeem(stage, stage.login("m1@test.tuangou"), voucher["code"])
    assert late.status_code == 409 and late.json()["code"] == "item_voucher_expired"
    # then the daily job ends it once, and the merchant's claim is cancelled: nothing was served
    assert stage.tick("disputes")["disputes"]["item_vouchers_expired"] == 1
    assert stage.tick("disputes")["disputes"]["item_vouchers_expired"] == 0
    ops_view = stage.client.get("/api/v1/recovery-claims", headers=stage.login("ops@test.tuangou"),
                                params={"merchant_id": merchant_id}).json()
    assert [c["status"] for c in ops_view["items"]] == ["cancelled"] and ops_view["merchant_balance_cents"] == 0
    assert_ledger_consistent(stage.db)
    assert merchant


def test_an_item_voucher_is_served_once_under_concurrency(any_stage):
    stage = any_stage
    merchant_id, merchant, _, _, d = _not_today(stage)
    code = d["coupons"][0]["code"]
    with UnitOfWork(stage.db, stage.clock) as uow:
        from tuangou.accounts import service as accounts
        user_id = accounts.user_ids_with_role(uow, Role.MERCHANT)[0]
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(6)

    def race() -> None:
        barrier.wait(timeout=10)
        try:
            inkind.redeem_item_voucher(UnitOfWork(stage.db, stage.clock), Principal(user_id, Role.MERCHANT,
                                                                                   merchant_id=merchant_id), code)
            result = "ok"
        except DomainError as exc:
            result = exc.code
        with lock:
            outcomes[result] += 1

    threads = [threading.Thread(target=race) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes == Counter({"ok": 1, "item_voucher_used": 5})
    assert _balance(stage, ledger.merchant_account(merchant_id)) == 0
    assert_ledger_consistent(stage.db)
    assert merchant


def test_ops_make_the_severe_tier_give_a_trial_class_and_nonsense_changes_nothing(stage):
    # given ops add a free trial class (worth ¥30) to the severe tier (the fitness story of seed 000)
    r = stage.client.patch("/api/v1/dispute-policy", headers=stage.ops, json={
        "changes": {"tiers": {"severe": {"side_item": "free trial class", "side_item_cents": 3000}}},
        "reason": "fitness: a trial class, as the seed does"})
    assert r.status_code == 200, r.text
    bad = stage.client.patch("/api/v1/dispute-policy", headers=stage.ops, json={
        "changes": {"tiers": {"severe": {"side_item": "x" * 101}}}, "reason": "too long"})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_policy"
    merchant_id, merchant = stage.merchant("Gym")
    deal = stage.deal(merchant, stage.store(merchant, "fitness"), price_cents=9900, original_price_cents=19900)
    buyer = stage.buyer()
    order = stage.paid_order(buyer, deal)
    # when the gym cannot honour the class pass at all
    d = stage.client.post("/api/v1/disputes", headers=merchant, json={"order_id": order["id"],
                                                                      "kind": "cannot_fulfil"}).json()
    # then the buyer is refunded, gets the ¥30 coupon and a trial class voucher served by the gym
    kinds = sorted((c["kind"], c["item"], c["value"]) for c in d["coupons"])
    assert kinds == [("amount", None, 3000), ("item", "free trial class", 3000)]
    assert d["remedy"]["refund_cents"] == 9900 and d["remedy"]["side_item"] == "free trial class"
    assert merchant_id and assert_ledger_consistent(stage.db)


def test_paused_compensation_withdraws_an_unserved_item_voucher_and_its_claim(any_stage):
    stage = any_stage
    merchant_id, merchant, _, _, d = _not_today(stage)
    voucher = d["coupons"][0]
    # when risk confirms the buyer farms compensation and pauses it
    from tuangou.disputes import service as disputes
    with UnitOfWork(stage.db, stage.clock) as uow:
        assert disputes.pause_compensation(uow, buyer_id=voucher["buyer_id"], reason="farming", ref="case:1") == [
            voucher["id"]]
        uow.commit()
    # then the dish can no longer be served and the merchant owes nothing for it
    withdrawn = _redeem(stage, merchant, voucher["code"])
    assert withdrawn.status_code == 409 and withdrawn.json()["code"] == "item_voucher_withdrawn"
    claims = stage.client.get("/api/v1/recovery-claims", headers=merchant).json()
    assert [c["status"] for c in claims["items"]] == ["cancelled"] and claims["merchant_balance_cents"] == 0
    assert_ledger_consistent(stage.db)
    assert merchant_id
