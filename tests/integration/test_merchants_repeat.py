"""Repeat offences escalate beyond points (E4, seed 000 "over-selling two weeks running"): over-selling again
while limited lengthens the limits, and again suspends new listings, each explained in the inbox with its rule."""

from __future__ import annotations

from datetime import timedelta

from tuangou.core.db import UnitOfWork
from tuangou.merchants import service as merchants


def record(stage, merchant_id, ref):
    uow = UnitOfWork(stage.db, stage.clock)
    with uow:
        violation_id = merchants.record_violation(uow, merchant_id=merchant_id, category="fresh", kind="oversale",
                                                  ref=ref, reason="sold past the cold store")
        uow.commit()
    return violation_id


def inbox(stage, headers, kind):
    return [m for m in stage.client.get("/api/v1/inbox", headers=headers).json()["items"] if m["kind"] == kind]


def test_over_selling_again_while_limited_lengthens_the_limits_then_suspends_listings(any_stage):
    # given a fresh-food merchant limited by its third over-sale
    stage = any_stage
    merchant_id, merchant = stage.merchant("Berry Farm")
    email = f"m{stage._n}@test.tuangou"
    store = stage.store(merchant, "fresh")
    for n in range(3):
        record(stage, merchant_id, f"incident:{n}")
    standing = stage.client.get(f"/api/v1/merchants/{merchant_id}/standing", headers=merchant).json()
    assert standing["limited"] and "7 consecutive days" in standing["recovery_steps"][0]
    assert inbox(stage, merchant, "repeat_offence") == []

    # when it over-sells again two days later
    stage.clock.advance(timedelta(days=2))
    record(stage, merchant_id, "incident:3")
    # then the limits need 14 clean days, and the merchant is told the rule
    standing = stage.client.get(f"/api/v1/merchants/{merchant_id}/standing", headers=merchant).json()
    assert standing["limited"] and "14 consecutive days" in standing["recovery_steps"][0]
    notice = inbox(stage, merchant, "repeat_offence")
    assert len(notice) == 1 and "within 14 days of the previous over-sale" in notice[0]["body"]
    assert standing["penalties_in_force"] == []
    history = stage.client.get(f"/api/v1/merchants/{merchant_id}/score-history", headers=merchant).json()["entries"]
    assert [e["event"] for e in history][-2:] == ["deduction", "escalated"]

    # when it over-sells a second time while limited
    stage.clock.advance(timedelta(days=3))
    merchant, stage.ops = stage.login(email), stage.login("ops@test.tuangou")
    fifth = record(stage, merchant_id, "incident:4")
    # then new listings are suspended for 7 days, with the rule and the incident
    standing = stage.client.get(f"/api/v1/merchants/{merchant_id}/standing", headers=merchant).json()
    [suspension] = standing["penalties_in_force"]
    assert suspension["kind"] == "listing_suspension" and "repeat over-selling" in suspension["rule"]
    assert suspension["ends_at"] == (stage.clock.now() + timedelta(days=7)).isoformat()
    draft = stage.deal(merchant, store, publish=False)
    r = stage.client.post(f"/api/v1/deals/{draft}/publish", headers=merchant)
    assert (r.status_code, r.json()["code"]) == (409, "listing_suspended")
    assert len(inbox(stage, merchant, "repeat_offence")) == 2

    # when that over-sale is appealed and upheld, the suspension lifts with it
    appeal = stage.client.post("/api/v1/appeals", headers=merchant, data={
        "target": f"violation:{fifth}", "statement": "the buyer moved the date"},
        files=[("files", ("chat.txt", b"buyer: tomorrow is fine", "text/plain"))]).json()
    stage.client.post(f"/api/v1/appeals/{appeal['id']}/decision", headers=stage.ops,
                      json={"uphold": True, "reason": "the chat log shows the buyer agreed"})
    assert stage.client.post(f"/api/v1/deals/{draft}/publish", headers=merchant).status_code == 200


def test_an_over_sale_after_the_limits_lifted_is_not_a_repeat(stage):
    # given a merchant whose limits lifted after 7 clean days and an exam
    merchant_id, merchant = stage.merchant()
    email = f"m{stage._n}@test.tuangou"
    for n in range(3):
        record(stage, merchant_id, f"incident:{n}")
    right = {q["id"]: q["correct_index"] for q in stage.client.get("/api/v1/exam-questions",
                                                                   headers=stage.ops).json()["items"]}
    paper = stage.client.post("/api/v1/exam-papers", headers=merchant).json()
    stage.client.post("/api/v1/exam-attempts", headers=merchant,
                      json={"answers": {str(q["id"]): right[q["id"]] for q in paper["questions"]}})
    stage.clock.advance(timedelta(days=7, minutes=1))
    merchant = stage.login(email)
    assert not stage.client.get(f"/api/v1/merchants/{merchant_id}/standing", headers=merchant).json()["limited"]
    # when it over-sells again (within 14 days of the last one, but no longer limited)
    record(stage, merchant_id, "incident:3")
    # then it is limited again by its score, on the plain rule, with no repeat notice
    standing = stage.client.get(f"/api/v1/merchants/{merchant_id}/standing", headers=merchant).json()
    assert standing["limited"] and "7 consecutive days" in standing["recovery_steps"][0]
    assert inbox(stage, merchant, "repeat_offence") == []
