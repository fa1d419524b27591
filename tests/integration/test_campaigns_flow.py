"""Group-buy campaigns over HTTP: join, threshold, purchase list, commission, stages, cut-offs."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from tuangou.campaigns.models import PurchaseList
from tuangou.core import ledger
from tuangou.core.audit import AuditEntry
from tuangou.core.db import UnitOfWork
from tuangou.core.outbox import OutboxEvent

from .campaign_stage import campaign_of, goods_deal, join, join_and_pay, open_campaign, staff


def test_threshold_forms_the_group_closes_entry_and_sends_one_purchase_list(stage):
    # given a campaign of threshold 3, max 5, with a leader and a supplier
    _, merchant = stage.merchant()
    leader_id, leader = staff(stage, "leader")
    supplier_id, supplier = staff(stage, "supplier")
    camp = open_campaign(stage, merchant, leader_id=leader_id, supplier_id=supplier_id,
                         leader_commission_cents=800)
    assert camp["status"] == "open" and camp["countdown"]["still_needed"] == 3
    # when two buyers join and pay
    for _ in range(2):
        join_and_pay(stage, stage.buyer(), camp["id"])
    # then the group is collecting and the countdown says one more is needed
    now = campaign_of(stage, camp["id"])
    assert now["status"] == "collecting" and now["countdown"]["still_needed"] == 1
    assert stage.client.get(f"/api/v1/campaigns/{camp['id']}/purchase-list", headers=supplier).status_code == 404
    # when the third pays
    join_and_pay(stage, stage.buyer(), camp["id"])
    # then it is formed, entry is closed and the supplier has exactly one purchase list
    formed = campaign_of(stage, camp["id"])
    assert formed["status"] == "formed" and formed["entry_closed_at"] is not None
    late = join(stage, stage.buyer(), camp["id"])
    assert late.status_code == 409 and late.json()["code"] == "campaign_closed"
    plist = stage.client.get(f"/api/v1/campaigns/{camp['id']}/purchase-list", headers=supplier).json()
    assert plist["lines"] == [{"product": "Deal", "pickup_point": "Building 3 lobby", "quantity": 3,
                               "participants": 3}]
    inbox = stage.client.get("/api/v1/inbox", headers=supplier).json()["items"]
    assert [m["kind"] for m in inbox] == ["purchase_list"]
    # and the leader's commission is booked once in the ledger
    summary = stage.client.get("/api/v1/campaigns/led", headers=leader).json()
    assert summary["commission_earned_cents"] == 800 and summary["formed"] == 1
    with UnitOfWork(stage.db) as uow:
        types = list(uow.session.scalars(select(OutboxEvent.type)))
        assert types.count("PurchaseListGenerated") == 1 and types.count("CampaignFormed") == 1
        assert ledger.balance(uow.session, ledger.REVENUE) == -800
        assert ledger.total(uow.session) == 0


def test_a_buyer_joins_once(stage):
    _, merchant = stage.merchant()
    camp = open_campaign(stage, merchant)
    buyer = stage.buyer()
    first = join(stage, buyer, camp["id"])
    again_same_key = join(stage, buyer, camp["id"], key=first.request.headers["Idempotency-Key"])
    second = join(stage, buyer, camp["id"])
    assert first.status_code == 201 and again_same_key.status_code == 200
    assert second.status_code == 409 and second.json()["code"] == "already_joined"
    assert campaign_of(stage, camp["id"])["joined_count"] == 1


def test_an_abandoned_join_gives_its_place_back_and_the_buyer_may_join_again(stage):
    _, merchant = stage.merchant()
    camp = open_campaign(stage, merchant, threshold=1, max_size=1)
    buyer = stage.buyer()
    assert join(stage, buyer, camp["id"]).status_code == 201
    assert join(stage, stage.buyer(), camp["id"]).json()["code"] == "group_full"
    stage.clock.advance(timedelta(minutes=16))
    stage.tick("orders", "campaigns")  # orders expires the reservation...
    stage.tick("campaigns")  # ...then campaigns gives the place back
    assert campaign_of(stage, camp["id"])["joined_count"] == 0
    assert join(stage, buyer, camp["id"]).status_code == 201


def test_joining_directly_through_orders_obeys_the_campaign(stage):
    _, merchant = stage.merchant()
    camp = open_campaign(stage, merchant, threshold=1, max_size=1)
    assert stage.order(stage.buyer(), camp["deal_id"]).status_code == 201
    refused = stage.order(stage.buyer(), camp["deal_id"])
    assert refused.status_code == 409 and refused.json()["code"] == "group_full"


def test_no_join_after_the_fresh_cut_off(stage):
    # given delivery in 30 h and 12 h of logistics preparation: cut-off in 18 h, before the 24 h deadline
    _, merchant = stage.merchant()
    now = stage.clock.now()
    camp = open_campaign(stage, merchant, delivery_at=(now + timedelta(hours=30)).isoformat())
    assert camp["cutoff_at"] == (now + timedelta(hours=18)).isoformat()
    assert join(stage, stage.buyer(), camp["id"]).status_code == 201
    stage.clock.advance(timedelta(hours=18))
    late = join(stage, stage.buyer(), camp["id"])
    assert late.status_code == 409 and late.json()["code"] == "past_cutoff"
    assert campaign_of(stage, camp["id"])["countdown"]["seconds_left"] == 0


def test_stay_open_group_fills_up_to_the_maximum_then_lists_everyone(stage):
    _, merchant = stage.merchant()
    supplier_id, supplier = staff(stage, "supplier")
    camp = open_campaign(stage, merchant, threshold=2, max_size=3, close_on_threshold=False,
                         supplier_id=supplier_id)
    for _ in range(2):
        join_and_pay(stage, stage.buyer(), camp["id"])
    assert campaign_of(stage, camp["id"])["status"] == "formed"
    assert campaign_of(stage, camp["id"])["entry_closed_at"] is None
    join_and_pay(stage, stage.buyer(), camp["id"])
    plist = stage.client.get(f"/api/v1/campaigns/{camp['id']}/purchase-list", headers=supplier).json()
    assert plist["lines"][0]["quantity"] == 3
    assert join(stage, stage.buyer(), camp["id"]).json()["code"] in ("campaign_closed", "group_full")


def test_payment_arriving_after_entry_closed_is_refunded_not_listed(stage):
    _, merchant = stage.merchant()
    camp = open_campaign(stage, merchant, threshold=1, max_size=3)
    slow = stage.buyer()
    slow_order = join(stage, slow, camp["id"]).json()["order"]
    join_and_pay(stage, stage.buyer(), camp["id"])  # forms and closes entry
    paid = stage.client.post(f"/api/v1/orders/{slow_order['id']}/pay", headers=slow, json={"outcome": "succeed"})
    assert paid.status_code == 409 and paid.json()["code"] == "campaign_entry_closed"
    stage.tick("orders")
    assert "refund_done" in [m["kind"] for m in stage.client.get("/api/v1/inbox", headers=slow).json()["items"]]
    with UnitOfWork(stage.db) as uow:
        assert uow.session.scalar(select(func.count()).select_from(PurchaseList)) == 1
        assert uow.session.scalar(select(PurchaseList.lines))[0]["quantity"] == 1


def test_stages_have_owners_and_the_buyer_sees_progress(stage):
    _, merchant = stage.merchant()
    leader_id, leader = staff(stage, "leader")
    supplier_id, supplier = staff(stage, "supplier")
    camp = open_campaign(stage, merchant, threshold=1, leader_id=leader_id, supplier_id=supplier_id)
    buyer = stage.buyer()
    join_and_pay(stage, buyer, camp["id"])

    def advance(who, to):
        return stage.client.post(f"/api/v1/campaigns/{camp['id']}/advance", headers=who, json={"to": to})

    assert advance(leader, "procuring").status_code == 403  # procurement belongs to merchant or supplier
    assert advance(supplier, "shipping").json()["code"] == "invalid_transition"
    assert advance(supplier, "procuring").json()["next_stage_due_at"] is not None
    assert advance(supplier, "shipping").status_code == 200
    assert advance(leader, "delivered").status_code == 200
    buyer_id = stage.client.get("/api/v1/me", headers=buyer).json()["id"]
    r = stage.client.post(f"/api/v1/campaigns/{camp['id']}/members/{buyer_id}/collect", headers=leader)
    assert r.status_code == 200
    assert advance(merchant, "closed").json()["status"] == "closed"
    mine = stage.client.get("/api/v1/campaigns/participations", headers=buyer).json()["items"]
    steps = {s["step"]: s["done"] for s in mine[0]["progress"]}
    assert steps == {"joined": True, "paid": True, "group_formed": True, "procured": True, "shipped": True,
                     "at_pickup": True, "collected": True}
    assert all(s["at"] for s in mine[0]["progress"])


def test_unbooked_cold_chain_alerts_owner_and_ops_48h_before_delivery(stage):
    _, merchant = stage.merchant()
    now = stage.clock.now()
    camp = open_campaign(stage, merchant, cold_chain=True, delivery_at=(now + timedelta(hours=60)).isoformat())
    booked = open_campaign(stage, merchant, cold_chain=True, delivery_at=(now + timedelta(hours=60)).isoformat())
    r = stage.client.post(f"/api/v1/campaigns/{booked['id']}/cold-chain-booking", headers=merchant,
                          json={"reference": "SF-COLD-1"})
    assert r.status_code == 200 and r.json()["cold_chain_booked_at"]
    stage.tick("campaigns")
    assert stage.client.get("/api/v1/inbox?kind=cold_chain_unbooked", headers=merchant).json()["items"] == []
    stage.clock.advance(timedelta(hours=11))
    stage.tick("campaigns")
    assert stage.client.get("/api/v1/inbox?kind=cold_chain_unbooked", headers=merchant).json()["items"] == []
    stage.clock.advance(timedelta(hours=1))  # now exactly 48 h before delivery
    stage.tick("campaigns")
    stage.tick("campaigns")
    for who in (merchant, stage.ops):
        alerts = stage.client.get("/api/v1/inbox?kind=cold_chain_unbooked", headers=who).json()["items"]
        assert [a["data"]["campaign_id"] for a in alerts] == [camp["id"]]


def test_procurement_queue_puts_the_tightest_cut_off_first(stage):
    _, merchant = stage.merchant()
    now = stage.clock.now()
    later = open_campaign(stage, merchant, threshold=1, delivery_at=(now + timedelta(hours=80)).isoformat())
    sooner = open_campaign(stage, merchant, threshold=1, delivery_at=(now + timedelta(hours=40)).isoformat())
    for c in (later, sooner):
        join_and_pay(stage, stage.buyer(), c["id"])
    queue = stage.client.get("/api/v1/campaigns/procurement-queue", headers=merchant).json()["items"]
    assert [c["id"] for c in queue] == [sooner["id"], later["id"]]


def test_ops_change_the_policy_with_a_reason_and_it_is_audited(stage):
    r = stage.client.put("/api/v1/campaign-policy", headers=stage.ops, json={"logistics_prep_hours": 6})
    assert r.status_code == 422
    r = stage.client.put("/api/v1/campaign-policy", headers=stage.ops,
                         json={"logistics_prep_hours": 6, "cold_chain_lead_hours": 72, "reason": "new carrier"})
    assert r.status_code == 200 and r.json()["cold_chain_lead_hours"] == 72
    assert stage.client.get("/api/v1/campaign-policy").json()["logistics_prep_hours"] == 6
    bad = stage.client.put("/api/v1/campaign-policy", headers=stage.ops,
                           json={"pool_warn_percents": [150], "reason": "typo"})
    assert bad.status_code == 422
    _, merchant = stage.merchant()
    assert stage.client.put("/api/v1/campaign-policy", headers=merchant,
                            json={"logistics_prep_hours": 1, "reason": "x"}).status_code == 403
    with UnitOfWork(stage.db) as uow:
        assert uow.session.scalar(select(AuditEntry.reason).where(AuditEntry.action == "set_campaign_policy")
                                  ) == "new carrier"


def test_bad_campaigns_are_refused_with_clear_4xx(stage):
    _, merchant = stage.merchant()
    _, other = stage.merchant("Other")
    now = stage.clock.now()
    deal = goods_deal(stage, merchant)
    base = {"deal_id": deal, "threshold": 3, "max_size": 5, "deadline": (now + timedelta(hours=24)).isoformat(),
            "delivery_at": (now + timedelta(hours=72)).isoformat(), "pickup_point": "Lobby"}
    assert stage.client.post("/api/v1/campaigns", headers=merchant, json={**base, "max_size": 2}).status_code == 422
    assert stage.client.post("/api/v1/campaigns", headers=merchant,
                             json={**base, "deadline": (now - timedelta(hours=1)).isoformat()}).status_code == 422
    assert stage.client.post("/api/v1/campaigns", headers=merchant, json={**base, "leader_id": 1}).status_code == 422
    assert stage.client.post("/api/v1/campaigns", headers=other, json=base).status_code == 403
    voucher_deal = stage.deal(merchant, stage.store(merchant))
    assert stage.client.post("/api/v1/campaigns", headers=merchant,
                             json={**base, "deal_id": voucher_deal}).status_code == 422
    assert stage.client.post("/api/v1/campaigns", headers=merchant, json=base).status_code == 201
    dup = stage.client.post("/api/v1/campaigns", headers=merchant, json=base)
    assert dup.status_code == 409 and dup.json()["code"] == "deal_in_campaign"
    assert stage.client.get("/api/v1/campaigns/999").status_code == 404
    assert stage.client.post("/api/v1/campaigns/999/join", headers={**stage.buyer(), "Idempotency-Key": "k"}
                             ).status_code == 404


def test_a_buyer_who_refunds_while_the_group_collects_leaves_it(stage):
    _, merchant = stage.merchant()
    camp = open_campaign(stage, merchant, threshold=3, max_size=3)
    buyer = stage.buyer()
    order = join_and_pay(stage, buyer, camp["id"])
    assert campaign_of(stage, camp["id"])["paid_count"] == 1
    r = stage.client.post(f"/api/v1/orders/{order['id']}/refund", headers=buyer, json={"reason": "changed mind"})
    assert r.status_code == 200
    stage.tick("campaigns")
    left = campaign_of(stage, camp["id"])
    assert (left["paid_count"], left["joined_count"]) == (0, 0)
    assert join(stage, buyer, camp["id"]).status_code == 201  # and may come back


def test_a_stage_past_its_sla_alerts_its_owners_and_ops_once(stage):
    _, merchant = stage.merchant()
    supplier_id, supplier = staff(stage, "supplier")
    camp = open_campaign(stage, merchant, threshold=1, supplier_id=supplier_id)
    join_and_pay(stage, stage.buyer(), camp["id"])  # formed: procurement is due within 24 h
    stage.clock.advance(timedelta(hours=23))
    stage.tick("campaigns")
    assert stage.client.get("/api/v1/inbox?kind=campaign_sla_missed", headers=supplier).json()["items"] == []
    stage.clock.advance(timedelta(hours=1))
    stage.tick("campaigns")
    stage.tick("campaigns")
    for who in (merchant, supplier, stage.ops):
        alerts = stage.client.get("/api/v1/inbox?kind=campaign_sla_missed", headers=who).json()["items"]
        assert [a["data"]["next"] for a in alerts] == ["procuring"]
    assert campaign_of(stage, camp["id"])["sla_missed"] is True
