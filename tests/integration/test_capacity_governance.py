"""Capacity governance over HTTP: audits, policy, cap changes, change requests, stock counts, disruptions."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import select

from tuangou.core.db import UnitOfWork
from tuangou.core.outbox import OutboxEvent
from tuangou.governance import service as governance

MILK_TEA = {"opens": "10:00", "closes": "20:00", "machines": [{"name": "sealing machine", "per_hour": 100}]}


def events(stage, type_):
    with UnitOfWork(stage.db, stage.clock) as uow:
        return [e.payload for e in uow.session.scalars(select(OutboxEvent).where(OutboxEvent.type == type_))]


def cap_of(stage, deal, key):
    return {b["key"]: b for b in stage.client.get(f"/api/v1/deals/{deal}/calendar").json()["items"]}[key]


def today(stage):
    return (stage.clock.now() + timedelta(hours=8)).date().isoformat()


def test_large_promotion_needs_an_approved_audit_and_the_inspection_sets_the_cap(stage):
    # given a milk-tea shop that declares 100 cups an hour and a buy-one-get-one deal of 1000 a day
    _, merchant = stage.merchant("Cha Ji")
    store = stage.store(merchant, category="beverage")
    assert stage.client.put(f"/api/v1/stores/{store}/capacity-declaration", headers=merchant,
                            json=MILK_TEA).json()["bottleneck"]["cap"] == 1000
    deal = stage.deal(merchant, store, publish=False, daily_cap=1000, large_promotion=True)
    # when the merchant publishes without an audit, it is refused and nothing changes
    r = stage.client.post(f"/api/v1/deals/{deal}/publish", headers=merchant)
    assert r.status_code == 409 and r.json()["code"] == "capacity_audit_required"
    assert stage.client.get(f"/api/v1/deals/{deal}", headers=merchant).json()["status"] == "draft"
    # when the merchant files an audit and ops inspect: one sealing machine doing 40 an hour
    audit = stage.client.post(f"/api/v1/deals/{deal}/capacity-audits", headers=merchant).json()
    assert audit["status"] == "pending"
    assert stage.client.post(f"/api/v1/capacity-audits/{audit['id']}/approve", headers=merchant,
                             json={"reason": "me"}).status_code == 403
    r = stage.client.post(f"/api/v1/capacity-audits/{audit['id']}/inspection", headers=stage.ops, json={
        "findings": {"machines": [{"name": "sealing machine", "per_hour": 40}]}, "note": "one sealer, slow",
        "reason": "on-site visit"})
    assert r.status_code == 200 and r.json()["bottleneck_preview"]["cap"] == 400
    r = stage.client.post(f"/api/v1/capacity-audits/{audit['id']}/approve", headers=stage.ops,
                          json={"reason": "inspected"})
    assert r.status_code == 200 and (r.json()["approved_cap"], r.json()["decided_by"]) == (400, 1)
    # then the deal publishes with 400 a day, and the decision is in the audit log
    assert stage.client.post(f"/api/v1/deals/{deal}/publish", headers=merchant).status_code == 200
    assert cap_of(stage, deal, today(stage))["cap"] == 400
    log = stage.client.get("/api/v1/audit", headers=stage.ops).json()["items"]
    assert {"approve_capacity_audit", "record_inspection"} <= {e["action"] for e in log}
    assert stage.client.post(f"/api/v1/capacity-audits/{audit['id']}/reject", headers=stage.ops,
                             json={"reason": "again"}).json()["code"] == "audit_decided"


def test_policy_is_data_ops_change_it_with_a_reason(stage):
    _, merchant = stage.merchant()
    assert stage.client.get("/api/v1/governance-policy", headers=merchant).json()["warn_remaining"] == 10
    assert stage.client.put("/api/v1/governance-policy", headers=merchant,
                            json={"changes": {"warn_remaining": 3}, "reason": "x"}).status_code == 403
    bad = stage.client.put("/api/v1/governance-policy", headers=stage.ops,
                           json={"changes": {"red_flag_percent": 300}, "reason": "x"})
    assert bad.status_code == 422
    assert stage.client.put("/api/v1/governance-policy", headers=stage.ops,
                            json={"changes": {"warn_remaining": "ten"}, "reason": "x"}).status_code == 422
    r = stage.client.put("/api/v1/governance-policy", headers=stage.ops,
                         json={"changes": {"safe_sales_ratio": 0.5}, "reason": "cautious season"})
    assert r.status_code == 200 and r.json()["safe_sales_ratio"] == 0.5
    calc = stage.client.get("/api/v1/safe-sales", params={"daily_reception": 100, "activity_days": 5}).json()
    assert calc["safe_sales"] == 250
    assert any(e["action"] == "set_governance_policy" for e in
               stage.client.get("/api/v1/audit", headers=stage.ops).json()["items"])


def test_safe_sales_from_a_store_declaration(stage):
    _, merchant = stage.merchant()
    store = stage.store(merchant)
    stage.client.put(f"/api/v1/stores/{store}/capacity-declaration", headers=merchant,
                     json={"max_reception_per_day": 100})
    r = stage.client.get(f"/api/v1/stores/{store}/safe-sales", headers=merchant, params={"activity_days": 5})
    assert r.json()["safe_sales"] == 400
    _, other = stage.merchant("Other")
    assert stage.client.get(f"/api/v1/stores/{store}/safe-sales", headers=other,
                            params={"activity_days": 5}).status_code == 403


def test_merchant_raise_needs_a_change_request_decrease_applies_at_once(stage):
    _, merchant = stage.merchant()
    _, other = stage.merchant("Other")
    deal = stage.deal(merchant, stage.store(merchant), daily_cap=20)
    day = today(stage)
    r = stage.client.put(f"/api/v1/deals/{deal}/capacity", headers=merchant, json={"service_date": day, "cap": 30})
    assert r.status_code == 409 and r.json()["code"] == "change_request_required"
    assert "inventory-change-requests" in r.json()["detail"]
    r = stage.client.put(f"/api/v1/deals/{deal}/capacity", headers=merchant, json={"service_date": day, "cap": 15})
    assert r.status_code == 200 and cap_of(stage, deal, day)["cap"] == 15
    # a raise back to 20 is a raise too
    assert stage.client.put(f"/api/v1/deals/{deal}/capacity", headers=merchant,
                            json={"service_date": day, "cap": 20}).status_code == 409
    # when the merchant files a change request with evidence
    photo = b"\x89PNG purchase order for 100 portions"
    r = stage.client.post(f"/api/v1/deals/{deal}/inventory-change-requests", headers=merchant,
                          data={"bucket": day, "requested_cap": "40", "reason": "bought more beef"},
                          files={"evidence": ("po.png", photo, "image/png")})
    assert r.status_code == 201, r.text
    req = r.json()
    assert req["evidence"]["sha256"] == hashlib.sha256(photo).hexdigest() and req["current_cap"] == 15
    assert stage.client.get(f"{req['evidence']['url']}", headers=merchant).content == photo
    assert stage.client.get(f"{req['evidence']['url']}", headers=other).status_code == 404
    assert stage.client.get("/api/v1/inventory-change-requests", headers=other).json()["items"] == []
    # the cap has not moved until ops approve
    assert cap_of(stage, deal, day)["cap"] == 15
    assert stage.client.post(f"/api/v1/inventory-change-requests/{req['id']}/decision", headers=merchant,
                             json={"decision": "approve", "reason": "x"}).status_code == 403
    r = stage.client.post(f"/api/v1/inventory-change-requests/{req['id']}/decision", headers=stage.ops,
                          json={"decision": "approve", "reason": "purchase order checked"})
    assert r.status_code == 200 and r.json()["status"] == "approved"
    assert cap_of(stage, deal, day)["cap"] == 40
    again = stage.client.post(f"/api/v1/inventory-change-requests/{req['id']}/decision", headers=stage.ops,
                              json={"decision": "reject", "reason": "late"})
    assert again.json()["code"] == "request_decided"


def test_change_request_without_evidence_or_not_a_raise_is_refused(stage):
    _, merchant = stage.merchant()
    deal = stage.deal(merchant, stage.store(merchant), daily_cap=20)
    url = f"/api/v1/deals/{deal}/inventory-change-requests"
    r = stage.client.post(url, headers=merchant, data={"bucket": today(stage), "requested_cap": "10",
                                                       "reason": "x"}, files={"evidence": ("a.txt", b"x")})
    assert r.json()["code"] == "not_an_increase"
    r = stage.client.post(url, headers=merchant, data={"bucket": today(stage), "requested_cap": "30", "reason": "x"},
                          files={"evidence": ("a.txt", b"")})
    assert r.json()["code"] == "evidence_required"
    assert stage.client.get("/api/v1/inventory-change-requests", headers=merchant).json()["items"] == []


def test_false_claim_is_a_violation_and_changes_no_cap(stage):
    _, merchant = stage.merchant()
    deal = stage.deal(merchant, stage.store(merchant), daily_cap=20)
    req = stage.client.post(f"/api/v1/deals/{deal}/inventory-change-requests", headers=merchant,
                            data={"bucket": today(stage), "requested_cap": "200", "reason": "trust me"},
                            files={"evidence": ("po.jpg", b"photoshopped", "image/jpeg")}).json()
    r = stage.client.post(f"/api/v1/inventory-change-requests/{req['id']}/decision", headers=stage.ops,
                          json={"decision": "false_claim", "reason": "the purchase order is forged"})
    assert r.status_code == 200 and r.json()["status"] == "false_claim"
    assert cap_of(stage, deal, today(stage))["cap"] == 20
    assert [(v["kind"], v["ref"]) for v in events(stage, "ViolationRecorded")] == [
        ("false_claim", f"change_request:{req['id']}")]
    assert any(e["action"] == "false_claim_change_request" and e["reason"] == "the purchase order is forged"
               for e in stage.client.get("/api/v1/audit", headers=stage.ops).json()["items"])


def test_decrease_below_sold_with_no_other_date_refunds_and_compensates(any_stage):
    stage = any_stage
    # given a deal valid only today, sold 3 + 2
    _, merchant = stage.merchant()
    deal = stage.deal(merchant, stage.store(merchant), daily_cap=5,
                      valid_until=(stage.clock.now() + timedelta(hours=6)).isoformat())
    first, second = stage.buyer(), stage.buyer()
    stage.paid_order(first, deal, 3)
    newest = stage.paid_order(second, deal, 2)
    # when the merchant lowers today's cap to 3
    r = stage.client.put(f"/api/v1/deals/{deal}/capacity", headers=merchant,
                         json={"service_date": today(stage), "cap": 3, "reason": "one cook only"})
    assert r.status_code == 200, r.text
    # then the newest order is refunded with a coupon, and the older keeps its day
    assert r.json()["sold"] == 3 and r.json()["cap"] == 3
    order = stage.client.get(f"/api/v1/orders/{newest['id']}", headers=second).json()
    assert order["status"] == "refunded"
    notice = stage.client.get("/api/v1/inbox", headers=second, params={"kind": "oversale_compensation"}).json()
    assert notice["items"][0]["data"]["refund_cents"] == 2000
    assert stage.client.get("/api/v1/inbox", headers=first, params={"kind": "oversale_compensation"}
                            ).json()["items"] == []
    with UnitOfWork(stage.db, stage.clock) as uow:
        incident = governance.oversale_incident_for_order(uow, newest["id"])
    assert incident is not None and incident["ref"] == f"incident:{incident['id']}"
    assert incident["deal_id"] == deal and incident["order_id"] == newest["id"]
    assert incident["category"] == "catering"
    # and the platform's ¥5 coupon is booked against the merchant that sold what it could not serve (A7)
    claims = stage.client.get("/api/v1/recovery-claims", headers=merchant).json()
    assert [(c["amount_cents"], c["status"]) for c in claims["items"]] == [(500, "open")]
    assert claims["items"][0]["ref"].startswith("coupon:")


def test_stock_counts_show_the_difference_and_alert_when_low(stage):
    _, merchant = stage.merchant()
    deal = stage.deal(merchant, stage.store(merchant, category="fresh"), kind="goods", stock=50, daily_cap=None)
    stage.paid_order(stage.buyer(), deal, 5)
    # the count finds 8 on the shelf where 45 are online
    r = stage.client.post(f"/api/v1/deals/{deal}/stock-counts", headers=merchant, json={"counted": 8, "note": "spoilt"})
    assert r.status_code == 201 and (r.json()["online"], r.json()["difference"]) == (45, -37)
    # then the online stock follows at once and the merchant is alerted
    listing = stage.client.get(f"/api/v1/deals/{deal}/stock-counts", headers=merchant).json()
    assert listing["online"] == 8 and listing["items"][0]["difference"] == -37
    assert stage.client.get("/api/v1/inbox", headers=merchant, params={"kind": "low_stock"}).json()["items"]
    # a larger count is shown but not applied: raising stock needs a change request
    r = stage.client.post(f"/api/v1/deals/{deal}/stock-counts", headers=merchant, json={"counted": 20})
    assert r.json()["difference"] == 12
    assert stage.client.get(f"/api/v1/deals/{deal}/stock-counts", headers=merchant).json()["online"] == 8
    # the restock goes through a change request on the stock bucket
    req = stage.client.post(f"/api/v1/deals/{deal}/inventory-change-requests", headers=merchant,
                            data={"bucket": "stock", "requested_cap": "25", "reason": "found 12 in the back room"},
                            files={"evidence": ("count.jpg", b"photo of the shelf", "image/jpeg")}).json()
    assert req["current_cap"] == 13
    stage.client.post(f"/api/v1/inventory-change-requests/{req['id']}/decision", headers=stage.ops,
                      json={"decision": "approve", "reason": "matches the count"})
    assert stage.client.get(f"/api/v1/deals/{deal}/stock-counts", headers=merchant).json()["online"] == 20


def test_disruption_lowers_and_its_end_restores_the_cap_and_factors_apply(stage):
    _, merchant = stage.merchant()
    store = stage.store(merchant)
    # Monday today; Saturday turnover is 2x, but never beyond the policy's 2x
    r = stage.client.put(f"/api/v1/stores/{store}/capacity-declaration", headers=merchant,
                         json={"max_reception_per_day": 40, "weekday_factors": {"5": 2.0}})
    assert r.status_code == 200
    assert stage.client.put(f"/api/v1/stores/{store}/capacity-declaration", headers=merchant,
                            json={"max_reception_per_day": 40, "weekday_factors": {"5": 3.0}}).status_code == 422
    deal = stage.deal(merchant, store, daily_cap=100)
    caps = stage.client.get(f"/api/v1/deals/{deal}/daily-caps", headers=merchant, params={"days": 7}).json()["items"]
    assert [c["cap"] for c in caps] == [40, 40, 40, 40, 40, 80, 40]
    dis = stage.client.post(f"/api/v1/stores/{store}/disruptions", headers=merchant,
                            json={"kind": "ingredients_short", "max_units": 12, "reason": "supplier late"}).json()
    assert cap_of(stage, deal, today(stage))["cap"] == 12
    assert cap_of(stage, deal, "2026-11-28")["cap"] == 12
    r = stage.client.post(f"/api/v1/disruptions/{dis['id']}/end", headers=merchant, json={"reason": "delivered"})
    assert r.status_code == 200
    assert cap_of(stage, deal, today(stage))["cap"] == 40 and cap_of(stage, deal, "2026-11-28")["cap"] == 80
    assert stage.client.post(f"/api/v1/disruptions/{dis['id']}/end", headers=merchant,
                             json={"reason": "again"}).json()["code"] == "disruption_ended"
    _, other = stage.merchant("Other")
    assert stage.client.post(f"/api/v1/stores/{store}/disruptions", headers=other,
                             json={"kind": "other"}).status_code == 403


def test_suggestion_follows_each_stores_time_zone_and_the_policy_hour(stage):
    from datetime import UTC, datetime
    _, shanghai = stage.merchant("Shanghai")
    _, london = stage.merchant("London")
    stage.clock.set(datetime(2026, 11, 22, 20, 0, tzinfo=UTC))
    stage.deal(shanghai, stage.store(shanghai, tz="Asia/Shanghai"))
    stage.deal(london, stage.store(london, tz="Europe/London"))
    stage.client.put("/api/v1/governance-policy", headers=stage.ops,
                     json={"changes": {"suggestion_hour": 9}, "reason": "stores open later this season"})

    def suggested(who):
        return len(stage.client.get("/api/v1/inbox", headers=who, params={"kind": "stock_suggestion"}).json()["items"])

    # 08:30 in Shanghai: before the policy's 09:00
    stage.clock.set(datetime(2026, 11, 23, 0, 30, tzinfo=UTC))
    stage.tick("governance")
    assert (suggested(shanghai), suggested(london)) == (0, 0)
    # 09:30 in Shanghai, 01:30 in London
    stage.clock.set(datetime(2026, 11, 23, 1, 30, tzinfo=UTC))
    stage.tick("governance")
    assert (suggested(shanghai), suggested(london)) == (1, 0)
    # 09:05 in London
    stage.clock.set(datetime(2026, 11, 23, 9, 5, tzinfo=UTC))
    stage.tick("governance")
    stage.tick("governance")
    assert (suggested(shanghai), suggested(london)) == (1, 1)


def test_a_cap_cut_that_only_hits_unpaid_holds_cancels_the_newest_and_keeps_selling(stage):
    _, merchant = stage.merchant()
    store = stage.store(merchant)
    deal = stage.deal(merchant, store, daily_cap=8)
    paid_buyer, first, second = stage.buyer(), stage.buyer(), stage.buyer()
    stage.paid_order(paid_buyer, deal, 4)
    older = stage.order(first, deal, 2).json()
    newer = stage.order(second, deal, 2).json()
    # when a disruption leaves room for 6
    stage.client.post(f"/api/v1/stores/{store}/disruptions", headers=merchant,
                      json={"kind": "machine_broken", "max_units": 6, "reason": "oven down"})
    # then only the newest hold gives way; no incident, the deal stays on sale
    assert stage.client.get(f"/api/v1/orders/{newer['id']}", headers=second).json()["status"] == "cancelled"
    assert stage.client.get(f"/api/v1/orders/{older['id']}", headers=first).json()["status"] == "reserved"
    day = cap_of(stage, deal, today(stage))
    assert (day["cap"], day["sold"], day["reserved"]) == (6, 4, 2)
    assert stage.client.get("/api/v1/oversale-incidents", headers=merchant).json()["items"] == []
    assert stage.client.get(f"/api/v1/deals/{deal}", headers=merchant).json()["status"] == "published"
