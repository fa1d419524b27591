"""A group that misses its threshold fails at the deadline and every participant is refunded,
through a refusing gateway and through a worker killed mid-way."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from tuangou.core import ledger
from tuangou.core.db import UnitOfWork
from tuangou.orders import service as orders
from tuangou.orders.models import Refund

from .campaign_stage import campaign_of, join, join_and_pay, open_campaign


def _failed_group(stage, paid: int):
    _, merchant = stage.merchant()
    camp = open_campaign(stage, merchant, threshold=paid + 1, max_size=paid + 5)
    buyers = [stage.buyer() for _ in range(paid)]
    orders_ = [join_and_pay(stage, b, camp["id"])["id"] for b in buyers]
    stage.clock.advance(timedelta(hours=24))
    return camp, buyers, orders_


def _assert_everyone_refunded_once(stage, order_ids, amount=1000):
    with UnitOfWork(stage.db) as uow:
        refunds = list(uow.session.scalars(select(Refund).where(Refund.order_id.in_(order_ids))))
        assert Counter(r.order_id for r in refunds) == Counter({o: 1 for o in order_ids})
        assert all(r.status == "succeeded" and r.amount_cents == amount for r in refunds)
        balances = ledger.balances(uow.session)
        assert ledger.total(uow.session) == 0
        assert balances.get(ledger.EXTERNAL_BUYERS, 0) == 0  # every yuan paid came back
        assert balances.get(ledger.ESCROW, 0) == 0
        assert balances.get(orders.REFUNDS_PAYABLE, 0) == 0
    assert len(stage.gateway._refunds) == len(order_ids)  # the gateway paid each refund once


def test_deadline_below_threshold_fails_and_refunds_everyone_through_a_refusing_gateway(stage):
    # given 3 paid participants of a group that needs 4
    camp, buyers, order_ids = _failed_group(stage, 3)
    unpaid = stage.buyer()
    # when the deadline passes and the gateway refuses two refunds before accepting
    stage.gateway.script("fail", "fail")
    stage.tick()
    # then the group failed, one refund went through and two wait for their retry
    assert campaign_of(stage, camp["id"])["status"] == "failed"
    assert join(stage, unpaid, camp["id"]).json()["code"] == "campaign_closed"
    with UnitOfWork(stage.db) as uow:
        assert sorted(uow.session.scalars(select(Refund.status))) == ["pending", "pending", "succeeded"]
    # when the backoff has passed
    stage.clock.advance(timedelta(seconds=30))
    stage.tick()
    stage.tick()
    # then everyone has their money back once and the campaign is refunded
    assert campaign_of(stage, camp["id"])["status"] == "refunded"
    _assert_everyone_refunded_once(stage, order_ids)
    for b in buyers:
        kinds = [m["kind"] for m in stage.client.get("/api/v1/inbox", headers=b).json()["items"]]
        assert "campaign_failed" in kinds and "refund_done" in kinds
    progress = stage.client.get("/api/v1/campaigns/participations", headers=buyers[0]).json()["items"][0]
    assert [s["step"] for s in progress["progress"]][-2:] == ["group_failed", "refunded"]
    assert all(s["done"] for s in progress["progress"])


class _KilledAfter:
    """A gateway whose worker dies after the gateway paid `n` refunds, before we record them."""

    def __init__(self, inner, n):
        self.inner, self.left = inner, n

    def refund(self, key, charge_ref, amount):
        result = self.inner.refund(key, charge_ref, amount)
        self.left -= 1
        if self.left < 0:
            raise SystemExit("worker killed")
        return result

    def charge(self, *a, **k):
        return self.inner.charge(*a, **k)

    def lookup(self, key):
        return self.inner.lookup(key)


def test_worker_killed_while_paying_refunds_pays_each_buyer_exactly_once(stage):
    camp, _, order_ids = _failed_group(stage, 4)
    stage.tick("campaigns")  # fails the group and books the refunds
    # when the worker dies right after the gateway paid the second refund
    with pytest.raises(SystemExit):
        orders.process_refunds(UnitOfWork(stage.db, stage.clock), _KilledAfter(stage.gateway, 1))
    # and a new worker runs later
    stage.clock.advance(timedelta(minutes=2))
    stage.tick()
    stage.tick()
    assert campaign_of(stage, camp["id"])["status"] == "refunded"
    _assert_everyone_refunded_once(stage, order_ids)


def test_worker_killed_while_booking_refunds_books_the_rest_on_restart(stage, monkeypatch):
    camp, _, order_ids = _failed_group(stage, 4)
    real = orders.refund_in_uow
    calls = {"n": 0}

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise SystemExit("worker killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(orders, "refund_in_uow", dying)
    with pytest.raises(SystemExit):
        from tuangou.campaigns import lifecycle
        lifecycle.fail_expired(UnitOfWork(stage.db, stage.clock))
        lifecycle.book_failure_refunds(UnitOfWork(stage.db, stage.clock))
    with UnitOfWork(stage.db) as uow:
        assert len(list(uow.session.scalars(select(Refund.id)))) == 2  # two booked before the crash
    monkeypatch.setattr(orders, "refund_in_uow", real)
    stage.tick()
    stage.tick()
    assert campaign_of(stage, camp["id"])["status"] == "refunded"
    _assert_everyone_refunded_once(stage, order_ids)


def test_a_reservation_paid_after_the_group_failed_is_refunded_at_once(stage):
    _, merchant = stage.merchant()
    camp = open_campaign(stage, merchant, threshold=2)
    assert join(stage, stage.buyer(), camp["id"]).status_code == 201
    stage.clock.advance(timedelta(hours=24) - timedelta(minutes=5))
    late_buyer = stage.buyer()
    late_order = join(stage, late_buyer, camp["id"]).json()["order"]
    stage.clock.advance(timedelta(minutes=6))
    stage.tick("campaigns")
    assert campaign_of(stage, camp["id"])["status"] == "failed"
    # the reservation made 6 minutes ago is still payable; the payment is refunded in the same step
    paid = stage.client.post(f"/api/v1/orders/{late_order['id']}/pay", headers=late_buyer,
                             json={"outcome": "succeed"})
    assert paid.status_code == 409 and paid.json()["code"] == "campaign_entry_closed"
    stage.clock.advance(timedelta(minutes=20))
    stage.tick()
    stage.tick()
    assert campaign_of(stage, camp["id"])["status"] == "refunded"
    _assert_everyone_refunded_once(stage, [late_order["id"]])
