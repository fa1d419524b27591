"""Each order-path rule of risk, on SQLite and PostgreSQL: what it holds or refuses, what it says it saw,
what a held or refused order does to capacity."""

from __future__ import annotations

import pytest

from tests.integration.risk_support import availability, cases, order, policy, shop, words


def test_velocity_on_one_device_holds_the_order_that_crosses_the_line(any_stage):
    # given a device may place 2 orders in the window before the next one is held
    stage = any_stage
    policy(stage, hold_orders={"device": 2})
    _, _, deal = shop(stage)
    buyer = stage.buyer()
    # when the same buyer orders three times from one device
    first = [order(stage, buyer, deal, device="phone-A") for _ in range(2)]
    third = order(stage, buyer, deal, device="phone-A")
    # then the first two pass and the third is held, its units kept
    assert [r.json()["status"] for r in first] == ["reserved", "reserved"]
    assert third.status_code == 201 and third.json()["status"] == "held"
    assert availability(stage, deal)["reserved"] == 3
    # and it cannot be paid while held
    r = stage.client.post(f"/api/v1/orders/{third.json()['id']}/pay", headers=buyer, json={"outcome": "succeed"})
    assert r.status_code == 409 and r.json()["code"] == "not_payable"
    # and the case says what the rule saw
    [case] = cases(stage)
    assert case["order_id"] == third.json()["id"] and case["kind"] == "order_hold"
    assert "3 orders on one device in 10 minutes (more than 2 is held)" in words(case)
    # and another device is not affected
    assert order(stage, buyer, deal, device="phone-B").json()["status"] == "reserved"


def test_velocity_past_the_reject_line_refuses_and_keeps_nothing(any_stage):
    # given an account may place at most 2 orders in the window
    stage = any_stage
    policy(stage, reject_orders={"buyer": 2}, hold_orders={"buyer": 5})
    _, _, deal = shop(stage)
    buyer = stage.buyer()
    for _ in range(2):
        assert order(stage, buyer, deal).status_code == 201
    # when it places a third
    r = order(stage, buyer, deal)
    # then it is refused with the words, and capacity holds only the two orders
    assert r.status_code == 409 and r.json()["code"] == "risk_rejected"
    assert "3 orders on this account in 10 minutes (more than 2 is refused)" in r.json()["detail"]
    assert availability(stage, deal)["reserved"] == 2
    assert cases(stage) == []


@pytest.mark.parametrize(("scope", "field", "values", "said"), [
    ("address", "address", ["Room 5, 88 Nanjing Rd", "room 5 88 nanjing rd.", "ROOM 5，88 NANJING RD"],
     "3 accounts on one delivery address"),
    ("phone", "recipient_phone", ["+86 138-0013-8000", "13800138000", "8613800138000"],
     "3 accounts on one recipient phone"),
    ("payment", "payment_method", ["acct:ring:card1", "acct:ring:card2", "acct:ring:card3"],
     "3 accounts on one payment account"),
])
def test_many_accounts_sharing_one_value_are_held(any_stage, scope, field, values, said):
    # given at most 2 accounts may share one address, phone or payment account in the window
    stage = any_stage
    policy(stage, hold_accounts={scope: 2})
    _, _, deal = shop(stage)
    # when three accounts order with the same value, written three ways
    answers = [order(stage, stage.buyer(), deal, **{field: value}) for value in values]
    # then the third account's order is held, and the case names what they shared
    assert [r.json()["status"] for r in answers] == ["reserved", "reserved", "held"]
    [case] = cases(stage)
    assert any(w.startswith(said) for w in words(case)), words(case)


def test_many_accounts_on_one_device_are_held(any_stage):
    stage = any_stage
    _, _, deal = shop(stage)
    # when three accounts order from one device (the seed policy allows two)
    answers = [order(stage, stage.buyer(), deal, device="shared-phone") for _ in range(3)]
    # then the third is held: "3 accounts on one device"
    assert [r.json()["status"] for r in answers] == ["reserved", "reserved", "held"]
    assert any(w.startswith("3 accounts on one device in 10 minutes") for w in words(cases(stage)[0]))


def test_reserving_many_units_is_held_as_stock_lock_up(any_stage):
    # given a buyer may reserve 30 units in the window (seed)
    stage = any_stage
    _, _, deal = shop(stage, daily_cap=200)
    buyer = stage.buyer()
    assert order(stage, buyer, deal, quantity=20).json()["status"] == "reserved"
    # when the same buyer reserves 20 more
    r = order(stage, buyer, deal, quantity=20)
    # then that order is held: it keeps its units until ops decide, and the case says why
    assert r.json()["status"] == "held"
    assert availability(stage, deal)["reserved"] == 40
    assert "40 units reserved by this account in 10 minutes (more than 30 is held)" in words(cases(stage)[0])


def test_accounts_linked_to_the_merchant_buying_its_deals_are_held(any_stage):
    # given a merchant declared its shop phone and a staff account
    stage = any_stage
    merchant_id, merchant, deal = shop(stage, "Linked")
    staff = stage.buyer()
    staff_id = stage.client.get("/api/v1/me", headers=staff).json()["id"]
    for kind, value in (("device", "shop-ipad"), ("staff", str(staff_id))):
        r = stage.client.post(f"/api/v1/merchants/{merchant_id}/risk-links", headers=merchant,
                              json={"kind": kind, "value": value})
        assert r.status_code == 201, r.text
    # when a buyer orders from the shop's device, and the staff account orders from its own phone
    from_device = order(stage, stage.buyer(), deal, device="SHOP-IPAD")
    from_staff = order(stage, staff, deal, device="staff-own-phone")
    # then both are held as brushing suspects; other merchants' deals are not affected
    assert from_device.json()["status"] == "held" and from_staff.json()["status"] == "held"
    said = sorted(w for c in cases(stage) for w in words(c))
    assert said == ["the buyer is the merchant's own staff account and buys its deal",
                    "the buyer uses the merchant's device and buys its deal"]
    _, _, other_deal = shop(stage, "Other")
    assert order(stage, staff, other_deal, device="shop-ipad").json()["status"] == "reserved"
    # and a merchant cannot declare links for another merchant
    other_id, _ = stage.merchant("Third")
    r = stage.client.post(f"/api/v1/merchants/{other_id}/risk-links", headers=merchant,
                          json={"kind": "device", "value": "x"})
    assert r.status_code == 403


def test_a_refused_order_returns_its_capacity_at_once(any_stage):
    # given a merchant-linked device is refused outright
    stage = any_stage
    policy(stage, linked_merchant="reject")
    merchant_id, merchant, deal = shop(stage, daily_cap=5)
    stage.client.post(f"/api/v1/merchants/{merchant_id}/risk-links", headers=merchant,
                      json={"kind": "device", "value": "shop-ipad"})
    # when an order comes from it
    r = order(stage, stage.buyer(), deal, device="shop-ipad", quantity=5)
    # then it is refused and all 5 units are still on sale
    assert r.status_code == 409 and r.json()["code"] == "risk_rejected"
    assert availability(stage, deal)["remaining"] == 5
