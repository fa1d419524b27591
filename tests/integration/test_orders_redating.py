"""Booking binds the day (预约, SPEC A4/A6/E1): a voucher is redeemed on its service date only, a change of date
is agreed (buyer proposes, merchant approves; or agreed in advance by the circuit breaker or a medium-tier
dispute) and moves the capacity unit between the dates' buckets, never past a cap; the breaker pauses only
the date that lost capacity."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import date, timedelta

from tuangou.core.auth import Principal, Role
from tuangou.core.db import UnitOfWork
from tuangou.core.errors import DomainError
from tuangou.orders import service as orders

TODAY = date(2026, 11, 23)  # START is 10:00 in Shanghai on this Monday


def _day(n: int) -> str:
    return (TODAY + timedelta(days=n)).isoformat()


def _calendar(stage, deal):
    return {b["key"]: b for b in stage.client.get(f"/api/v1/deals/{deal}/calendar").json()["items"]}


def _sold(stage, deal, n):
    return _calendar(stage, deal).get(_day(n), {"sold": 0})["sold"]


def _shop(stage, **terms):
    merchant_id, merchant = stage.merchant("Star KTV")
    deal = stage.deal(merchant, stage.store(merchant, "entertainment"), **terms)
    return merchant_id, merchant, deal


def _redate(stage, who, order_id, n, **extra):
    return stage.client.post(f"/api/v1/orders/{order_id}/redate", headers=who,
                             json={"service_date": _day(n), **extra})


def _redeem(stage, merchant, code):
    return stage.client.post(f"/api/v1/vouchers/{code}/redeem", headers=merchant)


def _approve_at_once(stage, merchant: Principal, redating_ids: list[int]) -> list[str]:
    barrier = threading.Barrier(len(redating_ids))
    results: list[str] = []

    def approve(redating_id: int) -> None:
        barrier.wait()
        try:
            results.append(orders.decide_redating(UnitOfWork(stage.db, stage.clock), merchant, redating_id,
                                                  True)["status"])
        except DomainError as exc:
            results.append(exc.code)

    threads = [threading.Thread(target=approve, args=(i,)) for i in redating_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_a_voucher_booked_for_a_later_day_is_refused_today_and_redeemed_on_its_day(any_stage):
    stage = any_stage
    # given a KTV room booked and paid for three days ahead
    _, merchant, deal = _shop(stage)
    buyer = stage.buyer()
    order = stage.paid_order(buyer, deal, service_date=_day(3))
    code = order["vouchers"][0]["code"]
    # when the buyer shows up today, the redemption is refused with a stable code and nothing changes
    r = _redeem(stage, merchant, code)
    assert r.status_code == 409 and r.json()["code"] == "voucher_wrong_date", r.text
    assert (r.json()["service_date"], r.json()["today"]) == (_day(3), _day(0))
    assert stage.client.get(f"/api/v1/vouchers/{code}", headers=merchant).json()["status"] == "issued"
    # then on the booked day it is redeemed
    stage.clock.advance(timedelta(days=3))
    r = _redeem(stage, merchant, code)
    assert r.status_code == 200 and r.json()["status"] == "redeemed", r.text


def test_the_buyer_proposes_a_date_the_merchant_approves_and_the_units_move_with_the_vouchers(any_stage):
    stage = any_stage
    # given two vouchers booked for day 3
    _, merchant, deal = _shop(stage, daily_cap=5)
    buyer = stage.buyer()
    order = stage.paid_order(buyer, deal, 2, service_date=_day(3))
    # when the buyer asks for day 1 instead
    options = stage.client.get(f"/api/v1/orders/{order['id']}/redate-options", headers=buyer).json()
    assert options["pre_agreed"] is False and options["units"] == 2
    assert {d["service_date"] for d in options["dates"] if d["fits"]} >= {_day(0), _day(1), _day(7)}
    r = _redate(stage, buyer, order["id"], 1, reason="my friend arrives early")
    assert r.status_code == 200 and r.json()["status"] == "proposed", r.text
    # then nothing moves until the merchant approves
    assert (_sold(stage, deal, 3), _sold(stage, deal, 1)) == (2, 0)
    pending = stage.client.get("/api/v1/redatings", headers=merchant, params={"status": "proposed"}).json()["items"]
    assert [p["id"] for p in pending] == [r.json()["id"]]
    approved = stage.client.post(f"/api/v1/redatings/{r.json()['id']}/approve", headers=merchant)
    assert approved.status_code == 200 and approved.json()["status"] == "applied", approved.text
    # and both units moved from day 3 to day 1 with the order and its vouchers
    assert (_sold(stage, deal, 3), _sold(stage, deal, 1)) == (0, 2)
    assert stage.client.get(f"/api/v1/orders/{order['id']}", headers=buyer).json()["service_date"] == _day(1)
    code = order["vouchers"][0]["code"]
    assert stage.client.get(f"/api/v1/vouchers/{code}", headers=buyer).json()["service_date"] == _day(1)
    stage.clock.advance(timedelta(days=1))
    assert _redeem(stage, merchant, code).status_code == 200
    # a rejected proposal leaves the order where it is
    other = stage.paid_order(buyer, deal, 1, service_date=_day(4))
    asked = _redate(stage, buyer, other["id"], 5).json()
    rejected = stage.client.post(f"/api/v1/redatings/{asked['id']}/reject", headers=merchant,
                                 json={"reason": "closed that day"})
    assert rejected.json()["status"] == "rejected"
    assert stage.client.get(f"/api/v1/orders/{other['id']}", headers=buyer).json()["service_date"] == _day(4)
    again = stage.client.post(f"/api/v1/redatings/{asked['id']}/approve", headers=merchant)
    assert again.status_code == 409 and again.json()["code"] == "not_pending"


def test_refused_redatings_have_stable_codes_and_change_nothing(any_stage):
    stage = any_stage
    # given day 2 is full and a buyer holding two vouchers for day 3
    _, merchant, deal = _shop(stage, daily_cap=2)
    stage.paid_order(stage.buyer(), deal, 2, service_date=_day(2))
    buyer, stranger = stage.buyer(), stage.buyer()
    order = stage.paid_order(buyer, deal, 2, service_date=_day(3))
    before = _calendar(stage, deal)
    cases = [(buyer, 3, 422, "same_date"), (buyer, 8, 422, "outside_window"), (buyer, -1, 422, "outside_window"),
             (buyer, 2, 409, "no_room"), (stranger, 1, 403, "not_order_owner"), (merchant, 1, 403, "not_order_owner")]
    for who, n, status, code in cases:
        r = _redate(stage, who, order["id"], n)
        assert (r.status_code, r.json()["code"]) == (status, code), (n, code, r.text)
    slot = _redate(stage, buyer, order["id"], 1, slot="evening")
    assert (slot.status_code, slot.json()["code"]) == (422, "invalid_slot")
    # a used voucher ties the order to the day it was served
    today = stage.paid_order(buyer, deal, 2)
    assert _redeem(stage, merchant, today["vouchers"][0]["code"]).status_code == 200
    r = _redate(stage, buyer, today["id"], 1)
    assert (r.status_code, r.json()["code"]) == (409, "voucher_already_redeemed")
    after = _calendar(stage, deal)
    assert [(after[k]["sold"], after[k]["cap"]) for k in (_day(1), _day(2), _day(3))] == [
        (before[k]["sold"], before[k]["cap"]) for k in (_day(1), _day(2), _day(3))]
    assert (after[_day(2)]["sold"], after[_day(3)]["sold"]) == (2, 2)
    assert stage.client.get("/api/v1/redatings", headers=buyer).json()["items"] == []


def test_two_concurrent_redatings_into_a_date_with_one_unit_left_exactly_one_wins(any_stage):
    stage = any_stage
    merchant_id, merchant, deal = _shop(stage, daily_cap=10)
    merchant_p = Principal(0, Role.MERCHANT, merchant_id)
    for n in range(1, 5):  # a few rounds, each into a fresh target date
        # given the target date has one unit left and two buyers booked today each ask for it
        r = stage.client.put(f"/api/v1/deals/{deal}/capacity", headers=merchant,
                             json={"service_date": _day(n), "cap": 1, "reason": "one room left"})
        assert r.status_code == 200, r.text
        asked = []
        for _ in range(2):
            buyer = stage.buyer()
            order = stage.paid_order(buyer, deal, 1)
            r = _redate(stage, buyer, order["id"], n)
            assert r.json()["status"] == "proposed", r.text
            asked.append(r.json()["id"])
        # when the merchant approves both at the same moment
        results = _approve_at_once(stage, merchant_p, asked)
        # then exactly one moves and the date holds exactly its cap
        assert Counter(results) == Counter({"applied": 1, "no_room": 1}), results
        day = _calendar(stage, deal)[_day(n)]
        assert (day["sold"], day["cap"]) == (1, 1)


def test_the_breaker_pauses_only_the_lost_date_and_the_moved_buyer_picks_another_date(any_stage):
    stage = any_stage
    # given today sold 3 + 2 of 5
    _, merchant, deal = _shop(stage, daily_cap=5)
    first, second = stage.buyer(), stage.buyer()
    stage.paid_order(first, deal, 3)
    moved = stage.paid_order(second, deal, 2)
    # when the merchant cuts today's cap to 3 (the circuit breaker trips)
    r = stage.client.put(f"/api/v1/deals/{deal}/capacity", headers=merchant,
                         json={"service_date": _day(0), "cap": 3, "reason": "one cook only"})
    assert r.status_code == 200, r.text
    # then only today stops selling, with the reason on the calendar; the newest order went to tomorrow
    assert stage.client.get(f"/api/v1/deals/{deal}").json()["status"] == "published"
    assert stage.order(stage.buyer(), deal, 1).json()["code"] == "not_on_sale"
    cal = _calendar(stage, deal)
    assert cal[_day(0)]["paused"]["reason"] == "circuit breaker: one cook only" and cal[_day(0)]["status"] == "delisted"
    days = stage.client.get(f"/api/v1/deals/{deal}/daily-caps", headers=merchant, params={"days": 2}).json()["items"]
    assert [bool(d["paused"]) for d in days] == [True, False]  # the merchant's calendar says why, per date
    assert stage.client.get(f"/api/v1/orders/{moved['id']}", headers=second).json()["service_date"] == _day(1)
    # and tomorrow, where the moved buyer was sent, still sells
    late = stage.order(stage.buyer(), deal, 1, service_date=_day(1))
    assert late.status_code == 201, late.text
    # the moved buyer may pick another date in the breaker's window, at once (agreed in advance)
    options = stage.client.get(f"/api/v1/orders/{moved['id']}/redate-options", headers=second).json()
    assert options["pre_agreed"] is True and options["offer"]["origin"] == "breaker"
    assert (options["window_first"], options["window_last"]) == (_day(1), _day(7))
    r = _redate(stage, second, moved["id"], 3)
    assert r.status_code == 200 and r.json()["status"] == "applied", r.text
    assert (_sold(stage, deal, 1), _sold(stage, deal, 3)) == (0, 2)
    assert _redate(stage, second, moved["id"], 9).json()["code"] == "outside_window"
    # when capacity comes back, today reopens by itself
    r = stage.client.put(f"/api/v1/deals/{deal}/capacity", headers=stage.ops,
                         json={"service_date": _day(0), "cap": 5, "reason": "second cook came in"})
    assert r.status_code == 200, r.text
    assert _calendar(stage, deal)[_day(0)]["paused"] is None
    assert stage.order(stage.buyer(), deal, 1).status_code == 201


def test_a_medium_dispute_rebooks_the_order_on_a_date_the_buyer_picks_within_the_window(any_stage):
    stage = any_stage
    # given a paid booking for today that the merchant cannot serve today (medium: rebook within 3 days)
    _, merchant, deal = _shop(stage, daily_cap=4)
    buyer = stage.buyer()
    order = stage.paid_order(buyer, deal)
    r = stage.client.post("/api/v1/disputes", headers=merchant, json={
        "order_id": order["id"], "kind": "cannot_fulfil_today", "description": "no room free tonight"})
    assert r.status_code == 201, r.text
    rebook = r.json()["remedy"]["rebook"]
    assert (rebook["window_first"], rebook["window_last"]) == (_day(0), _day(3))
    # when the buyer picks day 2, it is booked at once: the unit leaves today and takes one on day 2
    assert _redate(stage, buyer, order["id"], 5).json()["code"] == "outside_window"
    r = _redate(stage, buyer, order["id"], 2)
    assert r.status_code == 200 and r.json()["status"] == "applied", r.text
    assert (_sold(stage, deal, 0), _sold(stage, deal, 2)) == (0, 1)
    assert stage.client.get(f"/api/v1/orders/{order['id']}", headers=buyer).json()["service_date"] == _day(2)
    # and the voucher is good on day 2, not before
    code = order["vouchers"][0]["code"]
    assert _redeem(stage, merchant, code).json()["code"] == "voucher_wrong_date"
    stage.clock.advance(timedelta(days=2))
    assert _redeem(stage, merchant, code).status_code == 200
