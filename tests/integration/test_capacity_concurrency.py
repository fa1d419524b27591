"""Storage and concurrency: one warning per crossing and sold <= cap under concurrent orders and
disruptions, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tuangou.capacity import service as capacity
from tuangou.catalog import service as catalog
from tuangou.core.auth import Principal, read_token
from tuangou.core.db import UnitOfWork
from tuangou.core.errors import DomainError
from tuangou.governance.models import RedLineWarning
from tuangou.orders import service as orders


def principal(stage, headers) -> Principal:
    return read_token(headers["Authorization"].split()[1], "test-secret", stage.clock.now())


def test_concurrent_orders_warn_once_and_never_pass_the_cap(any_stage):
    stage = any_stage
    _, merchant = stage.merchant()
    deal = stage.deal(merchant, stage.store(merchant), daily_cap=30)
    buyers = [principal(stage, stage.buyer()) for _ in range(8)]

    def buy(buyer: Principal) -> int:
        placed = 0
        for _ in range(6):
            try:
                orders.place_order(UnitOfWork(stage.db, stage.clock), buyer, deal, 1, uuid.uuid4().hex)
                placed += 1
            except DomainError as exc:
                assert exc.code == "sold_out"
        return placed

    with ThreadPoolExecutor(8) as pool:
        placed = sum(pool.map(buy, buyers))
    assert placed == 30
    with UnitOfWork(stage.db, stage.clock) as uow:
        warnings = sorted((w.kind, w.line) for w in uow.session.scalars(select(RedLineWarning)))
    assert warnings == [("red_line", 20), ("sold_out", 30)]
    inbox = stage.client.get("/api/v1/inbox", headers=merchant).json()["items"]
    assert [n["kind"] for n in inbox].count("red_line_warning") == 1


def test_disruptions_racing_orders_leave_sold_within_the_cap(any_stage):
    stage = any_stage
    _, merchant_h = stage.merchant()
    store = stage.store(merchant_h)
    deal = stage.deal(merchant_h, store, daily_cap=40)
    merchant = principal(stage, merchant_h)
    buyers = [principal(stage, stage.buyer()) for _ in range(6)]
    day = (stage.clock.now() + timedelta(hours=8)).date()

    def buy_and_pay(buyer: Principal) -> None:
        for _ in range(5):
            try:
                order, _ = orders.place_order(UnitOfWork(stage.db, stage.clock), buyer, deal, 2, uuid.uuid4().hex)
                orders.pay_order(UnitOfWork(stage.db, stage.clock), buyer, order.id, "", stage.gateway, "succeed")
            except DomainError:
                pass

    def disrupt(factor: float) -> None:
        capacity.report_disruption(UnitOfWork(stage.db, stage.clock), merchant, store, kind="other",
                                   capacity_factor=factor, max_units=None, starts_at=None, ends_at=None,
                                   deal_id=None, reason="race")

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(buy_and_pay, b) for b in buyers] + [pool.submit(disrupt, 0.7),
                                                                  pool.submit(disrupt, 0.6)]
        for f in futures:
            f.result()
    with UnitOfWork(stage.db, stage.clock) as uow:
        for b in catalog.buckets_of(uow, deal):
            assert b.sold + b.reserved <= b.cap, b
        today = next(b for b in catalog.buckets_of(uow, deal) if b.key == day.isoformat())
    assert today.cap == int(40 * 0.7 * 0.6)


steps = st.lists(st.one_of(st.tuples(st.just("buy"), st.integers(1, 4)),
                           st.tuples(st.just("disrupt"), st.sampled_from([0.0, 0.3, 0.5, 0.9])),
                           st.tuples(st.just("limit"), st.integers(0, 12)),
                           st.tuples(st.just("end"), st.just(0)),
                           st.tuples(st.just("cut"), st.integers(0, 15))), min_size=1, max_size=10)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=steps)
def test_no_sequence_of_orders_and_disruptions_leaves_sold_above_the_cap(stage, script):
    _, merchant_h = stage.merchant()
    store = stage.store(merchant_h)
    deal = stage.deal(merchant_h, store, daily_cap=12)
    merchant = principal(stage, merchant_h)
    buyer = principal(stage, stage.buyer())
    for kind, value in script:
        uow = UnitOfWork(stage.db, stage.clock)
        try:
            if kind == "buy":
                order, _ = orders.place_order(uow, buyer, deal, value, uuid.uuid4().hex)
                orders.pay_order(uow, buyer, order.id, "", stage.gateway, "succeed")
            elif kind in ("disrupt", "limit"):
                capacity.report_disruption(uow, merchant, store, kind="other",
                                           capacity_factor=value if kind == "disrupt" else 1.0,
                                           max_units=value if kind == "limit" else None, starts_at=None,
                                           ends_at=None, deal_id=None, reason="script")
            elif kind == "end":
                for d in capacity.list_disruptions(uow, merchant, store):
                    if d["ends_at"] is None:
                        capacity.end_disruption(uow, merchant, d["id"], "back")
            else:
                stage.client.put(f"/api/v1/deals/{deal}/capacity", headers=merchant_h,
                                 json={"service_date": (stage.clock.now() + timedelta(hours=8)).date().isoformat(),
                                       "cap": value})
        except DomainError:
            pass
        with UnitOfWork(stage.db, stage.clock) as check:
            for b in catalog.buckets_of(check, deal):
                assert b.sold + b.reserved <= b.cap, (kind, value, b)
        stage.clock.advance(timedelta(minutes=1))
