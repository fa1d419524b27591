"""Listing order and exposure follow the score; an upheld appeal restores points and exposure;
the intake cap holds under concurrency on both databases."""

from __future__ import annotations

import hashlib
import threading
from datetime import timedelta

from tuangou.accounts import service as accounts
from tuangou.core.auth import Principal, Role
from tuangou.core.db import UnitOfWork
from tuangou.core.errors import Conflict
from tuangou.merchants import service as merchants
from tuangou.orders import service as orders


def record(stage, merchant_id, ref, category="fresh"):
    uow = UnitOfWork(stage.db, stage.clock)
    with uow:
        violation_id = merchants.record_violation(uow, merchant_id=merchant_id, category=category, kind="oversale",
                                                  ref=ref, reason="over-sold")
        uow.commit()
    return violation_id


def shop(stage, name, category):
    merchant_id, headers = stage.merchant(name)
    deal = stage.deal(headers, stage.store(headers, category), title=name, daily_cap=100)
    return merchant_id, headers, deal


def listing(stage, **params):
    return [d["id"] for d in stage.client.get("/api/v1/deals", params=params).json()["items"]]


def test_listing_order_and_exposure_follow_the_score(stage):
    # given four merchants, created worst first so id order differs from score order
    limited_id, limited, limited_deal = shop(stage, "Limited", "fresh")  # 3 fresh over-sales: 76, limited
    fresh2_id, _, fresh2_deal = shop(stage, "Two slips", "fresh")  # 2 fresh over-sales: 84
    catering_id, _, catering_deal = shop(stage, "One slip", "catering")  # 1 catering over-sale: 95
    _, _, clean_deal = shop(stage, "Clean", "catering")  # 100
    assert listing(stage) == [limited_deal, fresh2_deal, catering_deal, clean_deal]  # all 100: by id
    for n in range(3):
        record(stage, limited_id, f"incident:l{n}")
    for n in range(2):
        record(stage, fresh2_id, f"incident:f{n}")
    record(stage, catering_id, "incident:c0", "catering")
    # then the listing is ordered by score, the limited merchant last with half its weight
    assert listing(stage) == [clean_deal, catering_deal, fresh2_deal, limited_deal]
    # and paging follows the same order
    first = stage.client.get("/api/v1/deals", params={"limit": 2}).json()
    assert [d["id"] for d in first["items"]] == [clean_deal, catering_deal]
    second = listing(stage, limit=2, cursor=first["next_cursor"])
    assert second == [fresh2_deal, limited_deal]
    # and filters keep the order
    assert listing(stage, category="fresh") == [fresh2_deal, limited_deal]

    # when ops make the fresh deduction much lighter for the future, the record does not move
    stage.client.put("/api/v1/accountability-policy", headers=stage.ops,
                     json={"changes": {"oversale_points": {"catering": 5, "fresh": 1}}, "reason": "test"})
    assert listing(stage) == [clean_deal, catering_deal, fresh2_deal, limited_deal]


def test_halved_exposure_ranks_a_limited_merchant_below_a_lower_scored_free_one(stage):
    # given two fresh merchants: one recovered at 68, one limited at 76
    recovered_id, recovered, recovered_deal = shop(stage, "Recovered", "fresh")
    recovered_email = f"m{stage._n}@test.tuangou"
    stage.client.post("/api/v1/exam-questions", headers=stage.ops,
                      json={"text": "Sell past the cap?", "options": ["yes", "no"], "correct_index": 1, "reason": "test"})
    for n in range(4):  # the fourth comes while limited: a repeat offence, 14 clean days
        record(stage, recovered_id, f"incident:r{n}")
    stage.clock.advance(timedelta(days=14, minutes=1))
    recovered, stage.ops = stage.login(recovered_email), stage.login("ops@test.tuangou")  # tokens live a week
    right = {q["id"]: q["correct_index"] for q in stage.client.get("/api/v1/exam-questions",
                                                                   headers=stage.ops).json()["items"]}
    paper = stage.client.post("/api/v1/exam-papers", headers=recovered).json()
    assert "correct_index" not in paper["questions"][0]
    r = stage.client.post("/api/v1/exam-attempts", headers=recovered,
                          json={"answers": {str(q["id"]): right[q["id"]] for q in paper["questions"]}})
    assert r.json()["passed"] and r.json()["limited"] is False
    limited_id, _, limited_deal = shop(stage, "Limited", "fresh")
    for n in range(3):
        record(stage, limited_id, f"incident:l{n}")
    # then the free merchant at 68 outranks the limited one at 76 (76 x 50% = 38)
    assert listing(stage) == [recovered_deal, limited_deal]


