"""Smoke runs of both benchmarks through the CLI: seconds, tiny numbers, correctness only (not speed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import PG_URL


def _bench(tmp_path: Any, *args: str, timeout: float = 120) -> tuple[int, dict[str, Any]]:
    proc = subprocess.run([sys.executable, "-m", "tuangou.cli", "bench", *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200"})
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, proc.stdout + proc.stderr
    return proc.returncode, json.loads(lines[-1])


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not PG_URL, reason="TUANGOU_TEST_POSTGRES_URL not set"))])
def test_a_flash_sale_with_a_server_killed_mid_sale_sells_the_cap_exactly_once(tmp_path, db):
    # given a deal of 120 units, 8 buyers and two server processes,
    # when the sale runs to sell-out and one server is killed (SIGKILL) mid-sale and restarted
    # (the sale stops at sell-out; the time bound is only a generous guard for a busy machine)
    code, r = _bench(tmp_path, "flash-sale", "--db", db, "--processes", "2", "--buyers", "8", "--cap", "120",
                     "--seconds", "240", "--noop-seconds", "0.5", "--chaos", timeout=600)
    # then every unit is sold once and paid, connections were reset but nothing failed or doubled
    assert r["servers_killed"] == 1, r
    assert (r["oversold"], r["duplicates"], r["errors_5xx"], r["errors_4xx"]) == (0, 0, 0, 0), r
    assert r["sold_out"] and r["sold"] == r["paid_orders_db"] == 120, r
    assert r["orders_per_s"] > 0 and r["noop_per_s"] > 0 and r["peak_rss_mb"] > 0
    # and the same sale ran with the risk checks off first: one statement less to place, same outcome
    assert r["orders_per_s_risk_off"] > 0 and not r["risk_off_failed"], r
    assert r["statements_place"] == r["statements_place_risk_off"] + 1, r
    assert r["statements_pay"] == r["statements_pay_risk_off"], r
    assert code == 0


def test_governance_tick_runs_every_job_on_a_generated_platform(tmp_path):
    # given 20 merchants with 200 deals and 1,000 orders (5 % of them reserved and past expiry) whose
    # events wait for the KPI job, when one tick of every job runs
    code, r = _bench(tmp_path, "governance", "--merchants", "20", "--deals", "200", "--orders", "1000")
    # then every job ran without failing and did the due work, the KPI job folding a batch of the history
    assert r["errors"] == 0 and {"orders", "notify", "monitoring"} <= set(r["jobs_s"]), r
    assert r["orders"] == 1000 and r["vouchers"] == 950 and r["events"] == 1000 + 950 + 20, r
    assert r["results"]["orders"]["expired"] == 50 and r["results"]["notify"]["relayed"] == 20, r
    assert r["kpi_events"] > 0 and r["kpi_s"] == r["jobs_s"]["monitoring"], r
    # and every deal, daily, slotted (one in ten) or goods (one in ten), got its 08:00 suggestion
    assert r["results"]["governance"] == {"suggestions": 200, "hourly_pushes": 20}, r
    assert code == 0


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not PG_URL, reason="TUANGOU_TEST_POSTGRES_URL not set"))])
def test_a_burst_of_buyers_for_few_units_gets_every_answer_and_sells_each_unit_once(tmp_path, db):
    # given 300 buyers connected to two servers and a deal of 30 units,
    # when they all order (and pay what they got) at the same instant
    code, r = _bench(tmp_path, "flash-sale", "--db", db, "--processes", "2", "--burst", "300", "--cap", "30",
                     "--seconds", "240", "--noop-seconds", "0.5", timeout=600)
    # then every buyer had an answer: 30 paid orders, 270 told sold out, nothing doubled or failed
    assert r["answered"] == 300 and r["refusals"] == 270, r
    assert r["sold"] == r["paid_orders_db"] == 30 and (r["oversold"], r["duplicates"], r["errors_5xx"]) == (0, 0, 0), r
    assert r["statements_per_order"] > 0 and r["transactions_per_order"] == 2, r
    assert code == 0
