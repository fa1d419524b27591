"""Group commit of a deal's concurrent placements (core/combining.py, orders/placing.py): a group is
written whole or not at all, never past the cap, and concurrent buyers on both databases get exactly what
a one-by-one run would give them."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from tests.integration.test_oversell_races import TODAY, _counters, _race, _setup
from tuangou.core.combining import ALONE
from tuangou.core.db import UnitOfWork
from tuangou.orders import placing
from tuangou.orders import service as orders
from tuangou.orders.models import Order


def _decided(db, clock, monkeypatch, deal_id, buyers, qty=1):
    """Each buyer's order decided (snapshot, plan) but not written yet, as the group's leader receives them."""
    captured = []
    monkeypatch.setattr(placing, "_write", lambda uow, placement: captured.append(placement))
    for n, buyer in enumerate(buyers):
        orders.place_order(UnitOfWork(db, clock), buyer, deal_id, qty, f"group-{n}")
    monkeypatch.undo()
    return captured


def _orders(db) -> int:
    with UnitOfWork(db) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(Order)))


def test_a_group_is_written_in_one_transaction_with_one_hold_of_its_sum(any_db, clock, monkeypatch):
    # given three buyers' orders decided on a deal with 5 units today
    deal_id, buyers = _setup(any_db, clock, buyers=3, daily_cap=5)
    group = _decided(any_db, clock, monkeypatch, deal_id, buyers)

    # when the group is written together
    answers = placing._apply_together(UnitOfWork(any_db, clock), group)

    # then each buyer has its own reserved order and the bucket holds the three units
    assert [a[0].buyer_id for a in answers] == [b.user_id for b in buyers]
    assert len({a[0].id for a in answers}) == 3 and not any(a[1] for a in answers)
    assert _counters(any_db, deal_id) == [(TODAY, 5, 0, 3)]
    assert _orders(any_db) == 3


def test_a_group_whose_sum_does_not_fit_writes_nothing_and_each_runs_alone(any_db, clock, monkeypatch):
    # given 3 units decided for by 4 buyers (each decision saw units left)
    deal_id, buyers = _setup(any_db, clock, buyers=4, daily_cap=3)
    group = _decided(any_db, clock, monkeypatch, deal_id, buyers)

    # when the group is written together
    answers = placing._apply_together(UnitOfWork(any_db, clock), group)

    # then nothing was written and every member is told to run alone (where 3 win and 1 is sold out)
    assert answers == [ALONE] * 4
    assert _counters(any_db, deal_id) == [(TODAY, 3, 0, 0)]
    assert _orders(any_db) == 0


def test_a_group_with_a_reused_key_runs_apart(any_db, clock, monkeypatch):
    # given two decisions of the same buyer under the same key
    deal_id, buyers = _setup(any_db, clock, buyers=1, daily_cap=5)
    twice = _decided(any_db, clock, monkeypatch, deal_id, buyers) * 2

    # when written together, then nothing is written: alone, the second finds the first's order
    assert placing._apply_together(UnitOfWork(any_db, clock), twice) == [ALONE, ALONE]
    assert _orders(any_db) == 0


def test_many_buyers_at_once_never_oversell_and_paid_equals_sold(any_db, clock):
    # given 120 buyers racing for 40 units (groups form among the threads)
    deal_id, buyers = _setup(any_db, clock, buyers=120, daily_cap=40)

    # when they order and pay at once
    outcomes = _race(any_db, clock, deal_id, buyers, pay=True)

    # then exactly the cap was sold, once per winner
    assert outcomes == Counter({"ok": 40, "sold_out": 80})
    assert _counters(any_db, deal_id) == [(TODAY, 40, 40, 0)]


def _reserved_orders(db, clock, deal_id, buyers):
    from tuangou.orders import payments
    placed = [orders.place_order(UnitOfWork(db, clock), b, deal_id, 1, f"pay-group-{b.user_id}")[0] for b in buyers]
    with UnitOfWork(db, clock, readonly=True) as uow:
        return [payments._snapshot(uow.conn, o.id) for o in placed]


def test_a_group_of_captures_pays_every_order_and_moves_their_units_once(any_db, clock):
    from tuangou.orders import payments

    # given three reserved orders of one deal, their charges captured by the gateway
    deal_id, buyers = _setup(any_db, clock, buyers=3, daily_cap=5)
    snaps = _reserved_orders(any_db, clock, deal_id, buyers)
    group = [payments._Charge(s, f"key-{s.id}", f"ch-{s.id}") for s in snaps]

    # when they are recorded together
    answers = payments._capture_together(UnitOfWork(any_db, clock), group)

    # then each answer is its own order's, and the bucket shows three sold, none reserved
    assert [a["key"] for a in answers] == [f"key-{s.id}" for s in snaps]
    assert all(a["status"] == "succeeded" and len(a["vouchers"]) == 1 for a in answers)
    assert _counters(any_db, deal_id) == [(TODAY, 5, 3, 0)]
    with UnitOfWork(any_db) as uow:
        assert uow.session.scalar(select(func.count()).select_from(Order).where(Order.status == "paid")) == 3


def test_a_group_of_captures_with_an_order_no_longer_reserved_writes_nothing(any_db, clock):
    from tuangou.orders import payments

    # given two reserved orders, one of them captured twice in the same group (a retried charge)
    deal_id, buyers = _setup(any_db, clock, buyers=2, daily_cap=5)
    snaps = _reserved_orders(any_db, clock, deal_id, buyers)
    group = [payments._Charge(s, f"key-{s.id}", f"ch-{s.id}") for s in [*snaps, snaps[0]]]

    # when recorded together, then nothing is written and each runs alone
    assert payments._capture_together(UnitOfWork(any_db, clock), group) == [ALONE] * 3
    assert _counters(any_db, deal_id) == [(TODAY, 5, 0, 2)]
