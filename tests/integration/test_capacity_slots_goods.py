"""Every sellable unit is governed (A1, A4, E3): slotted deals (KTV rooms, restaurant seatings) and goods deals
(fresh fruit in a cold room) follow declared capacity, disruptions and the circuit breaker, and the 08:00
suggestion covers them. On both databases."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from tuangou.core.db import UnitOfWork
from tuangou.core.outbox import OutboxEvent

SLOTS = {"18:00": 10, "21:00": 10}


def calendar(stage, deal):
    return {b["key"]: b for b in stage.client.get(f"/api/v1/deals/{deal}/calendar").json()["items"]}


def inbox(stage, who, kind):
    return stage.client.get("/api/v1/inbox", headers=who, params={"kind": kind}).json()["items"]


def events(stage, type_):
    with UnitOfWork(stage.db, stage.clock) as uow:
        return [e.payload for e in uow.session.scalars(select(OutboxEvent).where(OutboxEvent.type == type_))]


def today(stage):
    return (stage.clock.now() + timedelta(hours=8)).date().isoformat()


def tomorrow(stage):
    return (stage.clock.now() + timedelta(hours=32)).date().isoformat()


def test_a_disruption_splits_the_days_capacity_over_the_slots_and_trips_the_breaker_past_it(any_stage):
    stage = any_stage
    # given a KTV with two seatings of 10 rooms tonight, and three rooms sold (two at 18:00, one at 21:00)
    _, merchant = stage.merchant("Party KTV")
    store = stage.store(merchant, category="entertainment")
    deal = stage.deal(merchant, store, daily_cap=None, slots=SLOTS)
    day = today(stage)
    buyers = [stage.buyer() for _ in range(3)]
    for buyer, slot in zip(buyers, ["18:00", "18:00", "21:00"], strict=True):
        stage.paid_order(buyer, deal, 1, service_date=day, slot=slot)
    # when half the rooms are out of order tonight: 10 rooms for the evening
    r = stage.client.post(f"/api/v1/stores/{store}/disruptions", headers=merchant, json={
        "kind": "machine_broken", "capacity_factor": 0.5, "ends_at": (stage.clock.now() + timedelta(hours=14))
        .isoformat(), "reason": "air conditioning down in one wing"})
    assert r.status_code == 201, r.text
    # then the day's 10 are split over the seatings, each keeping what it sold, never above the merchant's 10
    cal = calendar(stage, deal)
    early, late = cal[f"{day}@18:00"], cal[f"{day}@21:00"]
    assert early["cap"] + late["cap"] == 10 and early["cap"] <= 10 and late["cap"] <= 10
    assert early["cap"] >= 2 and late["cap"] >= 1
    assert stage.client.get(f"/api/v1/deals/{deal}", headers=merchant).json()["status"] == "published"
    # and tomorrow keeps the merchant's slot caps
    assert stage.order(stage.buyer(), deal, 10, service_date=tomorrow(stage), slot="18:00").status_code == 201
    # when the last rooms are lost too: one room for the evening, three sold
    r = stage.client.post(f"/api/v1/stores/{store}/disruptions", headers=merchant, json={
        "kind": "other", "max_units": 1, "ends_at": (stage.clock.now() + timedelta(hours=14)).isoformat(),
        "reason": "power cut"})
    assert r.status_code == 201, r.text
    # then the breaker trips: tonight stops selling (the deal stays published for its other dates), tonight holds
    # exactly one room, two buyers move and get ¥5
    assert stage.client.get(f"/api/v1/deals/{deal}", headers=merchant).json()["status"] == "published"
    cal = calendar(stage, deal)
    tonight = [cal[f"{day}@{s}"] for s in SLOTS]
    assert any((b["paused"] or {}).get("reason", "").startswith("circuit breaker") for b in tonight)
    assert sum(b["cap"] for b in tonight) == 1 and sum(b["sold"] for b in tonight) == 1
    notices = [n for b in buyers for n in inbox(stage, b, "oversale_compensation")]
    assert len(notices) == 2 and {n["data"]["coupon_cents"] for n in notices} == {500}
    incidents = stage.client.get("/api/v1/oversale-incidents", headers=merchant).json()["items"]
    assert sum(i["over"] for i in incidents) == 2
    assert len(events(stage, "CouponIssued")) == 2


def test_a_slotted_deal_gets_the_0800_suggestion_and_its_slots_follow_the_declared_reception(any_stage):
    stage = any_stage
    # given a restaurant that can receive 12 guests a day and two seatings of 10 on sale
    _, merchant = stage.merchant("Hot Pot")
    store = stage.store(merchant)
    assert stage.client.put(f"/api/v1/stores/{store}/capacity-declaration", headers=merchant,
                            json={"max_reception_per_day": 12}).status_code == 200
    deal = stage.deal(merchant, store, daily_cap=None, slots=SLOTS)
    day = today(stage)
    # then each day's seatings share the 12
    cal = calendar(stage, deal)
    assert cal[f"{day}@18:00"]["cap"] + cal[f"{day}@21:00"]["cap"] == 12
    # and a buyer cannot take more than the seating's share
    share = cal[f"{day}@18:00"]["cap"]
    r = stage.order(stage.buyer(), deal, share + 1, service_date=day, slot="18:00")
    assert r.status_code == 409 and r.json()["code"] in ("cap_exceeded", "sold_out")
    # when the 08:00 suggestion runs (10:00 now), the merchant hears what the day can serve
    stage.tick("governance")
    titles = [n["title"] for n in inbox(stage, merchant, "stock_suggestion")]
    assert titles == ["Today you can serve 12; you have 20 on sale: Deal"]


def test_fresh_goods_follow_the_cold_room_and_a_disruption_trips_the_breaker(any_stage):
    stage = any_stage
    # given a fruit shop whose cold room holds 100 jin, and 300 jin of strawberries put on sale
    _, merchant = stage.merchant("Guoyuan Fruit")
    store = stage.store(merchant, category="fresh")
    r = stage.client.put(f"/api/v1/stores/{store}/capacity-declaration", headers=merchant,
                         json={"storage_units": 100})
    assert r.status_code == 200, r.text
    deal = stage.deal(merchant, store, kind="goods", stock=300, daily_cap=None, title="Strawberries 1 jin")
    # then only what the cold room holds is on sale
    assert calendar(stage, deal)["stock"]["cap"] == 100
    buyers = [stage.buyer() for _ in range(4)]
    for buyer in buyers:
        stage.paid_order(buyer, deal, 20)
    # and the 08:00 suggestion covers the goods deal
    stage.tick("governance")
    titles = [n["title"] for n in inbox(stage, merchant, "stock_suggestion")]
    assert titles == ["Today you can hold 100; you have 300 on sale: Strawberries 1 jin"]
    # when half the cold room fails: 50 jin can be kept, 80 are sold
    r = stage.client.post(f"/api/v1/stores/{store}/disruptions", headers=merchant, json={
        "kind": "machine_broken", "capacity_factor": 0.5, "reason": "one compressor down"})
    assert r.status_code == 201, r.text
    # then the breaker trips: the stock stops selling, the newest 30 jin refunded with a ¥5 coupon each
    assert stage.client.get(f"/api/v1/deals/{deal}", headers=merchant).json()["status"] == "published"
    stock = calendar(stage, deal)["stock"]
    assert stock["paused"]["reason"].startswith("circuit breaker")
    assert (stock["cap"], stock["sold"]) == (50, 40)
    refunded = [n for b in buyers for n in inbox(stage, b, "oversale_compensation")]
    assert len(refunded) == 2 and all(n["data"]["refund_cents"] > 0 for n in refunded)
    # when the compressor is repaired, the cold room's 100 come back (the merchant's 300 stay the offer)
    dis = stage.client.get(f"/api/v1/stores/{store}/disruptions", headers=merchant).json()["items"][0]
    assert stage.client.post(f"/api/v1/disruptions/{dis['id']}/end", headers=merchant,
                             json={"reason": "repaired"}).status_code == 200
    stock = calendar(stage, deal)["stock"]
    assert stock["cap"] == 100 and stock["paused"] is None  # and it sells again by itself