def test_an_upheld_appeal_restores_points_and_recomputes_exposure(stage):
    # given a merchant limited by its third over-sale, listed after a clean one
    merchant_id, merchant, deal = shop(stage, "Appealer", "fresh")
    _, _, clean_deal = shop(stage, "Clean", "fresh")
    violations = [record(stage, merchant_id, f"incident:{n}") for n in range(3)]
    assert listing(stage) == [clean_deal, deal]
    assert stage.client.get(f"/api/v1/merchants/{merchant_id}/standing", headers=merchant).json()["limited"]
    # when it appeals the third with a chat log and a stock record
    chat, stock = b"buyer: fine, I'll come tomorrow", b"cold store: 120 kg on 11-23"
    r = stage.client.post("/api/v1/appeals", headers=merchant,
                          data={"target": f"violation:{violations[2]}", "statement": "the buyer agreed to move"},
                          files=[("files", ("chat.txt", chat, "text/plain")),
                                 ("files", ("stock.csv", stock, "text/csv"))])
    assert r.status_code == 201, r.text
    appeal = r.json()
    assert [e["sha256"] for e in appeal["evidence"]] == [hashlib.sha256(chat).hexdigest(),
                                                       hashlib.sha256(stock).hexdigest()]
    evidence = stage.client.get(f"/api/v1/appeals/{appeal['id']}/evidence/{appeal['evidence'][0]['id']}",
                                headers=stage.ops)
    assert evidence.content == chat
    # and the same target cannot be appealed twice, nor by another merchant
    again = stage.client.post("/api/v1/appeals", headers=merchant, data={
        "target": f"violation:{violations[2]}", "statement": "again"}, files=[("files", ("a.txt", b"a", "text/plain"))])
    assert again.status_code == 409 and again.json()["code"] == "appeal_exists"
    _, other = stage.merchant("Other")
    assert stage.client.get(f"/api/v1/appeals/{appeal['id']}", headers=other).status_code == 403
    # when ops uphold it with a reason
    r = stage.client.post(f"/api/v1/appeals/{appeal['id']}/decision", headers=stage.ops,
                          json={"uphold": True, "reason": "chat log shows the buyer agreed to another date"})
    assert r.status_code == 200 and r.json()["status"] == "upheld"
    # then the points are back, the limits are gone and the listing is recomputed
    standing = stage.client.get(f"/api/v1/merchants/{merchant_id}/standing", headers=merchant).json()
    assert standing["scores"] == {"fresh": 84} and not standing["limited"]
    assert standing["traffic"]["exposure_percent"] == 100
    assert listing(stage) == [clean_deal, deal]  # 84 < 100, but no longer halved
    history = stage.client.get(f"/api/v1/merchants/{merchant_id}/score-history", headers=merchant).json()
    assert [e["event"] for e in history["entries"]] == ["deduction", "deduction"]
    assert [v["id"] for v in history["restored_by_appeal"]] == [violations[2]]
    assert "appeal_decided" in {m["kind"] for m in stage.client.get("/api/v1/inbox", headers=merchant).json()["items"]}
    # and a decision is final
    twice = stage.client.post(f"/api/v1/appeals/{appeal['id']}/decision", headers=stage.ops,
                              json={"uphold": False, "reason": "changed my mind"})
    assert twice.status_code == 409


def test_a_rejected_appeal_keeps_the_points(stage):
    merchant_id, merchant, _ = shop(stage, "Appealer", "catering")
    violation = record(stage, merchant_id, "incident:1", "catering")
    r = stage.client.post("/api/v1/appeals", headers=merchant, data={"target": f"violation:{violation}",
                          "statement": "not us"}, files=[("files", ("log.txt", b"log", "text/plain"))])
    no_files = stage.client.post("/api/v1/appeals", headers=merchant, data={"target": f"violation:{violation}",
                                 "statement": "not us"})
    assert no_files.status_code == 422
    r = stage.client.post(f"/api/v1/appeals/{r.json()['id']}/decision", headers=stage.ops,
                          json={"uphold": False, "reason": "the log does not show the order"})
    assert r.json()["status"] == "rejected"
    assert stage.client.get(f"/api/v1/merchants/{merchant_id}/standing",
                            headers=merchant).json()["scores"] == {"catering": 95}
    assert stage.client.get("/api/v1/appeals?status=rejected", headers=merchant).json()["items"][0]["id"]


def test_intake_cap_holds_under_concurrent_orders(any_stage):
    # given a limited merchant (cap 8 a day) and 14 buyers ordering at once
    stage = any_stage
    stage.client.put("/api/v1/accountability-policy", headers=stage.ops,
                     json={"changes": {"limited_daily_intake": 8}, "reason": "a small cap keeps the test quick"})
    merchant_id, _, deal = shop(stage, "Busy", "fresh")
    for n in range(3):
        record(stage, merchant_id, f"incident:{n}")
    buyers = [accounts.sign_up_buyer(UnitOfWork(stage.db, stage.clock), f"c{i}@test.tuangou", "secret-pass-1")
              for i in range(14)]
    results: list[str] = []

    def place(buyer_id: int) -> None:
        try:
            orders.place_order(UnitOfWork(stage.db, stage.clock), Principal(buyer_id, Role.BUYER), deal, 1,
                               f"k-{buyer_id}")
            results.append("ok")
        except Conflict as exc:
            results.append(exc.code)

    threads = [threading.Thread(target=place, args=(b.id,)) for b in buyers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then exactly 8 are taken and the rest refused with a stable code, holding nothing
    assert results.count("ok") == 8 and results.count("intake_limit") == 6
    calendar = stage.client.get(f"/api/v1/deals/{deal}/calendar").json()["items"]
    assert sum(b["reserved"] + b["sold"] for b in calendar) == 8
