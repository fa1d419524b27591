"""The intake cap counts orders that stand: an unpaid hold that expires or is cancelled gives its unit back
(once, however often the expiry runs), so expired holds never shut a limited merchant (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from tuangou.accounts import service as accounts
from tuangou.core.auth import Principal, Role
from tuangou.core.db import UnitOfWork
from tuangou.merchants import service as merchants
from tuangou.merchants.models import IntakeCounter
from tuangou.orders import service as orders
from tuangou.orders import views
from tuangou.orders.participants import registry


def limited_shop(stage, cap=3):
    stage.client.put("/api/v1/accountability-policy", headers=stage.ops,
                     json={"changes": {"limited_daily_intake": cap}, "reason": "a small cap keeps the test quick"})
    merchant_id, headers = stage.merchant("Berry Farm")
    deal = stage.deal(headers, stage.store(headers, "fresh"), title="Strawberries", daily_cap=100)
    uow = UnitOfWork(stage.db, stage.clock)
    with uow:
        for n in range(3):  # three fresh over-sales: 76 < 80, limited
            merchants.record_violation(uow, merchant_id=merchant_id, category="fresh", kind="oversale",
                                       ref=f"incident:{n}", reason="over-sold")
        uow.commit()
    return merchant_id, deal


def buyer(stage, n):
    return Principal(accounts.sign_up_buyer(UnitOfWork(stage.db, stage.clock), f"i{n}@test.tuangou",
                                            "secret-pass-1").id, Role.BUYER)


def place(stage, who, deal, key):
    return orders.place_order(UnitOfWork(stage.db, stage.clock), who, deal, 1, key)[0]


def counted(stage, merchant_id):
    uow = UnitOfWork(stage.db, stage.clock, readonly=True)
    with uow:
        return sum(uow.session.scalars(select(IntakeCounter.orders).where(IntakeCounter.merchant_id == merchant_id)))


def test_expired_and_cancelled_holds_never_shut_a_limited_merchant(any_stage):
    # given a limited merchant (3 orders a day) whose three buyers hold without paying
    stage = any_stage
    merchant_id, deal = limited_shop(stage)
    holders = [buyer(stage, n) for n in range(3)]
    held = [place(stage, b, deal, f"hold-{b.user_id}") for b in holders]
    late = buyer(stage, 9)
    refused = stage.client.post("/api/v1/orders", headers={**stage.login("i9@test.tuangou"), "Idempotency-Key": "x"},
                                json={"deal_id": deal, "quantity": 1})
    assert refused.status_code == 409 and refused.json()["code"] == "intake_limit"
    # when one buyer cancels and the other two holds expire
    orders.cancel_order(UnitOfWork(stage.db, stage.clock), holders[0], held[0].id)
    stage.clock.advance(timedelta(hours=1))
    assert orders.expire_due(UnitOfWork(stage.db, stage.clock)) == 2
    # then their units are back: the counter stands at zero and three new orders are taken
    assert counted(stage, merchant_id) == 0
    taken = [place(stage, b, deal, f"again-{b.user_id}") for b in [late, *holders[1:]]]
    assert len(taken) == 3 and counted(stage, merchant_id) == 3


def test_an_expiry_processed_twice_gives_the_unit_back_once(any_stage):
    # given a limited merchant (2 a day) with one hold that will expire and one paid order
    stage = any_stage
    merchant_id, deal = limited_shop(stage, cap=2)
    first = buyer(stage, 1)
    hold = place(stage, first, deal, "hold")
    stage.clock.advance(timedelta(minutes=5))
    b = stage.buyer()
    stage.paid_order(b, deal)
    assert counted(stage, merchant_id) == 2
    # when the hold expires, and its end is processed again (a second worker, a retried tick)
    stage.clock.advance(timedelta(minutes=14))
    assert orders.expire_due(UnitOfWork(stage.db, stage.clock)) == 1
    assert orders.expire_due(UnitOfWork(stage.db, stage.clock)) == 0
    uow = UnitOfWork(stage.db, stage.clock)
    with uow:
        snap = views.snapshot_of(views.own_order(uow, Principal(0, Role.OPS), hold.id))
        intake = next(p for p in registry.items if p.name == "merchants.intake")
        assert intake.wants_ended(snap)
        intake.on_ended(uow, snap)
        uow.commit()
    # then exactly one unit came back: the paid order still counts
    assert counted(stage, merchant_id) == 1
