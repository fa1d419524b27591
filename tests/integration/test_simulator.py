"""`tuangou simulate` in-process on a small world: every buyer accounted for, governance on harms fewer."""

from __future__ import annotations

import os

import pytest

from tuangou.simulator import rules, simulate

PG_URL = os.environ.get("TUANGOU_TEST_POSTGRES_URL")
DBS = ["sqlite", pytest.param("postgresql", marks=[pytest.mark.postgres, pytest.mark.skipif(
    not PG_URL, reason="TUANGOU_TEST_POSTGRES_URL not set")])]


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("db", DBS)
def test_every_paid_buyer_has_one_outcome_and_governance_harms_fewer(db, tmp_path):
    # given a small city replayed with governance on and off
    result = simulate.run(simulate.Options(stores=8, days=2, seed=3, db=db, postgres_url=PG_URL, out=tmp_path))
    on, off = result["on"], result["off"]
    for r in (on, off):
        # then every paid order has exactly one outcome, and the harmed are the three harmed classes
        assert sum(r["outcomes"].values()) == r["paid_orders"]
        assert r["harmed_buyers"] == sum(r["outcomes"][o.value] for o in rules.HARMED)
        assert r["oversold_units"] >= r["harmed_buyers"]
        assert r["orders"] == r["paid_orders"] + r["unpaid_orders"]
        assert r["job_failures"] == 0
    # and the plain shop over-sells more, never trips a breaker and compensates days later if at all
    assert on["harmed_buyers"] < off["harmed_buyers"]
    assert off["breaker_incidents"] == 0 and off["merchants_limited"] == 0
    assert off["p99_compensation_s"] is None or off["p99_compensation_s"] >= 3 * 24 * 3600
    # and a confirmed dispute's coupons are booked in the confirming transaction
    assert on["confirm_to_compensation_max_s"] in (None, 0.0)
    # and everything the platform advanced, breaker coupons included, is booked against the merchants
    assert on["recovered_share"] in (None, 1.0)
