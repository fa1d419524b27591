"""What an over-sale leaves behind (A7, A9): the breaker's coupon is recovered from the merchant through the
ledger once, the violation carries its deal and figures, and the monthly case report teaches from real numbers
with the one safe-sales ratio."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from tests.integration.disputes_support import assert_ledger_consistent
from tuangou.core import ledger
from tuangou.core.db import UnitOfWork
from tuangou.merchants import service as merchants

DECEMBER_1ST_IN_SHANGHAI = datetime(2026, 11, 30, 16, 30, tzinfo=UTC)


def _today(stage):
    return (stage.clock.now() + timedelta(hours=8)).date().isoformat()


def _recovery_lines(stage, merchant_id):
    with UnitOfWork(stage.db) as uow:
        return [(line.kind, line.amount_cents, line.ref) for line in uow.session.scalars(
            select(ledger.LedgerLine).where(ledger.LedgerLine.account == ledger.merchant_account(merchant_id))
            .order_by(ledger.LedgerLine.id))]


def _oversell(stage):
    """A hotpot sold 3 + 2 for today; its kitchen can only serve 3 after all: the breaker trips."""
    merchant_id, merchant = stage.merchant("Lao Wang Hotpot")
    deal = stage.deal(merchant, stage.store(merchant), title="Lao Wang hotpot for two", daily_cap=5)
    stage.paid_order(stage.buyer(), deal, 3)
    second = stage.buyer()
    newest = stage.paid_order(second, deal, 2)
    r = stage.client.put(f"/api/v1/deals/{deal}/capacity", headers=merchant,
                         json={"service_date": _today(stage), "cap": 3, "reason": "one cook only"})
    assert r.status_code == 200, r.text
    return merchant_id, merchant, deal, second, newest


def test_the_breaker_books_its_coupon_on_the_merchant_once_and_the_case_report_shows_real_figures(any_stage):
    stage = any_stage
    # given an over-sale the circuit breaker handled: the newest order moved to tomorrow with a ¥5 coupon
    merchant_id, merchant, deal, buyer, newest = _oversell(stage)
    assert stage.client.get(f"/api/v1/orders/{newest['id']}", headers=buyer).json()["service_date"] != _today(stage)
    # then the coupon the platform advanced is a recovery claim on the merchant, in the ledger, once
    [coupon] = stage.client.get("/api/v1/coupons", headers=buyer).json()["items"]
    assert _recovery_lines(stage, merchant_id) == [("recovery_booked", -500, f"coupon:{coupon['id']}")]
    # and the violation carries the deal, the units over, what was sold and what the platform paid
    [violation] = stage.client.get(f"/api/v1/merchants/{merchant_id}/violations", headers=merchant).json()["items"]
    assert {k: violation["details"].get(k) for k in ("deal_id", "oversold_units", "sold", "compensation_cents")} == {
        "deal_id": deal, "oversold_units": 2, "sold": 5, "compensation_cents": 500}
    # when the moved buyer disputes it (confirmed at once by the incident: a medium tier, a side dish in kind)
    d = stage.client.post("/api/v1/disputes", headers=buyer, json={"order_id": newest["id"],
                                                                   "kind": "cannot_fulfil_today"}).json()
    assert (d["status"], d["remedy"]["side_item_cents"]) == ("confirmed", 1500)
    # then what that dispute paid adds to the same violation, once, without a second deduction
    [violation] = stage.client.get(f"/api/v1/merchants/{merchant_id}/violations", headers=merchant).json()["items"]
    assert violation["details"]["compensation_cents"] == 2000
    with UnitOfWork(stage.db, stage.clock) as uow:
        again = merchants.add_violation_compensation(uow, merchant_id=merchant_id, kind="oversale",
                                                     ref=violation["ref"], source=f"dispute:{d['id']}", cents=1500)
        uow.commit()
    assert again is False
    assert [c["ref"] for c in stage.client.get("/api/v1/recovery-claims", headers=merchant).json()["items"]] == [
        f"coupon:{d['coupons'][0]['id']}", f"coupon:{coupon['id']}"]
    assert_ledger_consistent(stage.db)
    # and the month so far reads as the report will (neither stored nor sent)
    so_far = stage.client.get("/api/v1/case-reports/current?format=markdown", headers=merchant).text
    assert so_far.startswith("# Over-selling cases, 2026-11 (so far)")
    assert "(over-sold: 2, compensation 20.00 yuan, safe sales 124)" in so_far
    assert stage.client.get("/api/v1/case-reports", headers=merchant).json()["items"] == []
    # when December 1st comes, the November report is built
    stage.clock.set(DECEMBER_1ST_IN_SHANGHAI)
    assert stage.tick("merchants")["merchants"]["case_report"] == "2026-11"
    ops = stage.login("ops@test.tuangou")
    report = stage.client.get("/api/v1/case-reports/2026-11", headers=ops).json()
    [case] = report["categories"][0]["cases"]
    # then it shows the units, the compensation and the safe sales: 5 a day x 31 days x 0.8
    assert (report["compensation_cents"], case["oversold_units"], case["sold"]) == (2000, 2, 5)
    assert (case["daily_reception"], case["activity_days"], case["safe_sales"]) == (5, 31, 124)
    markdown = stage.client.get("/api/v1/case-reports/2026-11?format=markdown", headers=ops).text
    assert "(over-sold: 2, compensation 20.00 yuan, safe sales 124)" in markdown
    assert "Lao Wang" not in markdown


def test_one_safe_sales_ratio_a_put_on_governance_changes_the_calculator_and_the_case_report(stage):
    # given a November over-sale of 20 strawberry boxes at a stall receiving 20 a day
    fruit_id, fruit = stage.merchant("Berry Farm")
    deal = stage.deal(fruit, stage.store(fruit, "fresh"), title="strawberries", daily_cap=20)
    with UnitOfWork(stage.db, stage.clock) as uow:
        merchants.record_violation(uow, merchant_id=fruit_id, category="fresh", kind="oversale", ref="incident:1",
                                   reason="sold 120 boxes with 100 in the cold store", deal_id=deal,
                                   details={"oversold_units": 20, "compensation_cents": 10000, "sold": 120})
        uow.commit()
    # when ops make safe sales more cautious in the one place that owns it
    r = stage.client.put("/api/v1/governance-policy", headers=stage.ops,
                         json={"changes": {"safe_sales_ratio": 0.5}, "reason": "cautious season"})
    assert r.status_code == 200, r.text
    # then the accountability policy has no copy of its own to disagree, and cannot get one
    assert "safe_sales_percent" not in stage.client.get("/api/v1/accountability-policy", headers=stage.ops).json()
    refused = stage.client.put("/api/v1/accountability-policy", headers=stage.ops,
                               json={"changes": {"safe_sales_percent": 80}, "reason": "a second owner"})
    assert refused.status_code == 422
    # and the calculator and the case report both use 0.5
    calc = stage.client.get("/api/v1/safe-sales", params={"daily_reception": 20, "activity_days": 31}).json()
    stage.clock.set(DECEMBER_1ST_IN_SHANGHAI)
    assert stage.tick("merchants")["merchants"]["case_report"] == "2026-11"
    ops = stage.login("ops@test.tuangou")
    report = stage.client.get("/api/v1/case-reports/2026-11", headers=ops).json()
    case = report["categories"][0]["cases"][0]
    assert calc["safe_sales"] == case["safe_sales"] == 310
    assert report["safe_sales_rule"] == "daily reception x activity days x 0.5"
    assert "keep 50% for surprises" in stage.client.get("/api/v1/case-reports/2026-11?format=markdown",
                                                        headers=ops).text
