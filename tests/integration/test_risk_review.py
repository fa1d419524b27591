"""The review queue and what its outcomes feed back, on SQLite and PostgreSQL: a brushing ring confirmed
(merchant penalised, fake sales removed, ranking cleaned), a compensation farmer paused, coupons
funnelled to one device found, a false positive released with one click, the buyer's answer kept."""

from __future__ import annotations

from tests.integration.disputes_support import assert_ledger_consistent, me
from tests.integration.risk_support import availability, cases, order, policy, shop, words


def _pay(stage, buyer, order_id):
    r = stage.client.post(f"/api/v1/orders/{order_id}/pay", headers=buyer, json={"outcome": "succeed"})
    assert r.status_code == 200, r.text
    return r.json()


def _listing(stage):
    return [d["id"] for d in stage.client.get("/api/v1/deals").json()["items"]]


def test_a_brushing_ring_is_held_then_confirmed_the_merchant_penalised_and_its_fake_sales_removed(any_stage):
    # given a brushing merchant and a clean one; the clean one was listed later (ties rank by id)
    stage = any_stage
    merchant_id, merchant, deal = shop(stage, "Brusher")
    _, _, clean_deal = shop(stage, "Clean")
    assert _listing(stage) == [deal, clean_deal]
    genuine = stage.buyer()
    _pay(stage, genuine, order(stage, genuine, deal, device="genuine-phone").json()["id"])
    # when four ring accounts order its deal from one phone, paying what they may
    ring = [stage.buyer() for _ in range(4)]
    placed = [order(stage, b, deal, device="ring-phone") for b in ring]
    assert [r.json()["status"] for r in placed] == ["reserved", "reserved", "held", "held"]
    for b, r in zip(ring[:2], placed[:2], strict=True):
        _pay(stage, b, r.json()["id"])
    assert availability(stage, deal)["sold"] == 3
    # then ops see the case with its evidence graph: four accounts on one device
    case = next(c for c in cases(stage) if c["order_id"] == placed[2].json()["id"])
    assert any(w.startswith("3 accounts on one device") for w in words(case))
    full = stage.client.get(f"/api/v1/risk/cases/{case['id']}", headers=stage.ops).json()
    assert full["evidence"]["summary"] == "4 accounts, 1 device, 0 addresses, 0 payment accounts, 4 orders"
    assert full["question"]["text"].startswith(f"Did you place order #{placed[2].json()['id']}?")
    # when ops confirm it as brushing
    r = stage.client.post(f"/api/v1/risk/cases/{case['id']}/decide", headers=stage.ops,
                          json={"outcome": "brushing", "note": "one phone, four accounts, all on this shop"})
    assert r.status_code == 200, r.text
    effects = r.json()["effects"]
    # then the merchant has a brushing violation and a fine
    violations = stage.client.get(f"/api/v1/merchants/{merchant_id}/violations", headers=merchant).json()["items"]
    assert [v["kind"] for v in violations] == ["brushing"] and violations[0]["points"] == 30
    penalties = stage.client.get(f"/api/v1/merchants/{merchant_id}/penalties", headers=merchant).json()["items"]
    assert [(p["kind"], p["amount_cents"]) for p in penalties] == [("fine", 50_000)]
    # and the fake sales are gone: paid ring orders refunded, held ones cancelled, the other hold closed
    assert sorted(effects["refunded_orders"]) == sorted(r.json()["id"] for r in placed[:2])
    assert sorted(effects["cancelled_orders"]) == sorted(r.json()["id"] for r in placed[2:])
    assert effects["also_confirmed_cases"] and cases(stage) == []
    assert availability(stage, deal)["sold"] == 1 and availability(stage, deal)["reserved"] == 0
    # and its ranking is cleaned: the clean merchant is listed first
    assert _listing(stage) == [clean_deal, deal]
    # and the ring's accounts are linked to the merchant from now on, whatever device they use
    assert order(stage, ring[0], deal, device="new-phone").json()["status"] == "held"
    assert order(stage, ring[0], clean_deal, device="new-phone").json()["status"] == "reserved"
    assert_ledger_consistent(stage.db)


def _disputed(stage, buyer, deal):
    paid = _pay(stage, buyer, order(stage, buyer, deal).json()["id"])
    r = stage.client.post("/api/v1/disputes", headers={**buyer, "X-Device-Id": "farm-phone"},
                          json={"order_id": paid["id"], "kind": "cannot_fulfil"})
    assert r.status_code == 201, r.text
    r = stage.client.post(f"/api/v1/disputes/{r.json()['id']}/confirm", headers=stage.ops, json={"reason": "ok"})
    assert r.status_code == 200, r.text
    return r.json()


