"""Penalties (rule, evidence, end), false claims and the monthly case report (the exam: test_merchants_exam.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tuangou.core import ledger
from tuangou.core.db import UnitOfWork
from tuangou.merchants import service as merchants


def record(stage, merchant_id, ref, kind="oversale", category="fresh", reason="over-sold", **extra):
    uow = UnitOfWork(stage.db, stage.clock)
    with uow:
        violation_id = merchants.record_violation(uow, merchant_id=merchant_id, category=category, kind=kind,
                                                  ref=ref, reason=reason, **extra)
        uow.commit()
    return violation_id


def balance(stage, account):
    uow = UnitOfWork(stage.db, stage.clock)
    with uow:
        return ledger.balance(uow.session, account), ledger.total(uow.session)


def test_a_false_claim_costs_20_points_and_suspends_new_listings_for_a_week(stage):
    # given a merchant with a draft deal
    merchant_id, merchant = stage.merchant()
    store = stage.store(merchant, "fresh")
    draft = stage.deal(merchant, store, publish=False)
    # when ops find its inventory change request false
    record(stage, merchant_id, "change_request:5", kind="false_claim", reason="no purchase order for 100 jin")
    # then it loses 20 points and may not publish for 7 days
    standing = stage.client.get(f"/api/v1/merchants/{merchant_id}/standing", headers=merchant).json()
    assert standing["scores"] == {"fresh": 80}
    [ban] = standing["penalties_in_force"]
    assert ban["kind"] == "listing_suspension" and "7 days" in ban["rule"] and "change_request:5" in ban["evidence"]
    assert ban["ends_at"] == (stage.clock.now() + timedelta(days=7)).isoformat()
    refused = stage.client.post(f"/api/v1/deals/{draft}/publish", headers=merchant)
    assert refused.status_code == 409 and refused.json()["code"] == "listing_suspended"
    # when the week is over, it may
    stage.clock.advance(timedelta(days=7, minutes=1))
    merchant = stage.login("m1@test.tuangou")  # tokens live a week
    assert stage.client.post(f"/api/v1/deals/{draft}/publish", headers=merchant).status_code == 200


def test_a_repeated_false_claim_removes_the_merchant_and_an_upheld_appeal_reinstates_it(stage):
    merchant_id, merchant = stage.merchant()
    deal = stage.deal(merchant, stage.store(merchant, "fresh"))
    first = record(stage, merchant_id, "change_request:1", kind="false_claim")
    second = record(stage, merchant_id, "change_request:2", kind="false_claim")
    # then the merchant is removed and its deals are off sale
    penalties = stage.client.get(f"/api/v1/merchants/{merchant_id}/penalties", headers=stage.ops).json()["items"]
    assert [p["kind"] for p in penalties] == ["listing_suspension", "listing_suspension", "removal"]
    assert stage.client.get("/api/v1/merchants", headers=stage.ops).json()["items"][0]["status"] == "removed"
    assert stage.client.get(f"/api/v1/deals/{deal}").json()["status"] == "delisted"
    # when the merchant wins an appeal against the first claim
    r = stage.client.post("/api/v1/appeals", headers=merchant, data={"target": f"violation:{first}",
                          "statement": "the apples arrived"}, files=[("files", ("po.jpg", b"\xff\xd8jpeg", "image/jpeg"))])
    stage.client.post(f"/api/v1/appeals/{r.json()['id']}/decision", headers=stage.ops,
                      json={"uphold": True, "reason": "purchase order checks out"})
    # then the removal and that claim's suspension are lifted; the second claim's suspension stands
    penalties = stage.client.get(f"/api/v1/merchants/{merchant_id}/penalties", headers=stage.ops).json()["items"]
    assert [p["status"] for p in penalties] == ["lifted", "active", "lifted"]
    assert stage.client.get("/api/v1/merchants", headers=stage.ops).json()["items"][0]["status"] == "active"
    standing = stage.client.get(f"/api/v1/merchants/{merchant_id}/standing", headers=merchant).json()
    assert standing["scores"] == {"fresh": 80} and second


def test_fines_and_deposit_deductions_go_through_the_ledger_and_come_back_on_appeal(stage):
    merchant_id, merchant = stage.merchant()
    violation = record(stage, merchant_id, "incident:3")
    fine = stage.client.post(f"/api/v1/merchants/{merchant_id}/penalties", headers=stage.ops, json={
        "kind": "fine", "rule": "over-sale fine", "evidence": "incident:3", "reason": "repeat over-sale",
        "amount_cents": 5000, "violation_id": violation})
    deduction = stage.client.post(f"/api/v1/merchants/{merchant_id}/penalties", headers=stage.ops, json={
        "kind": "deposit_deduction", "rule": "deposit for buyer losses", "evidence": "incident:3",
        "reason": "cover losses", "amount_cents": 2000})
    assert fine.status_code == 201 and deduction.status_code == 201
    assert fine.json()["ends_at"] == fine.json()["starts_at"]  # money moves at once
    # the deposit was never funded: the deduction is owed from settlements, the deposit never goes negative
    assert balance(stage, ledger.merchant_account(merchant_id)) == (-7000, 0)
    assert balance(stage, merchants.deposit_account(merchant_id)) == (0, 0)
    assert balance(stage, merchants.PENALTY_INCOME) == (7000, 0)
    # when the over-sale is appealed and upheld, the fine tied to it is paid back
    r = stage.client.post("/api/v1/appeals", headers=merchant, data={"target": f"violation:{violation}",
                          "statement": "courier lost it"}, files=[("files", ("waybill.pdf", b"%PDF", "application/pdf"))])
    stage.client.post(f"/api/v1/appeals/{r.json()['id']}/decision", headers=stage.ops,
                      json={"uphold": True, "reason": "carrier's fault"})
    assert balance(stage, ledger.merchant_account(merchant_id)) == (-2000, 0)
    assert balance(stage, merchants.deposit_account(merchant_id)) == (0, 0)
    # when the deduction itself is appealed and upheld
    r = stage.client.post("/api/v1/appeals", headers=merchant, data={"target": f"penalty:{deduction.json()['id']}",
                          "statement": "no loss"}, files=[("files", ("x.txt", b"x", "text/plain"))])
    stage.client.post(f"/api/v1/appeals/{r.json()['id']}/decision", headers=stage.ops,
                      json={"uphold": True, "reason": "no buyer lost money"})
    assert balance(stage, merchants.deposit_account(merchant_id)) == (0, 0)
    assert balance(stage, ledger.merchant_account(merchant_id)) == (0, 0)


def test_a_promotion_ban_blocks_large_promotions_only_and_states_its_end(stage):
    merchant_id, merchant = stage.merchant()
    store = stage.store(merchant)
    promo = stage.deal(merchant, store, publish=False, large_promotion=True)
    plain = stage.deal(merchant, store, publish=False)
    bad = stage.client.post(f"/api/v1/merchants/{merchant_id}/penalties", headers=stage.ops, json={
        "kind": "promotion_ban", "rule": "r", "evidence": "e", "reason": "x"})
    assert bad.status_code == 422  # a ban must end
    r = stage.client.post(f"/api/v1/merchants/{merchant_id}/penalties", headers=stage.ops, json={
        "kind": "promotion_ban", "rule": "two over-sales in a promotion", "evidence": "incident:1, incident:2",
        "reason": "protect buyers", "days": 30})
    assert r.json()["ends_at"] == (stage.clock.now() + timedelta(days=30)).isoformat()
    assert stage.client.post(f"/api/v1/deals/{promo}/publish", headers=merchant).json()["code"] == "promotion_banned"
    assert stage.client.post(f"/api/v1/deals/{plain}/publish", headers=merchant).status_code == 200
    assert stage.client.post(f"/api/v1/merchants/{merchant_id}/penalties", headers=merchant, json={
        "kind": "fine", "rule": "r", "evidence": "e", "reason": "x", "amount_cents": 1}).status_code == 403


def test_the_monthly_case_report_is_anonymised_built_once_and_sent_to_every_merchant(stage):
    # given two over-sales in November, one with the incident's numbers, and an appealed-away one
    fruit_id, fruit = stage.merchant("Berry Farm")
    deal = stage.deal(fruit, stage.store(fruit, "fresh"), title="Berry Farm strawberries", daily_cap=20)
    noodle_id, _ = stage.merchant("Lao Wang")
    record(stage, fruit_id, "incident:1", reason="Berry Farm sold 120 boxes with 100 in the cold store",
           deal_id=deal, details={"oversold_units": 20, "compensation_cents": 10000, "sold": 120})
    record(stage, noodle_id, f"dispute:2 deal:{deal}", category="catering", reason="Lao Wang had 10 tables for 150")
    # when the worker ticks in November nothing is due for November yet
    assert stage.tick("merchants")["merchants"]["case_report"] == "2026-10"
    # when December 1st comes (Shanghai time)
    stage.clock.set(datetime(2026, 11, 30, 16, 30, tzinfo=UTC))
    first = stage.tick("merchants")["merchants"]["case_report"]
    again = stage.tick("merchants")["merchants"]["case_report"]
    assert (first, again) == ("2026-11", None)
    ops = stage.login("ops@test.tuangou")
    report = stage.client.get("/api/v1/case-reports/2026-11", headers=ops).json()
    assert report["cases"] == 2 and report["compensation_cents"] == 10000
    fresh = next(g for g in report["categories"] if g["category"] == "fresh")["cases"][0]
    # safe sales = 20 a day x 31 days (Nov 23 - Dec 23) x 0.8
    assert (fresh["daily_reception"], fresh["activity_days"], fresh["safe_sales"]) == (20, 31, 496)
    assert fresh["oversold_units"] == 20
    markdown = stage.client.get("/api/v1/case-reports/2026-11?format=markdown", headers=ops).text
    assert markdown.startswith("# Over-selling cases, 2026-11") and "496" in markdown
    assert "Berry" not in markdown and "Lao Wang" not in markdown
    # and every merchant got it once
    for email in ("m1@test.tuangou", "m2@test.tuangou"):
        inbox = stage.client.get("/api/v1/inbox", headers=stage.login(email)).json()["items"]
        assert [m["kind"] for m in inbox].count("case_report") == 1
    months = [r["month"] for r in stage.client.get("/api/v1/case-reports", headers=ops).json()["items"]]
    assert months == ["2026-11", "2026-10"]
    assert stage.client.get("/api/v1/case-reports/2026-09", headers=ops).status_code == 404
