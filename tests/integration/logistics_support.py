"""Setting the stage for the logistics tests: a goods deal, paid orders, a carrier, signed events."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from tuangou.notify import rules as signing

PATTERN = "^SB[0-9]{10}$"


def goods_deal(stage: Any, merchant: dict[str, str], category: str = "fresh", price: int = 3900,
               stock: int = 100) -> int:
    store = stage.store(merchant, category=category)
    return int(stage.deal(merchant, store, kind="goods", stock=stock, price_cents=price,
                          original_price_cents=price * 2, daily_cap=None))


def carrier(stage: Any, code: str = "sandbox", first_scan_minutes: int | None = None) -> dict[str, Any]:
    r = stage.client.post("/api/v1/carriers", headers=stage.ops, json={
        "code": code, "name": code.title(), "tracking_pattern": PATTERN, "first_scan_minutes": first_scan_minutes,
        "reason": "test"})
    assert r.status_code == 201, r.text
    return dict(r.json())


def ship(stage: Any, merchant: dict[str, str], order_id: int, number: str, code: str = "sandbox",
         **extra: Any) -> Any:
    return stage.client.post(f"/api/v1/orders/{order_id}/shipments", headers=merchant,
                             json={"carrier": code, "tracking_number": number, **extra})


def event(number: str, event_id: str, kind: str, at: datetime, **extra: Any) -> dict[str, Any]:
    return {"event_id": event_id, "tracking_number": number, "kind": kind, "occurred_at": at.isoformat(), **extra}


def push(stage: Any, secret: str, events: list[dict[str, Any]], code: str = "sandbox", bulk: bool = True,
         signature: str | None = None) -> Any:
    body = json.dumps({"events": events} if bulk else events[0]).encode()
    sig = signature if signature is not None else signing.signature(secret, int(stage.clock.now().timestamp()), body)
    path = f"/api/v1/carriers/{code}/events" + ("/bulk" if bulk else "")
    return stage.client.post(path, content=body, headers={"content-type": "application/json",
                                                          "X-Tuangou-Signature": sig})


def shipping(stage: Any, headers: dict[str, str], order_id: int) -> dict[str, Any]:
    r = stage.client.get(f"/api/v1/orders/{order_id}/shipping", headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def later(stage: Any, **delta: float) -> None:
    stage.clock.advance(timedelta(**delta))
