"""After-sales tickets: triage proposes, the buyer picks, the merchant confirms, money and stock follow."""

from __future__ import annotations

from datetime import timedelta

from tests.integration.disputes_support import assert_ledger_consistent
from tuangou.core import ledger


def _delivered(stage, quantity=2):
    merchant_id, merchant = stage.merchant("Fresh Farm")
    deal = stage.deal(merchant, stage.store(merchant, "fresh"), kind="goods", stock=10, daily_cap=None,
                      price_cents=3000, original_price_cents=4500, title="2 kg strawberries")
    buyer = stage.buyer()
    order = stage.paid_order(buyer, deal, quantity)
    for v in order["vouchers"]:
        assert stage.client.post(f"/api/v1/vouchers/{v['code']}/redeem", headers=merchant).status_code == 200
    return merchant_id, merchant, deal, buyer, order


def _stock(stage, deal):
    cal = stage.client.get(f"/api/v1/deals/{deal}/calendar").json()["items"]
    return next(b for b in cal if b["key"] == "stock")["sold"]


def _ticket(stage, buyer, order, text, photos=None):
    return stage.client.post("/api/v1/after-sales-tickets", headers=buyer,
                             json={"order_id": order["id"], "description": text, "photos": photos or []})


def test_rotten_goods_with_a_fresh_photo_get_a_reship_that_takes_stock(stage):
    merchant_id, merchant, deal, buyer, order = _delivered(stage)
    photo = {"name": "box.jpg", "taken_at": (stage.clock.now() + timedelta(minutes=5)).isoformat(),
             "size_bytes": 200_000}
    stage.clock.advance(timedelta(hours=1))
    r = _ticket(stage, buyer, order, "half the strawberries arrived rotten", [photo])
    assert r.status_code == 201, r.text
    ticket = r.json()
    assert [p["remedy"] for p in ticket["proposals"]] == ["return", "reship", "discount"]
    assert stage.client.get("/api/v1/inbox?kind=ticket_opened", headers=merchant).json()["items"]
    sold = _stock(stage, deal)
    r = stage.client.post(f"/api/v1/after-sales-tickets/{ticket['id']}/choice", headers=buyer, json={"proposal": 1})
    assert r.json()["status"] == "chosen"
    r = stage.client.post(f"/api/v1/after-sales-tickets/{ticket['id']}/decision", headers=merchant,
                          json={"approve": True})
    assert r.json()["status"] == "resolved"
    assert _stock(stage, deal) == sold + 1  # the replacement unit left the stock
    assert stage.client.get("/api/v1/inbox?kind=ticket_resolved", headers=buyer).json()["items"]
    assert_ledger_consistent(stage.db)
    assert merchant_id


def test_a_return_refunds_the_unit_from_the_merchant_and_puts_it_back_on_sale(stage):
    merchant_id, merchant, deal, buyer, order = _delivered(stage)
    before = stage.client.get("/api/v1/recovery-claims", headers=merchant).json()["merchant_balance_cents"]
    photo = {"name": "crushed.jpg", "taken_at": stage.clock.now().isoformat()}
    ticket = _ticket(stage, buyer, order, "the box was crushed", [photo]).json()
    stage.client.post(f"/api/v1/after-sales-tickets/{ticket['id']}/choice", headers=buyer, json={"proposal": 0})
    sold = _stock(stage, deal)
    r = stage.client.post(f"/api/v1/after-sales-tickets/{ticket['id']}/decision", headers=stage.ops,
                          json={"approve": True, "reason": "photo shows a crushed box"})
    assert r.json()["status"] == "resolved"
    assert _stock(stage, deal) == sold - 1
    stage.tick("orders")
    b = assert_ledger_consistent(stage.db)
    assert b[ledger.merchant_account(merchant_id)] == before - 3000
    assert b[ledger.EXTERNAL_BUYERS] == -3000  # paid 6000, 3000 back


def test_ticket_roles_and_transitions(stage):
    _, merchant, _, buyer, order = _delivered(stage, 1)
    _, other = stage.merchant("Other")
    assert _ticket(stage, stage.buyer(), order, "bad").status_code == 404
    assert _ticket(stage, buyer, order, "").status_code == 422
    bad_photo = [{"name": "x.jpg", "taken_at": "2026-11-23T10:00:00"}]
    assert _ticket(stage, buyer, order, "bad", bad_photo).json()["code"] == "validation_error"
    ticket = _ticket(stage, buyer, order, "a small scratch on the lid").json()
    assert [p["remedy"] for p in ticket["proposals"]] == ["discount"]
    url = f"/api/v1/after-sales-tickets/{ticket['id']}"
    assert stage.client.post(f"{url}/decision", headers=merchant, json={"approve": True}).json()["code"] \
        == "invalid_transition"
    assert stage.client.post(f"{url}/choice", headers=buyer, json={"proposal": 3}).status_code == 422
    stage.client.post(f"{url}/choice", headers=buyer, json={"proposal": 0})
    assert stage.client.post(f"{url}/decision", headers=other, json={"approve": True}).status_code == 404
    assert stage.client.post(f"{url}/decision", headers=buyer, json={"approve": True}).status_code == 403
    assert stage.client.post(f"{url}/decision", headers=merchant, json={"approve": False}).status_code == 422
    r = stage.client.post(f"{url}/decision", headers=merchant, json={"approve": False, "reason": "scratch is "
                                                                                                 "cosmetic"})
    assert r.json()["status"] == "rejected"
    assert stage.client.get("/api/v1/after-sales-tickets", headers=other).json()["items"] == []
    assert len(stage.client.get("/api/v1/after-sales-tickets", headers=merchant).json()["items"]) == 1
    assert_ledger_consistent(stage.db)
