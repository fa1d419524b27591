"""Shared fixtures: real databases (SQLite always, PostgreSQL when configured), a settable clock,
an HTTP client on the real app, and small helpers to set the stage."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tuangou.app import create_app
from tuangou.composition import compose
from tuangou.core.clock import SettableClock
from tuangou.core.config import Settings
from tuangou.core.db import Base, Database, scratch_postgres
from tuangou.core.registry import load_models
from tuangou.orders.gateway import SandboxGateway

load_models()
compose()  # the tests are a composition root too: services called directly see the same participants
PG_URL = os.environ.get("TUANGOU_TEST_POSTGRES_URL")
# 10:00 in Shanghai on a Monday
START = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
PASSWORD = "secret-pass-1"


def _fresh_postgres() -> tuple[str, Any]:
    assert PG_URL
    return scratch_postgres(PG_URL, "tg")


def make_database(kind: str, tmp_path: Any) -> tuple[Database, Any]:
    if kind == "sqlite":
        db = Database(f"sqlite:///{tmp_path}/test.db")
        Base.metadata.create_all(db.engine)
        return db, lambda: None
    url, drop = _fresh_postgres()
    db = Database(url, pool_size=40)
    Base.metadata.create_all(db.engine)
    return db, drop


def _kinds() -> list[Any]:
    pg = pytest.param("postgresql", marks=pytest.mark.postgres) if PG_URL else pytest.param(
        "postgresql", marks=pytest.mark.skip(reason="TUANGOU_TEST_POSTGRES_URL not set"))
    return ["sqlite", pg]


@pytest.fixture
def db(tmp_path: Any) -> Iterator[Database]:
    """SQLite only: for tests of behaviour, not of storage."""
    database, drop = make_database("sqlite", tmp_path)
    yield database
    database.dispose()
    drop()


@pytest.fixture(params=_kinds())
def any_db(request: Any, tmp_path: Any) -> Iterator[Database]:
    """Both databases: for storage and concurrency tests."""
    database, drop = make_database(request.param, tmp_path)
    yield database
    database.dispose()
    drop()


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(START)


@pytest.fixture
def gateway() -> SandboxGateway:
    return SandboxGateway()


class Stage:
    """An HTTP client on the real app plus helpers that set up accounts, stores and deals."""

    def __init__(self, client: TestClient, db: Database, clock: SettableClock, gateway: SandboxGateway) -> None:
        self.client, self.db, self.clock, self.gateway = client, db, clock, gateway
        self._n = 0
        from tuangou.accounts import service as accounts
        from tuangou.core.auth import Role
        from tuangou.core.db import UnitOfWork
        accounts.create_user(UnitOfWork(db, clock), None, "ops@test.tuangou", PASSWORD, Role.OPS, "Ops")
        self.ops = self.login("ops@test.tuangou")

    def _next(self) -> int:
        self._n += 1
        return self._n

    def login(self, email: str) -> dict[str, str]:
        r = self.client.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    def buyer(self) -> dict[str, str]:
        r = self.client.post("/api/v1/auth/signup", json={"email": f"buyer{self._next()}@test.tuangou",
                                                          "password": PASSWORD})
        assert r.status_code == 201, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    def merchant(self, name: str = "Shop") -> tuple[int, dict[str, str]]:
        email = f"m{self._next()}@test.tuangou"
        r = self.client.post("/api/v1/merchants", headers=self.ops,
                             json={"name": name, "owner_email": email, "owner_password": PASSWORD})
        assert r.status_code == 201, r.text
        return r.json()["id"], self.login(email)

    def store(self, merchant: dict[str, str], category: str = "catering", tz: str = "Asia/Shanghai") -> int:
        r = self.client.post("/api/v1/stores", headers=merchant, json={"name": "Store", "category": category,
                                                                        "timezone": tz})
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    def deal(self, merchant: dict[str, str], store_id: int, publish: bool = True, **terms: Any) -> int:
        body = {"title": "Deal", "kind": "voucher", "price_cents": 1000, "original_price_cents": 2000,
                "valid_from": (self.clock.now() - timedelta(hours=1)).isoformat(),
                "valid_until": (self.clock.now() + timedelta(days=30)).isoformat(), "daily_cap": 20, **terms}
        r = self.client.post(f"/api/v1/stores/{store_id}/deals", headers=merchant, json=body)
        assert r.status_code == 201, r.text
        deal_id = int(r.json()["id"])
        if publish:
            r = self.client.post(f"/api/v1/deals/{deal_id}/publish", headers=merchant)
            assert r.status_code == 200, r.text
        return deal_id

    def order(self, buyer: dict[str, str], deal_id: int, quantity: int = 1, key: str | None = None,
              **extra: Any) -> Any:
        return self.client.post("/api/v1/orders", headers={**buyer, "Idempotency-Key": key or uuid.uuid4().hex},
                                json={"deal_id": deal_id, "quantity": quantity, **extra})

    def paid_order(self, buyer: dict[str, str], deal_id: int, quantity: int = 1, **extra: Any) -> dict[str, Any]:
        r = self.order(buyer, deal_id, quantity, **extra)
        assert r.status_code == 201, r.text
        r = self.client.post(f"/api/v1/orders/{r.json()['id']}/pay", headers=buyer, json={"outcome": "succeed"})
        assert r.status_code == 200, r.text
        return dict(r.json())

    def tick(self, *only: str) -> dict[str, Any]:
        from tuangou.core.jobs import run_all
        return run_all(self.client.app.state.job_context, list(only) or None)  # type: ignore[attr-defined]


def make_stage(database: Database, clock: SettableClock, gateway: SandboxGateway, **extras: Any) -> Iterator[Stage]:
    settings = Settings(database_url=database.url, secret_key="test-secret")
    app = create_app(settings, clock=clock, db=database, gateway=gateway, extras=extras)
    with TestClient(app) as client:
        yield Stage(client, database, clock, gateway)


@pytest.fixture
def stage(db: Database, clock: SettableClock, gateway: SandboxGateway) -> Iterator[Stage]:
    yield from make_stage(db, clock, gateway)


@pytest.fixture
def any_stage(any_db: Database, clock: SettableClock, gateway: SandboxGateway) -> Iterator[Stage]:
    yield from make_stage(any_db, clock, gateway)
