"""The fruit merchant of seed 000: repeated strawberry over-sales over two weeks, fresh -8 each,
intake cut from 50 to 20 a day, then 7 clean days and a passed exam restore traffic."""

from __future__ import annotations

from datetime import timedelta

from tuangou.core.db import UnitOfWork
from tuangou.merchants import service as merchants


def record(stage, merchant_id, ref, category="fresh", kind="oversale", reason="sold more strawberries than stored",
           **extra):
    uow = UnitOfWork(stage.db, stage.clock)
    with uow:
        violation_id = merchants.record_violation(uow, merchant_id=merchant_id, category=category, kind=kind,
                                                  ref=ref, reason=reason, **extra)
        uow.commit()
    return violation_id


def take_orders(stage, deal, n):
    """Place up to n orders; returns (placed, the first refusal's code)."""
    buyer = stage.buyer()
    for i in range(n):
        r = stage.order(buyer, deal)
        if r.status_code != 201:
            return i, r.json()["code"]
    return n, None


def relogin(stage, merchant_email):
    """Tokens live a week; the story spans more."""
    stage.ops = stage.login("ops@test.tuangou")
    return stage.login(merchant_email)


def pass_exam(stage, merchant):
    right = {q["id"]: q["correct_index"] for q in stage.client.get("/api/v1/exam-questions",
                                                                   headers=stage.ops).json()["items"]}
    paper = stage.client.post("/api/v1/exam-papers", headers=merchant).json()
    answers = {str(q["id"]): right[q["id"]] for q in paper["questions"]}
    r = stage.client.post("/api/v1/exam-attempts", headers=merchant, json={"answers": answers})
    assert r.status_code == 201, r.text
    return r.json()


def test_fruit_merchant_is_limited_then_recovers(stage):
    # given ops let every merchant take 50 orders a day and keep a one-question exam
    r = stage.client.put("/api/v1/accountability-policy", headers=stage.ops,
                         json={"changes": {"normal_daily_intake": 50}, "reason": "seed: 50 orders a day"})
    assert r.status_code == 200 and r.json()["limited_daily_intake"] == 20
    stage.client.post("/api/v1/exam-questions", headers=stage.ops, json={
        "text": "Safe sales for 50 a day over 10 days?", "options": ["500", "400", "600"], "correct_index": 1, "reason": "test"})
    fruit_id, fruit = stage.merchant("Berry Farm")
    fruit_email = f"m{stage._n}@test.tuangou"
    deal = stage.deal(fruit, stage.store(fruit, "fresh"), title="Strawberry box", daily_cap=500)
    # and the merchant takes 50 orders a day, not 51
    assert take_orders(stage, deal, 51) == (50, "intake_limit")

    # when strawberries are over-sold three times over two weeks
    scores = []
    for day, incident in [(0, 1), (6, 2), (12, 3)]:
        stage.clock.advance(timedelta(days=day - (0 if incident == 1 else 6)))
        assert record(stage, fruit_id, f"incident:{incident}", deal_id=deal) is not None
        fruit = relogin(stage, fruit_email)
        scores.append(stage.client.get(f"/api/v1/merchants/{fruit_id}/standing", headers=fruit).json())
    # then each costs 8 fresh points and the third puts traffic limits on
    assert [s["scores"]["fresh"] for s in scores] == [92, 84, 76]
    assert [s["limited"] for s in scores] == [False, False, True]
    limited = scores[-1]
    assert limited["traffic"] == {"exposure_percent": 50, "daily_intake_cap": 20}
    assert len(limited["recovery_steps"]) == 2
    # and the merchant heard why, with the incident
    inbox = stage.client.get("/api/v1/inbox", headers=fruit).json()["items"]
    assert {"violation_recorded", "traffic_limited"} <= {m["kind"] for m in inbox}
    history = stage.client.get(f"/api/v1/merchants/{fruit_id}/score-history", headers=fruit).json()["entries"]
    assert [(e["event"], e["ref"]) for e in history] == [
        ("deduction", "incident:1"), ("deduction", "incident:2"), ("deduction", "incident:3"), ("limited", "incident:3")]

    # when the merchant orders the next day: intake is cut to 20
    stage.clock.advance(timedelta(days=1))
    assert take_orders(stage, deal, 21) == (20, "intake_limit")

    # when it passes the exam three days after the last over-sale: still limited, clean days missing
    stage.clock.advance(timedelta(days=2))
    exam = pass_exam(stage, fruit)
    assert exam["passed"] and exam["limited"] is True
    assert len(exam["recovery_steps"]) == 1 and "consecutive days" in exam["recovery_steps"][0]

    # when 7 clean days have passed and the worker ticks
    stage.clock.advance(timedelta(days=4, minutes=1))
    fruit = relogin(stage, fruit_email)
    assert stage.tick("merchants")["merchants"]["limits_lifted"] == 1
    # then traffic is back: full exposure and 50 orders a day
    after = stage.client.get(f"/api/v1/merchants/{fruit_id}/standing", headers=fruit).json()
    assert not after["limited"] and after["traffic"] == {"exposure_percent": 100, "daily_intake_cap": 50}
    assert after["scores"]["fresh"] == 76  # the record stays; only the limits lift
    assert "traffic_restored" in {m["kind"] for m in stage.client.get("/api/v1/inbox", headers=fruit).json()["items"]}
    assert take_orders(stage, deal, 50) == (50, None)
    assert stage.tick("merchants")["merchants"]["limits_lifted"] == 0


