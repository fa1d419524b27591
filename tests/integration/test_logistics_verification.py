"""Tracking-number verification, cold chain, emergency re-routing and seller performance."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.integration.disputes_support import assert_ledger_consistent
from tests.integration.logistics_support import carrier, event, goods_deal, later, push, ship, shipping
from tuangou.core.db import UnitOfWork
from tuangou.core.outbox import OutboxEvent
from tuangou.logistics import flags
from tuangou.logistics.models import Flag, Shipment
from tuangou.merchants.models import Violation


def _violations(db, kind):
    with UnitOfWork(db, readonly=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(Violation).where(Violation.kind == kind)) or 0)


def _flags(stage, **params):
    r = stage.client.get("/api/v1/shipment-flags", headers=stage.ops, params=params)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_a_reused_number_is_flagged_and_confirmed_fake_then_the_sla_makes_the_buyer_whole(any_stage):
    stage = any_stage
    merchant_id, merchant = stage.merchant()
    deal = goods_deal(stage, merchant)
    b1, b2 = stage.buyer(), stage.buyer()
    o1, o2 = stage.paid_order(b1, deal), stage.paid_order(b2, deal)
    carrier(stage)
    assert ship(stage, merchant, o1["id"], "SB0000000042").status_code == 201
    assert _flags(stage) == []
    # the same number on another buyer's order: flagged with an explanation
    assert ship(stage, merchant, o2["id"], "SB0000000042").status_code == 201
    [flag] = _flags(stage)
    assert flag["kind"] == "reused_number" and str(o1["id"]) in flag["explanation"]
    # ops confirm it: fake_shipment (-10), the merchant is told, the parcel no longer counts
    r = stage.client.post(f"/api/v1/shipment-flags/{flag['id']}/confirm", headers=stage.ops,
                          json={"reason": "one parcel cannot go to two addresses"})
    assert r.status_code == 200 and r.json()["status"] == "confirmed"
    again = stage.client.post(f"/api/v1/shipment-flags/{flag['id']}/dismiss", headers=stage.ops, json={"reason": "x"})
    assert again.json()["code"] == "flag_decided"
    assert _violations(stage.db, "fake_shipment") == 1
    standing = stage.client.get(f"/api/v1/merchants/{merchant_id}/standing", headers=merchant).json()
    assert standing["scores"]["fresh"] == 90
    assert shipping(stage, b2, o2["id"])["status"] == "awaiting_shipment"
    # nothing real ships: past the deadline the platform cancels and compensates
    later(stage, hours=49)
    stage.tick("logistics")
    assert shipping(stage, b2, o2["id"])["status"] == "cancelled"
    assert shipping(stage, b1, o1["id"])["status"] == "shipped"
    assert_ledger_consistent(stage.db)


def test_no_first_scan_and_a_far_first_scan_are_flagged(any_stage):
    stage = any_stage
    _, merchant = stage.merchant()
    deal = goods_deal(stage, merchant)
    buyer = stage.buyer()
    o1, o2 = stage.paid_order(buyer, deal), stage.paid_order(buyer, deal)
    c = carrier(stage)
    wh = stage.client.post("/api/v1/warehouses", headers=merchant, json={"code": "BJ1", "name": "Beijing",
                                                                         "lat": 39.9, "lon": 116.4}).json()
    ship(stage, merchant, o1["id"], "SB0000000001", warehouse_id=wh["id"])
    ship(stage, merchant, o2["id"], "SB0000000002", warehouse_id=wh["id"])
    # the second parcel is first scanned in Shanghai, 1,000 km away
    push(stage, c["secret"], [event("SB0000000002", "1", "scan", stage.clock.now(), lat=31.2, lon=121.5)])
    stage.tick("logistics")
    assert [f["kind"] for f in _flags(stage)] == ["far_first_scan"]
    later(stage, hours=25)
    stage.tick("logistics")
    kinds = sorted(f["kind"] for f in _flags(stage))
    assert kinds == ["far_first_scan", "no_first_scan"]
    stage.tick("logistics")
    assert len(_flags(stage)) == 2  # each parcel is checked once


def _cold_order(stage, backup_stock):
    merchant_id, merchant = stage.merchant()
    deal = goods_deal(stage, merchant)
    buyer = stage.buyer()
    order = stage.paid_order(buyer, deal, 2)
    c = carrier(stage, "sandbox")
    assert stage.client.put(f"/api/v1/deals/{deal}/temperature-range", headers=merchant,
                            json={"min_c": 0, "max_c": 6}).status_code == 200
    home = stage.client.post("/api/v1/warehouses", headers=merchant, json={"code": "A", "name": "A"}).json()
    backup = stage.client.post("/api/v1/warehouses", headers=merchant, json={"code": "B", "name": "B"}).json()
    stage.client.put(f"/api/v1/warehouses/{backup['id']}/stock/{deal}", headers=merchant, json={"units": backup_stock})
    stage.client.put("/api/v1/emergency-plan", headers=merchant, json={"backup_warehouse_ids": [backup["id"]]})
    s = ship(stage, merchant, order["id"], "SB0000000005", warehouse_id=home["id"]).json()
    return merchant, buyer, order, c, s


def test_a_temperature_excursion_is_replenished_from_the_backup_warehouse(any_stage):
    stage = any_stage
    merchant, buyer, order, c, s = _cold_order(stage, backup_stock=5)
    r = stage.client.post(f"/api/v1/shipments/{s['id']}/simulate", headers=merchant, json={"scenario": "cold_excursion"})
    assert r.status_code == 200, r.text
    assert shipping(stage, buyer, order["id"])["shipments"][0]["status"] == "excursion"
    assert stage.tick("logistics")["logistics"]["cold_chain"] == {"replaced": 1, "refunded": 0}
    assert stage.tick("logistics")["logistics"]["cold_chain"] == {"replaced": 0, "refunded": 0}
    old, new = shipping(stage, buyer, order["id"])["shipments"]
    assert (old["status"], new["status"], new["replaces_id"], new["units"]) == ("replaced", "label_pending", old["id"], 2)
    labelled = stage.client.post(f"/api/v1/shipments/{new['id']}/label", headers=merchant,
                                 json={"tracking_number": "SB0000000006"})
    assert labelled.status_code == 200 and labelled.json()["status"] == "awaiting_scan"


def test_an_excursion_nobody_can_replace_is_refunded_and_compensated(any_stage):
    stage = any_stage
    merchant, buyer, order, c, s = _cold_order(stage, backup_stock=1)
    push(stage, c["secret"], [event("SB0000000005", "t1", "temperature", stage.clock.now(), temperature_c=14.0)])
    assert stage.tick("logistics")["logistics"]["cold_chain"] == {"replaced": 0, "refunded": 1}
    view = shipping(stage, buyer, order["id"])
    assert view["compensation_cents"] == 2340  # 30 % of 2 x 39.00
    assert stage.client.get(f"/api/v1/orders/{order['id']}", headers=buyer).json()["status"] == "refunded"
    assert_ledger_consistent(stage.db)


def test_a_carrier_outage_reroutes_waiting_parcels_and_the_buyer_chooses(any_stage):
    stage = any_stage
    _, merchant = stage.merchant()
    deal = goods_deal(stage, merchant)
    buyer = stage.buyer()
    order = stage.paid_order(buyer, deal)
    carrier(stage, "sandbox")
    carrier(stage, "sandbox2")
    stage.client.put("/api/v1/emergency-plan", headers=merchant, json={"backup_carrier": "sandbox2"})
    s = ship(stage, merchant, order["id"], "SB0000000009").json()
    r = stage.client.post("/api/v1/logistics-exceptions", headers=merchant, json={
        "kind": "carrier_outage", "description": "sandbox cannot pick up", "carrier": "sandbox",
        "evidence": [{"kind": "carrier_statement", "note": "system down"}],
        "until": (stage.clock.now() + timedelta(hours=6)).isoformat()})
    assert r.status_code == 201, r.text
    ok = stage.client.post(f"/api/v1/logistics-exceptions/{r.json()['id']}/accept", headers=stage.ops,
                           json={"reason": "outage confirmed by the carrier"})
    assert ok.json()["rerouted"] == 1
    old, new = shipping(stage, buyer, order["id"])["shipments"]
    assert (old["id"], old["status"], new["carrier"]) == (s["id"], "rerouted", "sandbox2")
    assert ship(stage, merchant, order["id"], "SB0000000010").json()["code"] in ("carrier_down", "too_many_units")
    chosen = stage.client.post(f"/api/v1/shipments/{new['id']}/choice", headers=buyer, json={"choice": "coupon"})
    assert chosen.status_code == 200 and chosen.json()["coupon"]["value"] == 1000
    twice = stage.client.post(f"/api/v1/shipments/{new['id']}/choice", headers=buyer, json={"choice": "upgrade"})
    assert twice.json()["code"] == "already_chosen"
    assert_ledger_consistent(stage.db)


def test_performance_rates_show_the_orders_behind_each_number(any_stage):
    stage = any_stage
    merchant_id, merchant = stage.merchant()
    deal = goods_deal(stage, merchant)
    buyer = stage.buyer()
    on_time, late, never = (stage.paid_order(buyer, deal) for _ in range(3))
    c = carrier(stage)
    ship(stage, merchant, on_time["id"], "SB0000000001")
    push(stage, c["secret"], [event("SB0000000001", "1", "scan", stage.clock.now())])
    stage.tick("logistics")
    later(stage, hours=47)
    stage.tick("logistics")
    later(stage, hours=2)
    ship(stage, merchant, late["id"], "SB0000000002")
    stage.tick("logistics")  # `never` is cancelled now
    r = stage.client.get(f"/api/v1/merchants/{merchant_id}/shipping-performance", headers=merchant)
    assert r.status_code == 200, r.text
    rates = {m["metric"]: m for m in r.json()["windows"]["7d"]}
    assert rates["late_shipment_rate"]["order_ids"] == sorted([late["id"], never["id"]])
    assert rates["pre_fulfilment_cancel_rate"]["order_ids"] == [never["id"]]
    assert rates["pre_fulfilment_cancel_rate"]["ok"] is False
    assert rates["valid_tracking_rate"]["rate_bps"] == 10000
    assert "fresh" in r.json()["by_category"]
    _, other = stage.merchant("Other")
    assert stage.client.get(f"/api/v1/merchants/{merchant_id}/shipping-performance", headers=other).status_code == 403
    later(stage, days=1)  # the next day's tick warns about each rate off target, once
    stage.tick("logistics")
    stage.tick("logistics")
    warnings = stage.client.get("/api/v1/inbox?kind=performance_warning", headers=merchant).json()["items"]
    # the late parcel has not been scanned in 24 h either
    assert {w["data"]["metric"] for w in warnings} == {"late_shipment_rate", "pre_fulfilment_cancel_rate",
                                                        "order_defect_rate", "valid_tracking_rate"}
    assert len(warnings) == 12  # three windows each


def _unscanned_parcels(stage, n):
    _, merchant = stage.merchant()
    deal = goods_deal(stage, merchant)
    buyer = stage.buyer()
    carrier(stage)
    for i in range(n):
        assert ship(stage, merchant, stage.paid_order(buyer, deal)["id"], f"SB{i + 1:010d}").status_code == 201


def _count(db, model, *where):
    with UnitOfWork(db, readonly=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_two_workers_checking_first_scans_flag_each_parcel_once(any_stage):
    stage = any_stage
    # given 12 parcels nobody scanned, a day later
    _unscanned_parcels(stage, 12)
    later(stage, hours=25)
    results, barrier = [], threading.Barrier(2)

    def worker():
        barrier.wait()
        results.append(flags.check_first_scans(UnitOfWork(stage.db, stage.clock), batch=5))
    # when two workers check the first scans at the same time
    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    # then each parcel has one flag, told once, and every parcel is checked
    assert len(results) == 2 and sum(r["flagged"] for r in results) == 12
    assert _count(stage.db, Flag, Flag.kind == "no_first_scan") == 12
    assert _count(stage.db, OutboxEvent, OutboxEvent.type == "ShipmentFlagged") == 12
    assert _count(stage.db, Shipment, Shipment.scan_checked.is_(False)) == 0


def test_a_worker_killed_mid_check_leaves_nothing_and_the_next_one_flags_all(any_stage, monkeypatch):
    stage = any_stage
    _unscanned_parcels(stage, 3)
    later(stage, hours=25)
    real = flags.notify.notify_ops

    def die(*args, **kwargs):
        raise SystemExit("worker killed")
    # when the worker dies after writing the flags, before its commit
    monkeypatch.setattr(flags.notify, "notify_ops", die)
    with pytest.raises(SystemExit):
        flags.check_first_scans(UnitOfWork(stage.db, stage.clock))
    # then nothing was kept, and the next tick flags every parcel once
    assert _count(stage.db, Flag) == 0 and _count(stage.db, Shipment, Shipment.scan_checked.is_(True)) == 0
    monkeypatch.setattr(flags.notify, "notify_ops", real)
    assert stage.tick("logistics")["logistics"]["scans"]["flagged"] == 3
    assert _count(stage.db, Flag) == 3
    inbox = stage.client.get("/api/v1/inbox", headers=stage.ops, params={"kind": "shipment_flagged"}).json()["items"]
    assert [i["title"] for i in inbox] == ["3 suspected fake shipments to review"]
