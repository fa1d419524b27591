"""Every ops decision states its reason (SPEC D: ops actions are audited who, when, why): publishing,
delisting and redeeming on a merchant's behalf without one is refused with 422 `reason_required` and
changes nothing; with one, the audit log keeps it. Merchants acting on their own deals need none."""

from __future__ import annotations

import pytest


def audit(stage, action):
    return [e["reason"] for e in stage.client.get("/api/v1/audit", headers=stage.ops,
                                                  params={"action": action}).json()["items"]]


@pytest.mark.parametrize("body", [None, {}, {"reason": ""}, {"reason": "   "}])
def test_ops_publish_and_delist_need_a_reason(stage, body):
    _, merchant = stage.merchant()
    deal = stage.deal(merchant, stage.store(merchant), publish=False)
    kwargs = {} if body is None else {"json": body}
    # when ops publish without a reason, nothing happens
    r = stage.client.post(f"/api/v1/deals/{deal}/publish", headers=stage.ops, **kwargs)
    assert (r.status_code, r.json()["code"]) == (422, "reason_required")
    assert stage.client.get(f"/api/v1/deals/{deal}", headers=merchant).json()["status"] == "draft"
    # with a reason it is published and the reason kept
    r = stage.client.post(f"/api/v1/deals/{deal}/publish", headers=stage.ops, json={"reason": "audit approved"})
    assert r.status_code == 200 and audit(stage, "publish_deal") == ["audit approved"]
    # and the same for delisting
    r = stage.client.post(f"/api/v1/deals/{deal}/delist", headers=stage.ops, **kwargs)
    assert (r.status_code, r.json()["code"]) == (422, "reason_required")
    assert stage.client.get(f"/api/v1/deals/{deal}", headers=merchant).json()["status"] == "published"
    r = stage.client.post(f"/api/v1/deals/{deal}/delist", headers=stage.ops, json={"reason": "buyer complaints"})
    assert r.status_code == 200 and audit(stage, "delist_deal") == ["buyer complaints"]
    # and the merchant publishes its own deal without one
    assert stage.client.post(f"/api/v1/deals/{deal}/publish", headers=merchant).status_code == 200


def test_ops_redeem_on_behalf_needs_a_reason(stage):
    _, merchant = stage.merchant()
    deal = stage.deal(merchant, stage.store(merchant))
    codes = [v["code"] for v in stage.paid_order(stage.buyer(), deal, 2)["vouchers"]]
    # when ops redeem without a reason: refused, the voucher still usable
    r = stage.client.post(f"/api/v1/vouchers/{codes[0]}/redeem", headers=stage.ops)
    assert (r.status_code, r.json()["code"]) == (422, "reason_required")
    # with one it is redeemed and audited
    r = stage.client.post(f"/api/v1/vouchers/{codes[0]}/redeem", headers=stage.ops,
                          json={"reason": "the shop's scanner is broken; the buyer showed the code"})
    assert r.status_code == 200, r.text
    assert audit(stage, "redeem_voucher") == ["the shop's scanner is broken; the buyer showed the code"]
    # the merchant redeems its own voucher without one
    assert stage.client.post(f"/api/v1/vouchers/{codes[1]}/redeem", headers=merchant).status_code == 200


def test_other_ops_decisions_need_a_reason(stage):
    _, merchant = stage.merchant()
    deal = stage.deal(merchant, stage.store(merchant))
    order = stage.paid_order(stage.buyer(), deal)
    # refund on a buyer's behalf, exam questions added or retired
    r = stage.client.post(f"/api/v1/orders/{order['id']}/refund", headers=stage.ops, json={})
    assert (r.status_code, r.json()["code"]) == (422, "reason_required")
    r = stage.client.post("/api/v1/exam-questions", headers=stage.ops,
                          json={"text": "Q", "options": ["a", "b"], "correct_index": 0})
    assert (r.status_code, r.json()["code"]) == (422, "reason_required")
    q = stage.client.post("/api/v1/exam-questions", headers=stage.ops,
                          json={"text": "Q", "options": ["a", "b"], "correct_index": 0, "reason": "new rule"})
    assert q.status_code == 201
    r = stage.client.post(f"/api/v1/exam-questions/{q.json()['id']}/retire", headers=stage.ops, json={})
    assert (r.status_code, r.json()["code"]) == (422, "reason_required")
