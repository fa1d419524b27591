"""The governance switches a plain shop lacks (dynamic caps, breaker, pre-sale audit) are policy data, on by default."""

from __future__ import annotations

from datetime import timedelta

from tuangou.core.db import UnitOfWork
from tuangou.governance import service as governance

DECLARED_10 = {"opens": "10:00", "closes": "20:00", "max_reception_per_day": 10}


def _today(stage):
    return (stage.clock.now() + timedelta(hours=8)).date().isoformat()


def _cap(stage, deal):
    items = stage.client.get(f"/api/v1/deals/{deal}/calendar").json()["items"]
    return {b["key"]: b for b in items}[_today(stage)]["cap"]


def _switch(stage, **changes):
    r = stage.client.put("/api/v1/governance-policy", headers=stage.ops,
                         json={"changes": changes, "reason": "a plain shop, for comparison"})
    assert r.status_code == 200, r.text
    return r.json()


def test_the_switches_are_on_by_default_and_take_booleans_only(stage):
    _, merchant = stage.merchant()
    pol = stage.client.get("/api/v1/governance-policy", headers=merchant).json()
    assert (pol["dynamic_daily_cap"], pol["circuit_breaker"], pol["presale_audit"]) == (True, True, True)
    r = stage.client.put("/api/v1/governance-policy", headers=stage.ops,
                         json={"changes": {"circuit_breaker": 0}, "reason": "x"})
    assert r.status_code == 422


def test_without_dynamic_caps_the_merchants_offer_is_the_cap(stage):
    # given a store that declares 10 a day and a deal offering 30
    _, merchant = stage.merchant()
    store = stage.store(merchant)
    _switch(stage, dynamic_daily_cap=False)
    stage.client.put(f"/api/v1/stores/{store}/capacity-declaration", headers=merchant, json=DECLARED_10)
    deal = stage.deal(merchant, store, daily_cap=30)
    # then the cap stays at the offer; with the switch back on, capacity moves it to 10
    assert _cap(stage, deal) == 30
    _switch(stage, dynamic_daily_cap=True)
    stage.client.put(f"/api/v1/stores/{store}/capacity-declaration", headers=merchant, json=DECLARED_10)
    assert _cap(stage, deal) == 10


def test_without_the_breaker_a_lower_cap_leaves_the_paid_orders_in_place(stage):
    # given a deal of 10 with 6 paid and the breaker off
    _, merchant = stage.merchant()
    store = stage.store(merchant)
    deal = stage.deal(merchant, store, daily_cap=10)
    buyer = stage.buyer()
    orders = [stage.paid_order(buyer, deal)["id"] for _ in range(6)]
    _switch(stage, circuit_breaker=False)
    # when the chef goes home (2 more at most today)
    r = stage.client.post(f"/api/v1/stores/{store}/disruptions", headers=merchant,
                          json={"kind": "chef_on_leave", "max_units": 2, "reason": "chef ill"})
    assert r.status_code in (200, 201), r.text
    # then the cap falls, but no incident is recorded and no order moves
    assert _cap(stage, deal) == 2
    with UnitOfWork(stage.db, stage.clock) as uow:
        assert all(governance.oversale_incident_for_order(uow, o) is None for o in orders)
    assert stage.client.get(f"/api/v1/deals/{deal}", headers=merchant).json()["status"] == "published"


def test_without_the_presale_audit_a_large_promotion_publishes(stage):
    _, merchant = stage.merchant()
    store = stage.store(merchant)
    deal = stage.deal(merchant, store, publish=False, daily_cap=100, large_promotion=True)
    assert stage.client.post(f"/api/v1/deals/{deal}/publish", headers=merchant).json()["code"] == \
        "capacity_audit_required"
    _switch(stage, presale_audit=False)
    assert stage.client.post(f"/api/v1/deals/{deal}/publish", headers=merchant).status_code == 200