def test_a_compensation_farmer_is_found_paused_and_its_coupons_revoked(any_stage):
    # given ten buyers with ordinary histories and one whose every order ends in an upheld dispute
    stage = any_stage
    _, _, deal = shop(stage, "Shop", daily_cap=200)
    for _ in range(10):
        honest = stage.buyer()
        for _ in range(3):
            _pay(stage, honest, order(stage, honest, deal).json()["id"])
    farmer = stage.buyer()
    for _ in range(3):
        _disputed(stage, farmer, deal)
    coupons = stage.client.get("/api/v1/coupons", headers=farmer).json()["items"]
    assert len(coupons) == 3 and {c["status"] for c in coupons} == {"available"}
    # when the after-the-fact rules run
    found = stage.tick("risk")["risk"]
    # then the farmer has a case saying what was seen
    assert found["abuse_cases"] == [me(stage, farmer)]
    [case] = cases(stage)
    assert words(case)[0].startswith("3 disputes on 3 orders in 90 days (100% against a norm of 9.1%)")
    # and its evidence lists the disputes and the device each was opened from
    evidence = stage.client.get(f"/api/v1/risk/cases/{case['id']}", headers=stage.ops).json()["evidence"]
    assert len(evidence["disputes"]) == 3 and len({d["device"] for d in evidence["disputes"]}) == 1
    # when ops confirm compensation abuse
    r = stage.client.post(f"/api/v1/risk/cases/{case['id']}/decide", headers=stage.ops, json={"outcome": "abuse"})
    assert r.status_code == 200, r.text
    # then the unused coupons are revoked through the ledger and compensation is paused
    assert {c["status"] for c in stage.client.get("/api/v1/coupons", headers=farmer).json()["items"]} == {"revoked"}
    again = _disputed(stage, farmer, deal)
    assert again["remedy"]["coupon_cents"] == 0 and again["remedy"]["refund_cents"] > 0
    assert_ledger_consistent(stage.db)


def test_compensation_coupons_funnelled_to_accounts_on_one_device_open_a_case(any_stage):
    # given three accounts on one phone (days apart: no window saw them together), each with an upheld
    # dispute and its coupon
    stage = any_stage
    policy(stage, hold_accounts={"device": 5})
    _, _, deal = shop(stage)
    for _ in range(3):
        buyer = stage.buyer()
        paid = _pay(stage, buyer, order(stage, buyer, deal, device="farm-phone").json()["id"])
        d = stage.client.post("/api/v1/disputes", headers=buyer, json={"order_id": paid["id"], "kind": "cannot_fulfil"})
        stage.client.post(f"/api/v1/disputes/{d.json()['id']}/confirm", headers=stage.ops, json={"reason": "ok"})
    # when the after-the-fact rules run
    found = stage.tick("risk")["risk"]
    # then one funnel case names the device and what went through it
    assert len(found["funnel_cases"]) == 1
    [case] = [c for c in cases(stage) if c["kind"] == "coupon_funnel"]
    assert words(case)[0].startswith("3 compensation coupons (")
    assert words(case)[0].endswith("went to 3 accounts on one device")
    # and confirming it pauses all three accounts
    r = stage.client.post(f"/api/v1/risk/cases/{case['id']}/decide", headers=stage.ops, json={"outcome": "abuse"})
    assert len(r.json()["effects"]["paused_buyers"]) == 3


def test_a_false_positive_is_released_with_one_click_and_counted_against_its_rule(any_stage):
    # given a family of three ordering from one tablet: the third order is held
    stage = any_stage
    _, _, deal = shop(stage)
    family = [stage.buyer() for _ in range(3)]
    held = [order(stage, b, deal, device="family-tablet") for b in family][-1].json()
    assert held["status"] == "held"
    # when the buyer answers the question in the inbox: yes, I placed it
    inbox = stage.client.get("/api/v1/risk/questions", headers=family[2]).json()["items"]
    assert [q["order_id"] for q in inbox] == [held["id"]]
    r = stage.client.post(f"/api/v1/risk/questions/{inbox[0]['id']}/answer", headers=family[2],
                          json={"placed": True, "note": "my mother's tablet"})
    assert r.status_code == 200 and r.json()["answer"] == "yes"
    again = stage.client.post(f"/api/v1/risk/questions/{inbox[0]['id']}/answer", headers=family[2],
                              json={"placed": False})
    assert again.status_code == 409 and again.json()["code"] == "already_answered"
    # then ops see the answer as evidence and release the order with one click
    case = cases(stage)[0]
    assert stage.client.get(f"/api/v1/risk/cases/{case['id']}", headers=stage.ops).json()["question"]["answer"] == "yes"
    r = stage.client.post(f"/api/v1/risk/cases/{case['id']}/release", headers=stage.ops)
    assert r.status_code == 200 and r.json()["status"] == "released"
    # and the order is payable again
    assert _pay(stage, family[2], held["id"])["status"] == "paid"
    # and deciding it again changes nothing
    r = stage.client.post(f"/api/v1/risk/cases/{case['id']}/decide", headers=stage.ops, json={"outcome": "fraud"})
    assert r.status_code == 409 and r.json()["code"] == "already_decided"
    # and the rule's false-positive rate shows it
    stats = stage.client.get("/api/v1/risk/rules", headers=stage.ops).json()
    assert stats["rules"]["shared.device"] == {"decided": 1, "false_positives": 1, "false_positive_rate": 1.0}


def test_buyers_see_the_store_reputation_on_the_deal_page(any_stage):
    # given a store with four paid orders, one of them disputed and upheld
    stage = any_stage
    _, _, deal = shop(stage)
    buyers = [stage.buyer() for _ in range(3)]
    for b in buyers:
        _pay(stage, b, order(stage, b, deal).json()["id"])
    _disputed(stage, stage.buyer(), deal)
    # when anyone reads the deal's reputation
    r = stage.client.get(f"/api/v1/deals/{deal}/reputation")
    # then it shows the band, the on-time share and the disputes upheld
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["score_band"] == "A" and body["paid_orders"] == 3  # the disputed one was refunded
    assert body["disputes_upheld"] == 1 and body["on_time_share"] == 0.75  # 3 of 4 orders served
