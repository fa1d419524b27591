"""A simulated day at a noodle shop, over HTTP with a settable clock: the 08:00 suggestion, sales,
the red-line warning at 10 left, sold out, a disruption at 15:00 that cuts the cap below what is
sold, delisting, buyer notices with coupons, and the hourly pushes in between."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from tuangou.core.db import UnitOfWork
from tuangou.core.outbox import OutboxEvent

# 07:00 in Shanghai on Monday 23 November 2026
DAWN = datetime(2026, 11, 22, 23, 0, tzinfo=UTC)


def local(hour: int, minute: int = 0) -> datetime:
    return DAWN + timedelta(hours=hour - 7, minutes=minute)


def inbox(stage, who, kind):
    return stage.client.get("/api/v1/inbox", headers=who, params={"kind": kind}).json()["items"]


def events(stage, type_):
    with UnitOfWork(stage.db, stage.clock) as uow:
        return [e.payload for e in uow.session.scalars(select(OutboxEvent).where(OutboxEvent.type == type_))]


def test_a_day_of_selling_with_a_disruption_at_three(stage):
    stage.clock.set(DAWN)
    _, merchant = stage.merchant("Lao Wang Noodles")
    store = stage.store(merchant)
    # given one wok of 5 bowls an hour over 10 hours: the store can serve 50 a day
    r = stage.client.put(f"/api/v1/stores/{store}/capacity-declaration", headers=merchant, json={
        "opens": "10:00", "closes": "20:00", "staff": 4, "per_staff_per_hour": 10,
        "machines": [{"name": "wok", "per_hour": 5}]})
    assert r.status_code == 200, r.text
    assert r.json()["bottleneck"] == {"cap": 50, "resource": "machine:wok"}
    # and a deal offering 60 a day: only 50 go on sale
    deal = stage.deal(merchant, store, daily_cap=60)
    today = "2026-11-23"
    cal = {b["key"]: b for b in stage.client.get(f"/api/v1/deals/{deal}/calendar").json()["items"]}
    assert cal[today]["cap"] == 50

    # 07:00: no suggestion yet
    stage.tick("governance")
    assert inbox(stage, merchant, "stock_suggestion") == []
    # 08:05: today's stock suggestion, once however often the job runs
    stage.clock.set(local(8, 5))
    stage.tick("capacity", "governance")
    stage.tick("governance")
    suggestions = inbox(stage, merchant, "stock_suggestion")
    assert len(suggestions) == 1
    assert suggestions[0]["title"].startswith("Today you can serve 50; you have 60 on sale")
    assert len(inbox(stage, merchant, "sales_push")) == 2  # 07:00 and 08:00

    # sales through the morning: ten buyers take 5 each; a push every hour
    buyers = [stage.buyer() for _ in range(10)]
    for i, buyer in enumerate(buyers):
        stage.clock.set(local(9 + i // 2, 10 + i))
        stage.tick("governance")
        stage.paid_order(buyer, deal, 5, service_date=today)
        warnings = inbox(stage, merchant, "red_line_warning")
        # the warning comes with the order that leaves 10, and only once
        assert len(warnings) == (1 if i >= 7 else 0), i
    assert warnings[0]["title"].startswith("10 more and you exceed")
    assert len(inbox(stage, merchant, "sold_out")) == 1
    late = stage.order(stage.buyer(), deal, 1, service_date=today)
    assert late.status_code == 409 and late.json()["code"] == "sold_out"
    stage.clock.set(local(14, 30))
    stage.tick("governance")
    stage.tick("governance")
    pushes = inbox(stage, merchant, "sales_push")
    assert len(pushes) == 8  # 07:00 .. 14:00, one an hour
    assert "[RED]" in pushes[0]["body"] and "sold 100%" in pushes[0]["body"]

    # 15:00: the chef goes home for the day; the store can serve half
    stage.clock.set(local(15))
    r = stage.client.post(f"/api/v1/stores/{store}/disruptions", headers=merchant, json={
        "kind": "chef_on_leave", "capacity_factor": 0.5, "ends_at": local(23, 59).isoformat(),
        "reason": "chef ill"})
    assert r.status_code == 201, r.text

    # then today stops selling at once, with the reason on the calendar; the deal stays on sale for other days
    assert stage.client.get(f"/api/v1/deals/{deal}", headers=merchant).json()["status"] == "published"
    assert stage.order(stage.buyer(), deal, 1, service_date=today).json()["code"] == "not_on_sale"
    # the five newest orders (25 bowls) move to tomorrow; today holds exactly the new cap
    cal = {b["key"]: b for b in stage.client.get(f"/api/v1/deals/{deal}/calendar").json()["items"]}
    assert (cal[today]["cap"], cal[today]["sold"]) == (25, 25)
    assert cal["2026-11-24"]["sold"] == 25 and cal["2026-11-24"]["cap"] == 50
    for i, buyer in enumerate(buyers):
        notices = inbox(stage, buyer, "oversale_compensation")
        order = stage.client.get("/api/v1/orders", headers=buyer).json()["items"][0]
        if i >= 5:
            assert len(notices) == 1 and notices[0]["data"]["new_date"] == "2026-11-24"
            assert notices[0]["data"]["coupon_cents"] == 500 and "¥5" in notices[0]["body"]
            assert order["service_date"] == "2026-11-24" and order["status"] == "paid"
        else:
            assert notices == [] and order["service_date"] == today
    coupons = events(stage, "CouponIssued")
    assert len(coupons) == 5 and {c["value"] for c in coupons} == {500}
    # the incident is on the merchant's record
    incidents = stage.client.get("/api/v1/oversale-incidents", headers=merchant).json()["items"]
    assert len(incidents) == 1 and incidents[0]["over"] == 25 and len(incidents[0]["orders"]) == 5
    violations = events(stage, "ViolationRecorded")
    assert [(v["kind"], v["ref"]) for v in violations] == [("oversale", f"incident:{incidents[0]['id']}")]
    assert cal[today]["paused"]["reason"].startswith("circuit breaker") and cal["2026-11-24"]["paused"] is None
    assert inbox(stage, merchant, "date_paused")
    # the job running again changes nothing
    stage.tick("capacity", "governance")
    assert len(stage.client.get("/api/v1/oversale-incidents", headers=stage.ops).json()["items"]) == 1
    assert len(events(stage, "CouponIssued")) == 5