def test_the_same_incident_reported_twice_costs_points_once(any_stage):
    stage = any_stage
    merchant_id, merchant = stage.merchant()
    assert record(stage, merchant_id, "incident:9", category="catering") is not None
    assert record(stage, merchant_id, "incident:9", category="catering") is None
    assert record(stage, merchant_id, "dispute:4", category="catering") is not None
    standing = stage.client.get(f"/api/v1/merchants/{merchant_id}/standing", headers=merchant).json()
    assert standing["scores"] == {"catering": 90}


def test_ops_record_a_violation_by_hand_with_a_reason(stage):
    merchant_id, merchant = stage.merchant()
    body = {"category": "catering", "kind": "oversale", "ref": "ticket:77", "reason": "30 diners turned away"}
    first = stage.client.post(f"/api/v1/merchants/{merchant_id}/violations", headers=stage.ops, json=body)
    again = stage.client.post(f"/api/v1/merchants/{merchant_id}/violations", headers=stage.ops, json=body)
    assert first.status_code == 201 and first.json()["recorded"] is True
    assert again.json() == {"recorded": False, "violation_id": None}
    audit = stage.client.get("/api/v1/audit?action=record_violation", headers=stage.ops).json()["items"]
    assert audit[0]["reason"] == "30 diners turned away"
    # merchants may not, and bad input changes nothing
    assert stage.client.post(f"/api/v1/merchants/{merchant_id}/violations", headers=merchant,
                             json=body).status_code == 403
    bad = stage.client.post(f"/api/v1/merchants/{merchant_id}/violations", headers=stage.ops,
                            json={**body, "kind": "rudeness", "ref": "x"})
    assert bad.status_code == 422
    unknown = stage.client.post("/api/v1/merchants/9999/violations", headers=stage.ops, json={**body, "ref": "y"})
    assert unknown.status_code == 404
    items = stage.client.get(f"/api/v1/merchants/{merchant_id}/violations", headers=merchant).json()["items"]
    assert [(v["ref"], v["points"]) for v in items] == [("ticket:77", 5)]


def test_a_merchant_sees_only_its_own_standing(stage):
    merchant_id, _ = stage.merchant("A")
    _, other = stage.merchant("B")
    assert stage.client.get(f"/api/v1/merchants/{merchant_id}/standing", headers=other).status_code == 403
    assert stage.client.get(f"/api/v1/merchants/{merchant_id}/score-history", headers=stage.buyer()).status_code == 403


def test_policy_changes_are_validated_and_audited(stage):
    unknown = stage.client.put("/api/v1/accountability-policy", headers=stage.ops,
                               json={"changes": {"bonus": 1}, "reason": "x"})
    bad = stage.client.put("/api/v1/accountability-policy", headers=stage.ops,
                           json={"changes": {"limited_exposure_percent": 300}, "reason": "x"})
    assert unknown.status_code == 422 and bad.status_code == 422
    ok = stage.client.put("/api/v1/accountability-policy", headers=stage.ops,
                          json={"changes": {"oversale_points": {"catering": 6, "fresh": 8}}, "reason": "harsher"})
    assert ok.status_code == 200
    merchant_id, merchant = stage.merchant()
    record(stage, merchant_id, "incident:1", category="catering")
    assert stage.client.get(f"/api/v1/merchants/{merchant_id}/standing",
                            headers=merchant).json()["scores"] == {"catering": 94}
    assert stage.client.get("/api/v1/audit?action=set_accountability_policy",
                            headers=stage.ops).json()["items"][0]["reason"] == "harsher"
