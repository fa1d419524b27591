"""Console actions over HTTP: the policy editor, the safe-sales calculator, disputes, after-sales tickets,
caps and change requests, the exam, penalties. Each goes through the same service as the API."""

from __future__ import annotations

import re

from tuangou.core.auth import Principal, Role
from tuangou.core.db import UnitOfWork
from tuangou.merchants import exam

PASSWORD = "secret-pass-1"


def _csrf(stage, path):
    return re.search(r'name="csrf" value="([^"]+)"', stage.client.get(path).text).group(1)


def _sign_in(stage, email):
    stage.client.cookies.clear()
    r = stage.client.post("/console/login", data={"email": email, "password": PASSWORD,
                                                  "csrf": _csrf(stage, "/console/login")}, follow_redirects=False)
    assert r.status_code == 303, r.text


def test_ops_change_a_policy_with_a_reason_and_see_it_in_the_history(stage):
    _sign_in(stage, "ops@test.tuangou")
    page = stage.client.get("/console/ops/policies").text
    assert 'name="warn_remaining" value="10"' in page and "respond_within_minutes" in page
    token = _csrf(stage, "/console/ops/policies")
    # without a reason nothing changes
    r = stage.client.post("/console/ops/policies/governance", data={"csrf": token, "warn_remaining": "12",
                                                                    "reason": ""})
    assert r.status_code == 422
    assert stage.client.get("/api/v1/governance-policy", headers=stage.ops).json()["warn_remaining"] == 10
    r = stage.client.post("/console/ops/policies/governance", data={"csrf": token, "warn_remaining": "12",
                                                                    "reason": "busy season"})
    assert r.status_code == 200 and "busy season" in r.text
    assert stage.client.get("/api/v1/governance-policy", headers=stage.ops).json()["warn_remaining"] == 12


def test_merchant_safe_sales_calculator_uses_the_policy_ratio(stage):
    stage.merchant()
    _sign_in(stage, "m1@test.tuangou")
    page = stage.client.get("/console/merchant/capacity?daily_reception=50&activity_days=7",
                            headers={"accept-language": "en"}).text
    assert "Safe to sell: 280" in page


def test_merchant_admits_a_dispute_and_the_buyer_is_refunded(stage):
    _, merchant = stage.merchant()
    deal = stage.deal(merchant, stage.store(merchant))
    buyer = stage.buyer()
    order = stage.paid_order(buyer, deal)
    d = stage.client.post("/api/v1/disputes", headers=buyer, json={"order_id": order["id"],
                                                                   "kind": "cannot_fulfil"}).json()
    _sign_in(stage, "m1@test.tuangou")
    token = _csrf(stage, "/console/merchant/disputes")
    r = stage.client.post(f"/console/merchant/disputes/{d['id']}/admit", data={"csrf": token, "reason": "full"})
    assert r.status_code == 200 and "已确认" in r.text
    assert stage.client.get(f"/api/v1/disputes/{d['id']}", headers=buyer).json()["status"] == "confirmed"


def test_buyer_opens_an_after_sales_ticket_with_photos_and_picks_a_remedy(stage):
    _, merchant = stage.merchant()
    deal = stage.deal(merchant, stage.store(merchant))
    stage.buyer()
    order = stage.paid_order(stage.login("buyer2@test.tuangou"), deal)
    _sign_in(stage, "buyer2@test.tuangou")
    path = f"/console/buyer/orders/{order['id']}"
    r = stage.client.post(f"{path}/ticket", data={"csrf": _csrf(stage, path), "description": "scratched box"},
                          files=[("photos", ("box.jpg", b"\xff\xd8jpeg", "image/jpeg"))])
    assert r.status_code == 200 and "售后单已提交" in r.text
    ticket = stage.client.get("/api/v1/after-sales-tickets", headers=stage.login("buyer2@test.tuangou")).json()
    assert ticket["items"][0]["photos"][0]["name"] == "box.jpg"
    r = stage.client.post(f"/console/buyer/tickets/{ticket['items'][0]['id']}/choice",
                          data={"csrf": _csrf(stage, path), "order_id": order["id"], "proposal": 0})
    assert r.status_code == 200 and "已选" in r.text


