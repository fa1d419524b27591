"""Helpers for the risk tests: orders with signals, the policy, the queue."""

from __future__ import annotations

import uuid
from typing import Any


def order(stage: Any, buyer: dict[str, str], deal_id: int, *, device: str | None = None, quantity: int = 1,
          **body: Any) -> Any:
    headers = {**buyer, "Idempotency-Key": uuid.uuid4().hex}
    if device:
        headers["X-Device-Id"] = device
    return stage.client.post("/api/v1/orders", headers=headers, json={"deal_id": deal_id, "quantity": quantity,
                                                                      **body})


def policy(stage: Any, **changes: Any) -> dict[str, Any]:
    r = stage.client.put("/api/v1/risk/policy", headers=stage.ops, json={"changes": changes, "reason": "test"})
    assert r.status_code == 200, r.text
    return dict(r.json())


def cases(stage: Any, status: str = "open") -> list[dict[str, Any]]:
    r = stage.client.get("/api/v1/risk/cases", headers=stage.ops, params={"status": status})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def words(case: dict[str, Any]) -> list[str]:
    return [h["words"] for h in case["hits"]]


def shop(stage: Any, name: str = "Shop", **terms: Any) -> tuple[int, dict[str, str], int]:
    merchant_id, merchant = stage.merchant(name)
    deal = stage.deal(merchant, stage.store(merchant), title=name, **({"daily_cap": 100} | terms))
    return merchant_id, merchant, deal


def availability(stage: Any, deal_id: int) -> dict[str, Any]:
    """The deal's sold / reserved / remaining as the listing shows them."""
    r = stage.client.get("/api/v1/deals", params={"limit": 200})
    assert r.status_code == 200, r.text
    return dict(next(d for d in r.json()["items"] if d["id"] == deal_id)["availability"])
