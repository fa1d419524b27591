"""Helpers for campaign tests: staff accounts, a goods deal, a campaign, fast buyers for races."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.conftest import PASSWORD, Stage
from tuangou.accounts.models import User
from tuangou.core.auth import Principal, Role
from tuangou.core.db import Database, UnitOfWork


def staff(stage: Stage, role: str) -> tuple[int, dict[str, str]]:
    email = f"{role}{stage._next()}@test.tuangou"
    r = stage.client.post("/api/v1/users", headers=stage.ops,
                          json={"email": email, "password": PASSWORD, "role": role, "reason": "test"})
    assert r.status_code == 201, r.text
    return int(r.json()["id"]), stage.login(email)


def goods_deal(stage: Stage, merchant: dict[str, str], stock: int = 1000, price_cents: int = 1000) -> int:
    store = stage.store(merchant, category="fresh")
    return stage.deal(merchant, store, kind="goods", stock=stock, daily_cap=None, price_cents=price_cents,
                      original_price_cents=price_cents * 2)


def open_campaign(stage: Stage, merchant: dict[str, str], deal_id: int | None = None, **terms: Any) -> dict[str, Any]:
    now = stage.clock.now()
    body = {"deal_id": deal_id or goods_deal(stage, merchant), "threshold": 3, "max_size": 5,
            "deadline": (now + timedelta(hours=24)).isoformat(),
            "delivery_at": (now + timedelta(hours=72)).isoformat(), "pickup_point": "Building 3 lobby", **terms}
    r = stage.client.post("/api/v1/campaigns", headers=merchant, json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def join(stage: Stage, buyer: dict[str, str], campaign_id: int, key: str | None = None) -> Any:
    return stage.client.post(f"/api/v1/campaigns/{campaign_id}/join",
                             headers={**buyer, "Idempotency-Key": key or f"join-{stage._next()}"}, json={})


def join_and_pay(stage: Stage, buyer: dict[str, str], campaign_id: int) -> dict[str, Any]:
    r = join(stage, buyer, campaign_id)
    assert r.status_code == 201, r.text
    order_id = r.json()["order"]["id"]
    r = stage.client.post(f"/api/v1/orders/{order_id}/pay", headers=buyer, json={"outcome": "succeed"})
    assert r.status_code == 200, r.text
    return dict(r.json())


def fast_buyers(db: Database, n: int, start: int = 0) -> list[Principal]:
    """Buyers inserted directly (no password hashing) for race tests."""
    with UnitOfWork(db) as uow:
        users = [User(email=f"race{start + i}@test.tuangou", name="r", password_hash="x", role="buyer",
                      merchant_id=None, created_at=uow.now) for i in range(n)]
        uow.session.add_all(users)
        uow.commit()
        return [Principal(u.id, Role.BUYER) for u in users]


def campaign_of(stage: Stage, campaign_id: int) -> dict[str, Any]:
    r = stage.client.get(f"/api/v1/campaigns/{campaign_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())
