"""Concurrent orders racing one window are decided exactly: N orders from one device with a limit of k,
exactly k pass, on SQLite, on PostgreSQL, and with the counters in Redis."""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections import Counter

import pytest
from sqlalchemy import select

from tests.integration.test_oversell_races import _setup
from tuangou.catalog import service as catalog
from tuangou.composition import compose
from tuangou.core.auth import Principal, Role
from tuangou.core.db import Database, UnitOfWork
from tuangou.core.errors import DomainError
from tuangou.orders import rules as order_rules
from tuangou.orders import service as orders
from tuangou.orders import signals
from tuangou.risk import service as risk
from tuangou.risk.models import RiskCounter

REDIS_URL = os.environ.get("TUANGOU_TEST_REDIS_URL")
KEY = "test-signal-key"


def _limit_devices(db: Database, clock, k: int) -> None:
    ops = Principal(1, Role.OPS)
    risk.update_policy(UnitOfWork(db, clock), ops, {"reject_orders": {"device": k, "buyer": 1000},
                                                    "hold_orders": {"device": 1000, "buyer": 1000},
                                                    "hold_accounts": {"device": 1000}}, "race test")


def _race(db: Database, clock, deal_id: int, buyers: list[Principal], device: str) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(len(buyers))
    sig = signals.signals(KEY, device=device)

    def buy(buyer: Principal) -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=10)
        try:
            order, _ = orders.place_order(UnitOfWork(db, clock), buyer, deal_id, 1, uuid.uuid4().hex, signals=sig)
            result = order.status
        except DomainError as exc:
            result = exc.code
        with lock:
            outcomes[result] += 1

    threads = [threading.Thread(target=buy, args=(b,)) for b in buyers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return outcomes


def test_n_concurrent_orders_from_one_device_with_a_limit_of_k_pass_exactly_k(any_db, clock):
    # given a device may place 3 orders in the window, and 12 accounts on it at the same instant
    deal_id, buyers = _setup(any_db, clock, buyers=12, daily_cap=100)
    _limit_devices(any_db, clock, 3)
    # when they all order at once
    outcomes = _race(any_db, clock, deal_id, buyers, "racing-phone")
    # then exactly 3 pass and 9 are refused, and only 3 units are held
    assert outcomes == Counter({order_rules.OrderStatus.RESERVED.value: 3, "risk_rejected": 9})
    with UnitOfWork(any_db, clock) as uow:
        assert sum(b.reserved for b in catalog.buckets_of(uow, deal_id)) == 3


@pytest.mark.skipif(not REDIS_URL, reason="TUANGOU_TEST_REDIS_URL not set")
def test_with_redis_counters_exactly_k_pass_and_no_database_statement_is_added(db, clock):
    # given the window counters in Redis
    compose(redis_url=REDIS_URL)
    try:
        deal_id, buyers = _setup(db, clock, buyers=10, daily_cap=100)
        _limit_devices(db, clock, 4)
        # when 10 accounts order at once from one (fresh) device
        outcomes = _race(db, clock, deal_id, buyers, f"redis-phone-{uuid.uuid4().hex}")
        # then exactly 4 pass
        assert outcomes == Counter({order_rules.OrderStatus.RESERVED.value: 4, "risk_rejected": 6})
        # and nothing was counted in the database
        with UnitOfWork(db, clock) as uow:
            assert uow.session.execute(select(RiskCounter)).first() is None
    finally:
        compose()
