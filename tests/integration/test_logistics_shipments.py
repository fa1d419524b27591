"""Shipments and carrier events: split shipments, bad input refused with nothing changed, signed bulk
events de-duplicated and converging whatever their order or source."""

from __future__ import annotations

from datetime import timedelta

from tests.integration.logistics_support import carrier, event, goods_deal, push, ship, shipping


def _paid_goods(stage, quantity=3, **kw):
    merchant_id, merchant = stage.merchant()
    deal = goods_deal(stage, merchant, **kw)
    buyer = stage.buyer()
    order = stage.paid_order(buyer, deal, quantity)
    return merchant_id, merchant, buyer, order, deal


def test_a_split_shipment_ships_the_order_and_delivery_follows_the_carrier(any_stage):
    # given a paid order of 3 units and a carrier
    stage = any_stage
    _, merchant, buyer, order, _ = _paid_goods(stage)
    c = carrier(stage)
    # when the merchant ships 2 units, then the last one from another parcel
    first = ship(stage, merchant, order["id"], "SB0000000001", units=2)
    assert first.status_code == 201, first.text
    assert shipping(stage, buyer, order["id"])["status"] == "partially_shipped"
    second = ship(stage, merchant, order["id"], "sb0000000002")
    assert second.status_code == 201 and second.json()["units"] == 1
    view = shipping(stage, buyer, order["id"])
    assert view["status"] == "shipped" and view["shipped_units"] == 3 and view["shipped_at"]
    # and the carrier reports both parcels signed for
    now = stage.clock.now()
    events = [event(n, f"{n}-{i}", k, now - timedelta(minutes=m)) for n in ("SB0000000001", "SB0000000002")
              for i, (k, m) in enumerate([("scan", 50), ("delivered", 5)])]
    r = push(stage, c["secret"], events)
    assert r.status_code == 200, r.text
    assert r.json() == {"received": 4, "stored": 4, "duplicates": 0, "shipments_updated": 2}
    # then the buyer sees the order delivered, with timestamps
    view = shipping(stage, buyer, order["id"])
    assert view["status"] == "delivered" and view["delivered_at"]
    assert {s["status"] for s in view["shipments"]} == {"delivered"}
    assert view["shipments"][0]["events"][0]["kind"] == "delivered"


def test_bad_shipments_are_refused_with_stable_codes_and_change_nothing(any_stage):
    stage = any_stage
    _, merchant, buyer, order, _ = _paid_goods(stage, quantity=2)
    carrier(stage)
    cases = [({"carrier": "nope", "tracking_number": "SB0000000001"}, 404, "unknown_carrier"),
             ({"carrier": "sandbox", "tracking_number": "12345"}, 422, "invalid_tracking_number"),
             ({"carrier": "sandbox", "tracking_number": "SB0000000001", "units": 3}, 422, "too_many_units"),
             ({"carrier": "sandbox", "tracking_number": "SB0000000001", "warehouse_id": 99}, 404, "unknown_warehouse")]
    for body, status, code in cases:
        r = stage.client.post(f"/api/v1/orders/{order['id']}/shipments", headers=merchant, json=body)
        assert (r.status_code, r.json()["code"]) == (status, code), r.text
        assert r.headers["content-type"].startswith("application/problem+json")
    assert shipping(stage, buyer, order["id"])["shipments"] == []
    # another merchant cannot ship it; a voucher order has nothing to ship
    _, other = stage.merchant("Other")
    assert ship(stage, other, order["id"], "SB0000000001").status_code == 404
    voucher_deal = stage.deal(other, stage.store(other))
    paid = stage.paid_order(stage.buyer(), voucher_deal)
    assert ship(stage, other, paid["id"], "SB0000000001").json()["code"] == "not_goods"


def test_events_are_signed_deduplicated_and_converge_in_any_order(any_stage):
    stage = any_stage
    _, merchant, buyer, order, _ = _paid_goods(stage, quantity=1)
    c = carrier(stage)
    assert ship(stage, merchant, order["id"], "SB0000000007").status_code == 201
    now = stage.clock.now()
    events = [event("SB0000000007", "e1", "scan", now - timedelta(hours=3), lat=39.9, lon=116.4),
              event("SB0000000007", "e2", "position", now - timedelta(hours=2), lat=39.5, lon=116.7),
              event("SB0000000007", "e3", "delivered", now - timedelta(hours=1))]
    # a bad signature, an unknown number, an event from the future: refused, nothing stored
    assert push(stage, "wrong-secret", events).json()["code"] == "bad_signature"
    unknown = push(stage, c["secret"], [*events, event("SB0000000999", "x", "scan", now)])
    assert (unknown.status_code, unknown.json()["code"]) == (422, "unknown_shipment")
    future = push(stage, c["secret"], [event("SB0000000007", "f", "scan", now + timedelta(hours=1))])
    assert future.json()["code"] == "invalid_events"
    twice = push(stage, c["secret"], [events[0], {**events[0], "kind": "delivered"}])
    assert (twice.status_code, twice.json()["code"]) == (422, "invalid_events")
    assert push(stage, c["secret"], events, code="ghost").json()["code"] == "unknown_carrier"
    assert shipping(stage, buyer, order["id"])["shipments"][0]["first_scan_at"] is None
    # the newest event first, alone; then the whole batch from a second source (an aggregator)
    assert push(stage, c["secret"], [events[2]], bulk=False).json()["stored"] == 1
    again = push(stage, c["secret"], list(reversed(events)))
    assert again.json() == {"received": 3, "stored": 2, "duplicates": 1, "shipments_updated": 1}
    assert push(stage, c["secret"], events).json()["duplicates"] == 3
    s = shipping(stage, buyer, order["id"])["shipments"][0]
    assert s["status"] == "delivered" and s["first_scan_at"].startswith((now - timedelta(hours=3)).isoformat()[:16])
    assert len(s["events"]) == 3
