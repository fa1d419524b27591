"""The capacity refresh job recomputes only the deals whose caps time may have moved: a disruption that ended by
itself, the store's midnight, or a policy change. Input changes recompute at once and need no tick."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from tuangou.capacity import service as capacity
from tuangou.core.db import UnitOfWork
from tuangou.core.outbox import OutboxEvent

DAWN = datetime(2026, 11, 22, 23, 0, tzinfo=UTC)  # 07:00 in Shanghai, Monday 23 November 2026
TODAY = "2026-11-23"


def local(hour: int, minute: int = 0, days: int = 0) -> datetime:
    return DAWN + timedelta(days=days, hours=hour - 7, minutes=minute)


def cap_changes(stage) -> int:
    with UnitOfWork(stage.db, stage.clock) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(OutboxEvent)
                                      .where(OutboxEvent.type == "CapacityChanged")) or 0)


def due(stage) -> list[int]:
    with UnitOfWork(stage.db, stage.clock) as uow:
        return capacity.due_for_refresh(uow, capacity.governed_deal_ids(uow))


def declared_deal(stage, declared: int, offered: int) -> tuple[dict[str, str], int]:
    """At dawn: a store that declares `declared` a day and a deal that offers `offered` a day in it."""
    stage.clock.set(DAWN)
    _, merchant = stage.merchant()
    store = stage.store(merchant)
    r = stage.client.put(f"/api/v1/stores/{store}/capacity-declaration", headers=merchant,
                         json={"max_reception_per_day": declared})
    assert r.status_code == 200, r.text
    return merchant, stage.deal(merchant, store, daily_cap=offered)


def cap_on(stage, deal: int, day: str) -> int:
    items = stage.client.get(f"/api/v1/deals/{deal}/calendar").json()["items"]
    return int({b["key"]: b for b in items}[day]["cap"])


def test_a_disruption_that_ends_by_itself_is_lifted_by_the_next_tick_and_nothing_else_is_redone(stage):
    # given a store that serves 40 a day, two deals offering 100, and ingredients for 12 until 15:00 today
    stage.clock.set(DAWN)
    _, merchant = stage.merchant()
    store = stage.store(merchant)
    stage.client.put(f"/api/v1/stores/{store}/capacity-declaration", headers=merchant,
                     json={"max_reception_per_day": 40})
    deals = [stage.deal(merchant, store, daily_cap=100) for _ in range(2)]
    r = stage.client.post(f"/api/v1/stores/{store}/disruptions", headers=merchant, json={
        "kind": "ingredients_short", "max_units": 12, "ends_at": local(15).isoformat(), "reason": "supplier late"})
    assert r.status_code in (200, 201), r.text
    assert [cap_on(stage, d, TODAY) for d in deals] == [12, 12]
    # when the worker ticks through the morning
    changes = cap_changes(stage)
    for hour in (8, 9, 12):
        stage.clock.set(local(hour))
        stage.tick("capacity")
    # then nothing was recomputed: the report already moved the caps, and time has changed nothing
    assert due(stage) == [] and cap_changes(stage) == changes
    # when 15:00 passes, the next tick brings today's cap back without anyone ending the disruption
    stage.clock.set(local(15, 1))
    assert due(stage) == deals
    stage.tick("capacity")
    assert [cap_on(stage, d, TODAY) for d in deals] == [40, 40]
    assert due(stage) == []
    # and at the store's midnight every deal is due again (a new day enters the horizon)
    stage.clock.set(local(0, 1, days=1))
    assert due(stage) == deals


def test_a_policy_change_makes_every_deal_due_at_the_next_tick(stage):
    # given a deal whose cap the store's declared 40 holds below its offer of 100
    merchant, deal = declared_deal(stage, declared=40, offered=100)
    stage.tick("capacity")
    assert due(stage) == [] and cap_on(stage, deal, TODAY) == 40
    # when ops switch dynamic caps off
    r = stage.client.put("/api/v1/governance-policy", headers=stage.ops,
                         json={"changes": {"dynamic_daily_cap": False}, "reason": "a plain shop, for comparison"})
    assert r.status_code == 200, r.text
    # then the next tick recomputes the deal: its offer is its cap
    assert due(stage) == [deal]
    stage.tick("capacity")
    assert cap_on(stage, deal, TODAY) == 100


def _confirm_oversale(stage, buyer, order_id):
    d = stage.client.post("/api/v1/disputes", headers=buyer, json={"order_id": order_id, "kind": "cannot_fulfil"})
    assert d.status_code == 201, d.text
    r = stage.client.post(f"/api/v1/disputes/{d.json()['id']}/confirm", headers=stage.ops,
                          json={"reason": "no table when they came", "oversale": True})
    assert r.status_code == 200, r.text


def test_a_confirmed_over_sale_sets_the_capacity_the_store_really_served(stage):
    # given a store that declares 10 a day and sold 10 today, one unit to each of ten buyers
    merchant, deal = declared_deal(stage, declared=10, offered=10)
    buyers = [stage.buyer() for _ in range(10)]
    orders = [stage.paid_order(b, deal)["id"] for b in buyers]
    # when the last two buyers find no table and ops confirm both disputes as over-selling
    _confirm_oversale(stage, buyers[-1], orders[-1])
    _confirm_oversale(stage, buyers[-2], orders[-2])
    # then the deal's capacity is what the store served (8 a day), today and on the coming days
    assert cap_on(stage, deal, TODAY) == 8 and cap_on(stage, deal, "2026-11-25") == 8
    audits = stage.client.get("/api/v1/capacity-audits", headers=merchant, params={"deal_id": deal}).json()["items"]
    assert audits[0]["status"] == "approved" and audits[0]["approved_cap"] == 8
    assert audits[0]["bottleneck"] == "verified:served"
    notes = stage.client.get("/api/v1/inbox", headers=merchant, params={"kind": "capacity_verified"}).json()
    assert notes["items"][0]["title"].endswith("is now 8 a day")
    # and with the rule off (a plain shop), a confirmed over-sale leaves the declared capacity alone
    r = stage.client.put("/api/v1/governance-policy", headers=stage.ops,
                         json={"changes": {"verify_after_oversale": False}, "reason": "a plain shop"})
    assert r.status_code == 200, r.text
    _confirm_oversale(stage, buyers[-3], orders[-3])
    assert cap_on(stage, deal, "2026-11-25") == 8


def test_an_over_sale_on_a_slow_day_moves_the_capacity_halfway_not_to_that_days_demand(stage):
    # given a store that declares 10 a day and sold only 3 today
    merchant, deal = declared_deal(stage, declared=10, offered=10)
    buyers = [stage.buyer() for _ in range(3)]
    orders = [stage.paid_order(b, deal)["id"] for b in buyers]
    # when one of the three finds no table and ops confirm it as over-selling
    _confirm_oversale(stage, buyers[-1], orders[-1])
    # then the store has shown it falls short, not that it can serve only the 2 that stand: halfway, 6 a day
    assert cap_on(stage, deal, "2026-11-25") == 6
    audits = stage.client.get("/api/v1/capacity-audits", headers=merchant, params={"deal_id": deal}).json()["items"]
    assert audits[0]["approved_cap"] == 6 and audits[0]["bottleneck"] == "verified:served"
    # and a second upheld shortfall that day moves it halfway again, towards the one order left standing
    _confirm_oversale(stage, buyers[-2], orders[-2])
    assert cap_on(stage, deal, "2026-11-25") == 3