def test_merchant_lowers_a_cap_at_once_and_a_raise_asks_for_a_change_request_that_ops_approve(stage):
    _, merchant = stage.merchant()
    deal = stage.deal(merchant, stage.store(merchant), daily_cap=20)
    _sign_in(stage, "m1@test.tuangou")
    token = _csrf(stage, "/console/merchant/deals")
    today = "2026-11-23"
    r = stage.client.post(f"/console/merchant/deals/{deal}/cap", data={"csrf": token, "day": today, "cap": 15})
    assert r.status_code == 200
    assert stage.client.get(f"/api/v1/deals/{deal}/calendar").json()["items"][0]["cap"] == 15
    r = stage.client.post(f"/console/merchant/deals/{deal}/cap", data={"csrf": token, "day": today, "cap": 30})
    assert r.status_code == 409 and "change-requests" in r.text
    r = stage.client.post(f"/console/merchant/deals/{deal}/change-requests",
                          data={"csrf": token, "bucket": today, "requested_cap": 30, "reason": "second wok"},
                          files={"evidence": ("po.jpg", b"\xff\xd8", "image/jpeg")})
    assert r.status_code == 200
    _sign_in(stage, "ops@test.tuangou")
    page = stage.client.get("/console/ops?kind=change").text
    action = re.search(r'action="(/console/ops/change-requests/\d+/decision)"', page).group(1)
    r = stage.client.post(action, data={"csrf": _csrf(stage, "/console/ops"), "decision": "approve",
                                        "reason": "purchase order seen"})
    assert r.status_code == 200
    assert stage.client.get(f"/api/v1/deals/{deal}/calendar").json()["items"][0]["cap"] == 30


def test_merchant_takes_the_exam_and_ops_impose_a_fine_with_a_reason(stage):
    ops_id = stage.client.get("/api/v1/me", headers=stage.ops).json()["id"]
    exam.add_question(UnitOfWork(stage.db, stage.clock), Principal(ops_id, Role.OPS), text="50 a day, 10 days?",
                          options=["500", "400"], correct_index=1, reason="seed")
    merchant_id, _ = stage.merchant()
    _sign_in(stage, "m1@test.tuangou")
    page = stage.client.get("/console/merchant/exam").text
    right = {q["id"]: q["correct_index"] for q in stage.client.get("/api/v1/exam-questions",
                                                                   headers=stage.ops).json()["items"]}
    answers = {f"q-{qid}": str(right[int(qid)]) for qid in set(re.findall(r'name="q-(\d+)"', page))}
    assert len(answers) == 5  # a paper drawn from the shipped bank and ops' question
    r = stage.client.post("/console/merchant/exam", data={"csrf": _csrf(stage, "/console/merchant/exam"),
                                                          **answers}, headers={"accept-language": "en"})
    assert r.status_code == 200 and "100% correct" in r.text and "Passed." in r.text
    _sign_in(stage, "ops@test.tuangou")
    r = stage.client.post(f"/console/ops/merchants/{merchant_id}/penalties",
                          data={"csrf": _csrf(stage, "/console/ops/merchants"), "kind": "fine", "rule": "A8",
                                "evidence": "incident 7", "reason": "repeated over-selling", "amount_yuan": "50"})
    assert r.status_code == 200 and "罚款" in r.text
    penalties = stage.client.get(f"/api/v1/merchants/{merchant_id}/penalties", headers=stage.ops).json()["items"]
    assert penalties[0]["kind"] == "fine" and penalties[0]["amount_cents"] == 5000


def test_ops_create_a_group_leader_who_lands_on_the_partner_page(stage):
    _sign_in(stage, "ops@test.tuangou")
    r = stage.client.post("/console/ops/users", data={"csrf": _csrf(stage, "/console/ops/users"), "role": "leader",
                                                      "email": "leader@test.tuangou", "password": PASSWORD,
                                                      "reason": "new community"})
    assert r.status_code == 200 and "leader@test.tuangou" in r.text
    stage.client.cookies.clear()
    r = stage.client.post("/console/login", data={"email": "leader@test.tuangou", "password": PASSWORD,
                                                  "csrf": _csrf(stage, "/console/login")}, follow_redirects=False)
    assert r.headers["location"] == "/console/partner"
    assert "佣金" in stage.client.get("/console/partner").text


def test_the_buyer_sees_a_free_side_dish_and_the_merchant_serves_it_from_the_redeem_page(stage):
    _, merchant = stage.merchant()
    deal = stage.deal(merchant, stage.store(merchant))
    buyer = stage.buyer()
    order = stage.paid_order(buyer, deal)
    d = stage.client.post("/api/v1/disputes", headers=merchant, json={"order_id": order["id"],
                                                                      "kind": "cannot_fulfil_today"}).json()
    code = d["coupons"][0]["code"]
    _sign_in(stage, "buyer2@test.tuangou")
    assert "free side dish · 由商家免费提供" in stage.client.get("/console/buyer/me").text
    _sign_in(stage, "m1@test.tuangou")
    token = _csrf(stage, "/console/merchant/redeem")
    r = stage.client.post("/console/merchant/redeem", data={"csrf": token, "code": code})
    assert r.status_code == 200 and f"已免费提供：free side dish（{code}）" in r.text
    again = stage.client.post("/console/merchant/redeem", data={"csrf": token, "code": code})
    assert again.status_code == 409 and "该免费赠品已提供过" in again.text
