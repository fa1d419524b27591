"""Disputes over HTTP: tiered response, the platform pays first, recovery from the merchant, SLA, roles."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from tests.integration.disputes_support import assert_ledger_consistent, me
from tuangou.core import ledger
from tuangou.core.db import UnitOfWork
from tuangou.core.outbox import OutboxEvent
from tuangou.governance import service as governance
from tuangou.merchants import service as merchants


def _ktv(stage, price=8800):
    merchant_id, merchant = stage.merchant("Star KTV")
    deal = stage.deal(merchant, stage.store(merchant, "entertainment"), price_cents=price,
                      original_price_cents=16800, title="3 hours in a medium room")
    return merchant_id, merchant, deal


def _dispute(stage, who, order_id, kind="cannot_fulfil", **extra):
    return stage.client.post("/api/v1/disputes", headers=who, json={"order_id": order_id, "kind": kind, **extra})


def _balances(stage):
    with UnitOfWork(stage.db) as uow:
        return ledger.balances(uow.session)


def test_ktv_room_full_at_arrival_is_severe_refund_and_coupon_at_once_platform_pays_merchant_repays(stage):
    # given a KTV that sold a ¥88 room voucher, paid by the buyer
    merchant_id, merchant, deal = _ktv(stage)
    buyer = stage.buyer()
    order = stage.paid_order(buyer, deal)
    # when the buyer arrives, is told "the rooms are full" and opens a dispute with a photo
    r = _dispute(stage, buyer, order["id"], description="room full at arrival, told to wait or leave",
                 evidence=[{"kind": "photo", "name": "front-desk.jpg"}])
    assert r.status_code == 201, r.text
    dispute = r.json()
    assert (dispute["status"], dispute["tier"]) == ("open", "severe")
    assert stage.client.get("/api/v1/inbox?kind=dispute_opened", headers=merchant).json()["items"]
    # and ops confirm it as the merchant's over-selling
    r = stage.client.post(f"/api/v1/disputes/{dispute['id']}/confirm", headers=stage.ops,
                          json={"reason": "all rooms booked twice on Saturday", "oversale": True})
    assert r.status_code == 200, r.text
    # then at once: full refund paid out, a ¥30 coupon, and the merchant owes the platform the ¥30
    confirmed = r.json()
    assert confirmed["status"] == "confirmed" and confirmed["oversale"]
    assert confirmed["remedy"]["refund_cents"] == 8800 and confirmed["remedy"]["recovery_cents"] == 3000
    assert [(c["value"], c["origin"], c["status"]) for c in confirmed["coupons"]] == [(3000, "compensation",
                                                                                       "available")]
    assert stage.client.get(f"/api/v1/orders/{order['id']}", headers=buyer).json()["status"] == "refunded"
    assert stage.client.get("/api/v1/inbox?kind=refund_done", headers=buyer).json()["items"]
    assert stage.gateway.refund_calls == 1
    b = assert_ledger_consistent(stage.db)
    assert b[ledger.EXTERNAL_BUYERS] == 0  # the buyer has the ¥88 back
    assert b.get(ledger.COMPENSATION, 0) == 0  # what the platform advanced is booked back from the merchant
    assert b[ledger.merchant_account(merchant_id)] == -3000
    claims = stage.client.get("/api/v1/recovery-claims", headers=merchant).json()
    assert [(c["ref"], c["amount_cents"], c["status"]) for c in claims["items"]] == [
        (f"dispute:{dispute['id']}", 3000, "open")]
    assert claims["merchant_balance_cents"] == -3000
    # and the over-sale counts against the merchant once, in its category, with the full history kept
    with UnitOfWork(stage.db) as uow:
        violations = [e.payload for e in uow.session.scalars(select(OutboxEvent).where(
            OutboxEvent.type == "ViolationRecorded"))]
    assert [(v["merchant_id"], v["category"], v["kind"], v["ref"]) for v in violations] == [
        (merchant_id, "entertainment", "oversale", f"dispute:{dispute['id']}")]
    history = stage.client.get(f"/api/v1/disputes/{dispute['id']}", headers=buyer).json()["history"]
    assert [h["action"] for h in history] == ["opened", "confirmed"]
    assert history[0]["evidence"][0]["name"] == "front-desk.jpg"
    again = stage.client.post(f"/api/v1/disputes/{dispute['id']}/confirm", headers=stage.ops,
                              json={"reason": "twice", "oversale": True})
    assert again.status_code == 409 and stage.gateway.refund_calls == 1


def test_a_confirmed_dispute_has_refunded_and_given_the_coupon_by_the_time_it_answers(stage):
    _, _, deal = _ktv(stage)
    buyer = stage.buyer()
    order = stage.paid_order(buyer, deal)
    dispute = _dispute(stage, buyer, order["id"]).json()
    # when ops confirm it (no worker tick in between: "at once" means within the confirming request)
    r = stage.client.post(f"/api/v1/disputes/{dispute['id']}/confirm", headers=stage.ops,
                          json={"reason": "room full", "oversale": True})
    # then the refund has gone through the gateway and the coupon is in the buyer's account
    refunded = stage.client.get("/api/v1/inbox?kind=refund_done", headers=buyer).json()["items"]
    coupons = stage.client.get("/api/v1/coupons", headers=buyer).json()["items"]
    assert r.status_code == 200 and refunded and coupons[0]["value"] == 3000


def test_recorded_oversale_incident_confirms_the_dispute_on_opening(stage, monkeypatch):
    # given governance recorded an over-sale incident for the order
    merchant_id, _, deal = _ktv(stage)
    buyer = stage.buyer()
    order = stage.paid_order(buyer, deal)
    monkeypatch.setattr(governance, "oversale_incident_for_order", lambda uow, order_id: {
        "id": 7, "merchant_id": merchant_id, "category": "entertainment", "ref": "oversale:7"}
        if order_id == order["id"] else None)
    seen = []
    monkeypatch.setattr(merchants, "record_violation", lambda uow, **kw: seen.append(kw))
    # when the buyer opens a dispute
    r = _dispute(stage, buyer, order["id"])
    # then it is confirmed as over-selling at once, and the violation carries the incident's ref
    assert r.status_code == 201 and r.json()["status"] == "confirmed" and r.json()["oversale"]
    assert [(v["kind"], v["ref"]) for v in seen] == [("oversale", "oversale:7")]
    assert stage.client.get(f"/api/v1/orders/{order['id']}", headers=buyer).json()["status"] == "refunded"
    assert_ledger_consistent(stage.db)


def test_light_late_fulfilment_after_redemption_is_made_free_by_the_platform(stage):
    # given a catering voucher already redeemed (the buyer was served, 20 minutes late)
    merchant_id, merchant = stage.merchant("Noodles")
    deal = stage.deal(merchant, stage.store(merchant), price_cents=3900, original_price_cents=5800)
    buyer = stage.buyer()
    order = stage.paid_order(buyer, deal)
    assert stage.client.post(f"/api/v1/vouchers/{order['vouchers'][0]['code']}/redeem",
                             headers=merchant).status_code == 200
    before = _balances(stage)[ledger.merchant_account(merchant_id)]
    # when the buyer disputes and ops confirm
    dispute = _dispute(stage, buyer, order["id"], "late_fulfilment", late_minutes=20).json()
    assert dispute["tier"] == "light"
    r = stage.client.post(f"/api/v1/disputes/{dispute['id']}/confirm", headers=stage.ops, json={"reason": "late"})
    # then the order is free (the platform advances ¥39) plus a ¥10 coupon; the merchant repays both
    assert r.json()["remedy"]["refund_cents"] == 3900 and r.json()["remedy"]["recovery_cents"] == 4900
    b = assert_ledger_consistent(stage.db)
    assert b[ledger.EXTERNAL_BUYERS] == 0
    assert b[ledger.merchant_account(merchant_id)] == before - 4900


def test_medium_not_today_rebooks_with_a_free_side_dish_served_by_that_merchant(stage):
    merchant_id, merchant = stage.merchant("Hotpot")
    deal = stage.deal(merchant, stage.store(merchant), price_cents=5000, original_price_cents=9000)
    buyer = stage.buyer()
    order = stage.paid_order(buyer, deal)
    # when the merchant itself reports it cannot serve the buyer today (an admission: confirmed at once)
    r = _dispute(stage, merchant, order["id"], "cannot_fulfil_today", description="no table available tonight")
    assert r.status_code == 201, r.text
    d = r.json()
    # then no refund, a rebooking window of 3 days and a side dish in kind, served only there
    assert (d["status"], d["tier"], d["remedy"]["refund_cents"]) == ("confirmed", "medium", 0)
    assert d["remedy"]["rebook_until"].startswith((stage.clock.now() + timedelta(days=3)).date().isoformat())
    side = d["coupons"][0]
    assert (side["kind"], side["item"], side["merchant_id"], side["value"]) == ("item", "free side dish",
                                                                                 merchant_id, 1500)
    assert stage.client.get(f"/api/v1/orders/{order['id']}", headers=buyer).json()["status"] == "paid"
    assert stage.client.post(f"/api/v1/item-vouchers/{side['code']}/redeem", headers=merchant).status_code == 200
    assert_ledger_consistent(stage.db)


def test_sla_timer_escalates_unanswered_disputes_to_ops(stage):
    _, merchant, deal = _ktv(stage)
    buyer = stage.buyer()
    order = stage.paid_order(buyer, deal)
    dispute = _dispute(stage, buyer, order["id"], "quality_problem").json()
    stage.clock.advance(timedelta(minutes=119))
    stage.tick("disputes")
    assert stage.client.get(f"/api/v1/disputes/{dispute['id']}", headers=buyer).json()["status"] == "open"
    stage.clock.advance(timedelta(minutes=2))
    stage.tick("disputes")
    stage.tick("disputes")  # safe to run twice
    d = stage.client.get(f"/api/v1/disputes/{dispute['id']}", headers=buyer).json()
    assert d["status"] == "escalated" and [h["action"] for h in d["history"]] == ["opened", "escalated"]
    assert len(stage.client.get("/api/v1/inbox?kind=dispute_escalated", headers=stage.ops).json()["items"]) == 1
    assert stage.client.get("/api/v1/inbox?kind=dispute_escalated", headers=merchant).json()["items"]


def test_merchant_contests_and_ops_reject_with_a_reason(stage):
    _, merchant, deal = _ktv(stage)
    buyer = stage.buyer()
    order = stage.paid_order(buyer, deal)
    dispute = _dispute(stage, buyer, order["id"], "not_as_described").json()
    r = stage.client.post(f"/api/v1/disputes/{dispute['id']}/contest", headers=merchant,
                          json={"note": "room was as described", "evidence": [{"kind": "chat", "name": "log.txt"}]})
    assert r.json()["status"] == "contested"
    stage.client.post(f"/api/v1/disputes/{dispute['id']}/evidence", headers=buyer,
                      json={"note": "here is the room", "evidence": [{"kind": "photo", "name": "room.jpg"}]})
    assert stage.client.get("/api/v1/inbox?kind=dispute_evidence", headers=merchant).json()["items"]
    assert stage.client.post(f"/api/v1/disputes/{dispute['id']}/reject", headers=stage.ops,
                             json={"reason": ""}).status_code == 422
    r = stage.client.post(f"/api/v1/disputes/{dispute['id']}/reject", headers=stage.ops,
                          json={"reason": "chat log shows the room was ready"})
    assert r.json()["status"] == "rejected"
    assert stage.client.get("/api/v1/audit?action=reject_dispute", headers=stage.ops).json()["items"]
    assert stage.client.get("/api/v1/inbox?kind=dispute_rejected", headers=buyer).json()["items"]
    # a decided dispute frees the order for a new one
    assert _dispute(stage, buyer, order["id"], "quality_problem").status_code == 201
    assert_ledger_consistent(stage.db)


def test_roles_and_bad_requests_change_nothing(stage):
    _, merchant, deal = _ktv(stage)
    _, other_merchant = stage.merchant("Other")
    buyer, stranger = stage.buyer(), stage.buyer()
    order = stage.paid_order(buyer, deal)
    assert _dispute(stage, stranger, order["id"]).status_code == 404
    assert _dispute(stage, other_merchant, order["id"]).status_code == 404
    assert _dispute(stage, buyer, order["id"], "bad_kind").status_code == 422
    unpaid = stage.order(buyer, deal).json()
    assert _dispute(stage, buyer, unpaid["id"]).json()["code"] == "not_disputable"
    dispute = _dispute(stage, buyer, order["id"]).json()
    assert _dispute(stage, buyer, order["id"]).json()["code"] == "dispute_exists"
    url = f"/api/v1/disputes/{dispute['id']}"
    assert stage.client.post(f"{url}/confirm", headers=buyer, json={"reason": "x"}).status_code == 403
    assert stage.client.post(f"{url}/confirm", headers=merchant, json={"oversale": True}).status_code == 403
    assert stage.client.post(f"{url}/confirm", headers=stage.ops, json={"reason": " "}).status_code == 422
    assert stage.client.post(f"{url}/confirm", headers=other_merchant, json={}).status_code == 404
    assert stage.client.get(url, headers=stranger).status_code == 404
    assert stage.client.get("/api/v1/disputes", headers=other_merchant).json()["items"] == []
    assert stage.client.get(url, headers=buyer).json()["status"] == "open"
    assert stage.client.post(f"{url}/withdraw", headers=buyer, json={"note": "sorted it out"}).json()["status"] \
        == "withdrawn"
    assert stage.client.post(f"{url}/confirm", headers=stage.ops, json={"reason": "late"}).status_code == 409
    assert stage.client.get("/api/v1/coupons", headers=buyer).json()["items"] == []
    assert_ledger_consistent(stage.db)


def test_ops_edit_the_policy_through_the_api_and_it_decides_the_next_dispute(stage):
    _, _, deal = _ktv(stage)
    buyer = stage.buyer()
    assert stage.client.get("/api/v1/dispute-policy", headers=buyer).json()["tiers"]["severe"]["coupon_cents"] == 3000
    change = {"changes": {"tiers": {"severe": {"coupon_cents": 4000}}}, "reason": "holiday season"}
    assert stage.client.patch("/api/v1/dispute-policy", headers=buyer, json=change).status_code == 403
    bad = {"changes": {"tiers": {"severe": {"coupon_cents": -5}}}, "reason": "oops"}
    assert stage.client.patch("/api/v1/dispute-policy", headers=stage.ops, json=bad).status_code == 422
    assert stage.client.patch("/api/v1/dispute-policy", headers=stage.ops, json=change).status_code == 200
    order = stage.paid_order(buyer, deal)
    dispute = _dispute(stage, buyer, order["id"]).json()
    r = stage.client.post(f"/api/v1/disputes/{dispute['id']}/confirm", headers=stage.ops, json={"reason": "full"})
    assert r.json()["coupons"][0]["value"] == 4000
    assert stage.client.get("/api/v1/audit?action=update_dispute_policy", headers=stage.ops).json()["items"]
    assert_ledger_consistent(stage.db)


def test_severe_buyer_applies_for_a_stacked_package_and_ops_approve_once(stage):
    merchant_id, merchant, deal = _ktv(stage)
    buyer = stage.buyer()
    order = stage.paid_order(buyer, deal)
    dispute = _dispute(stage, buyer, order["id"]).json()
    url = f"/api/v1/disputes/{dispute['id']}"
    assert stage.client.post(f"{url}/stack-request", headers=buyer).json()["code"] == "stacking_not_allowed"
    stage.client.post(f"{url}/confirm", headers=stage.ops, json={"reason": "wedding hall double-booked"})
    r = stage.client.post(f"{url}/stack-request", headers=buyer, json={"note": "it was my wedding"})
    assert r.status_code == 201 and r.json()["status"] == "pending"
    assert stage.client.post(f"{url}/stack-request", headers=buyer).json()["code"] == "stack_already_requested"
    assert stage.client.post(f"{url}/stack-request/decision", headers=merchant,
                             json={"approve": True, "reason": "x"}).status_code == 403
    r = stage.client.post(f"{url}/stack-request/decision", headers=stage.ops,
                          json={"approve": True, "reason": "severe and sincere"})
    assert r.json()["status"] == "approved"
    assert stage.client.post(f"{url}/stack-request/decision", headers=stage.ops,
                             json={"approve": True, "reason": "again"}).json()["code"] == "already_decided"
    assert stage.client.get("/api/v1/inbox?kind=stack_approved", headers=merchant).json()["items"]
    coupons = {(c["kind"], c["value"], c["status"]) for c in stage.client.get(url, headers=buyer).json()["coupons"]}
    assert coupons == {("amount", 3000, "revoked"), ("amount", 5000, "available"), ("percent", 2000, "available")}
    claims = stage.client.get("/api/v1/recovery-claims", headers=merchant).json()
    assert sum(c["amount_cents"] for c in claims["items"]) == 5000 == -claims["merchant_balance_cents"]
    # the 20% coupon takes a fifth off the next order and the merchant repays that too when it is used
    percent = next(c for c in stage.client.get("/api/v1/coupons", headers=buyer).json()["items"]
                   if c["kind"] == "percent")
    next_order = stage.order(buyer, deal, coupon_code=percent["code"]).json()
    assert next_order["amount_cents"] == 8800 - 1760
    assert -stage.client.get("/api/v1/recovery-claims", headers=merchant).json()["merchant_balance_cents"] == 6760
    assert_ledger_consistent(stage.db)
    assert merchant_id


def test_medium_disputes_do_not_stack(stage):
    _, merchant, deal = _ktv(stage)
    buyer = stage.buyer()
    order = stage.paid_order(buyer, deal)
    d = _dispute(stage, merchant, order["id"], "cannot_fulfil_today").json()
    r = stage.client.post(f"/api/v1/disputes/{d['id']}/stack-request", headers=buyer)
    assert r.status_code == 409 and r.json()["code"] == "stacking_not_allowed"
    assert me(stage, buyer) == d["buyer_id"]


def test_recovery_claim_is_marked_recovered_once_settlements_cover_it(stage):
    # given a confirmed severe dispute: the merchant owes the platform ¥30
    _, merchant, deal = _ktv(stage)
    buyer = stage.buyer()
    disputed = stage.paid_order(buyer, deal)
    dispute = _dispute(stage, buyer, disputed["id"]).json()
    stage.client.post(f"/api/v1/disputes/{dispute['id']}/confirm", headers=stage.ops, json={"reason": "full"})
    stage.tick("disputes")
    assert stage.client.get("/api/v1/recovery-claims", headers=merchant).json()["items"][0]["status"] == "open"
    # when the merchant serves another buyer and is settled for it
    served = stage.paid_order(stage.buyer(), deal)
    stage.client.post(f"/api/v1/vouchers/{served['vouchers'][0]['code']}/redeem", headers=merchant)
    stage.tick("disputes")
    # then the claim is recovered out of that settlement
    claims = stage.client.get("/api/v1/recovery-claims", headers=merchant).json()
    assert claims["items"][0]["status"] == "recovered" and claims["merchant_balance_cents"] >= 0
    assert_ledger_consistent(stage.db)


def test_an_order_is_refunded_by_one_dispute_at_most_but_medium_can_escalate_to_severe(any_stage):
    stage = any_stage
    # given a redeemed order made free by a light dispute
    _, merchant, deal = _ktv(stage)
    buyer = stage.buyer()
    order = stage.paid_order(buyer, deal)
    stage.client.post(f"/api/v1/vouchers/{order['vouchers'][0]['code']}/redeem", headers=merchant)
    first = _dispute(stage, buyer, order["id"], "late_fulfilment", late_minutes=10).json()
    assert stage.client.post(f"/api/v1/disputes/{first['id']}/confirm", headers=stage.ops,
                             json={"reason": "late"}).status_code == 200
    # when a second dispute on the same order is confirmed with a refund
    second = _dispute(stage, buyer, order["id"], "quality_problem").json()
    r = stage.client.post(f"/api/v1/disputes/{second['id']}/confirm", headers=stage.ops, json={"reason": "again"})
    # then it is refused and nothing is paid twice
    assert r.status_code == 409 and r.json()["code"] == "already_refunded"
    assert stage.client.get(f"/api/v1/disputes/{second['id']}", headers=buyer).json()["status"] == "open"
    assert_ledger_consistent(stage.db)
    # but a medium remedy (no refund) may be followed by a severe one when the rebooking fails too
    other = stage.paid_order(buyer, deal)
    medium = _dispute(stage, merchant, other["id"], "cannot_fulfil_today").json()
    assert medium["status"] == "confirmed"
    severe = _dispute(stage, merchant, other["id"], "cannot_fulfil").json()
    assert severe["status"] == "confirmed" and severe["remedy"]["refund_cents"] == 8800
    assert_ledger_consistent(stage.db)
