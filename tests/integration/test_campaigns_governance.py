"""Campaigns that hold on the day of service (issue 17): price tiers charged, a formed group called off,
cold chain before shipping, a late payment answered with a code. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select, update

from tuangou.campaigns import tiers
from tuangou.campaigns.models import CampaignMember, PurchaseList
from tuangou.core import ledger
from tuangou.core.db import UnitOfWork
from tuangou.disputes.models import Coupon, RecoveryClaim
from tuangou.orders import service as orders
from tuangou.orders.models import Refund, Voucher

from .campaign_stage import campaign_of, goods_deal, join, join_and_pay, open_campaign, staff


def _tiered_group(stage, paid: int = 2, **terms):
    """A ¥40 deal whose group of 2 costs ¥30 a unit; `paid` buyers joined and paid ¥40 each."""
    _, merchant = stage.merchant()
    deal = goods_deal(stage, merchant, price_cents=4000)
    camp = open_campaign(stage, merchant, deal_id=deal, threshold=2, max_size=3, price_tiers=[[2, 3000]], **terms)
    buyers = [stage.buyer() for _ in range(paid)]
    order_ids = [join_and_pay(stage, b, camp["id"])["id"] for b in buyers]
    return camp, merchant, buyers, order_ids


def _refunds_of(stage, order_ids):
    with UnitOfWork(stage.db) as uow:
        return list(uow.session.scalars(select(Refund).where(Refund.order_id.in_(order_ids))))


def test_a_group_formed_at_a_tier_charges_the_tier_and_refunds_the_difference_once(any_stage):
    stage = any_stage
    # given two buyers who each paid ¥40 into a group whose tier of 2 is ¥30
    camp, _, buyers, order_ids = _tiered_group(stage)
    formed = campaign_of(stage, camp["id"])
    assert formed["status"] == "formed" and formed["final_price_cents"] == 3000
    # when the worker runs (twice) and the refund job pays
    stage.tick("campaigns")
    stage.tick("campaigns")
    stage.tick("orders")
    # then each buyer got exactly ¥10 back, once, and their vouchers now cost ¥30
    refunds = _refunds_of(stage, order_ids)
    assert Counter(r.order_id for r in refunds) == Counter({o: 1 for o in order_ids})
    assert all(r.amount_cents == 1000 and r.status == "succeeded" and r.key.startswith("tier:") for r in refunds)
    assert len(stage.gateway._refunds) == 2
    with UnitOfWork(stage.db) as uow:
        assert set(uow.session.scalars(select(Voucher.price_cents).where(Voucher.order_id.in_(order_ids)))) == {3000}
        assert ledger.total(uow.session) == 0
        assert ledger.balance(uow.session, ledger.ESCROW) == 2 * 3000
        assert ledger.balance(uow.session, orders.REFUNDS_PAYABLE) == 0
    inbox = stage.client.get("/api/v1/inbox?kind=campaign_tier_refund", headers=buyers[0]).json()["items"]
    assert len(inbox) == 1 and inbox[0]["data"]["amount_cents"] == 1000


def test_refunding_the_difference_twice_refunds_once(any_stage):
    stage = any_stage
    # given a tiered group whose difference was refunded
    camp, _, _, order_ids = _tiered_group(stage)
    stage.tick("campaigns")
    # when the step runs again as if it had never marked its members (a lost commit, a second worker)
    with UnitOfWork(stage.db) as uow:
        uow.session.execute(update(CampaignMember).values(price_settled_at=None))
        uow.commit()
    assert tiers.refund_tier_differences(UnitOfWork(stage.db, stage.clock)) == 2
    stage.tick("campaigns")
    stage.tick("orders")
    # then each order still has one refund of the difference
    refunds = _refunds_of(stage, order_ids)
    assert sorted(r.amount_cents for r in refunds) == [1000, 1000]
    assert len(stage.gateway._refunds) == 2


def test_a_worker_killed_mid_way_through_tier_refunds_finishes_on_restart(any_stage, monkeypatch):
    stage = any_stage
    camp, _, _, order_ids = _tiered_group(stage)
    real = orders.reprice_in_uow
    calls = []

    def dies_on_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("worker killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(orders, "reprice_in_uow", dies_on_second)
    with pytest.raises(RuntimeError):
        tiers.refund_tier_differences(UnitOfWork(stage.db, stage.clock))
    assert len(_refunds_of(stage, order_ids)) == 1
    monkeypatch.setattr(orders, "reprice_in_uow", real)
    stage.tick("campaigns")
    stage.tick("orders")
    refunds = _refunds_of(stage, order_ids)
    assert Counter(r.order_id for r in refunds) == Counter({o: 1 for o in order_ids})
    assert all(r.status == "succeeded" and r.amount_cents == 1000 for r in refunds)


def test_a_payment_after_entry_closed_is_refused_with_a_code_and_refunded_once(any_stage):
    stage = any_stage
    # given a group of 1 that a second buyer joined but had not paid when it formed
    _, merchant = stage.merchant()
    camp = open_campaign(stage, merchant, threshold=1, max_size=3)
    slow = stage.buyer()
    slow_order = join(stage, slow, camp["id"]).json()["order"]
    join_and_pay(stage, stage.buyer(), camp["id"])
    before = campaign_of(stage, camp["id"])
    # when the slow buyer pays, and retries
    paid = stage.client.post(f"/api/v1/orders/{slow_order['id']}/pay", headers=slow, json={"outcome": "succeed"})
    again = stage.client.post(f"/api/v1/orders/{slow_order['id']}/pay", headers=slow, json={"outcome": "succeed"})
    # then both answers are 409 campaign_entry_closed, the money is refunded once, the group is unchanged
    for r in (paid, again):
        assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "campaign_entry_closed" and r.json()["refunded_cents"] == 1000
    stage.tick("orders")
    refunds = _refunds_of(stage, [slow_order["id"]])
    assert [(r.amount_cents, r.status) for r in refunds] == [(1000, "succeeded")]
    after = campaign_of(stage, camp["id"])
    assert (after["paid_count"], after["joined_count"], after["status"]) == (
        before["paid_count"], before["joined_count"], before["status"])
    with UnitOfWork(stage.db) as uow:
        assert uow.session.scalar(select(PurchaseList.lines))[0]["quantity"] == 1
        assert ledger.total(uow.session) == 0


def test_an_unbooked_cold_chain_stops_shipping(any_stage):
    stage = any_stage
    _, merchant = stage.merchant()
    supplier_id, supplier = staff(stage, "supplier")
    camp = open_campaign(stage, merchant, threshold=1, cold_chain=True, supplier_id=supplier_id)
    join_and_pay(stage, stage.buyer(), camp["id"])

    def advance(to):
        return stage.client.post(f"/api/v1/campaigns/{camp['id']}/advance", headers=supplier, json={"to": to})

    assert advance("procuring").status_code == 200
    # when the supplier tries to ship before the cold chain is booked
    refused = advance("shipping")
    # then it is refused with a stable code and the campaign stays in procurement
    assert refused.status_code == 409 and refused.json()["code"] == "cold_chain_unbooked"
    assert campaign_of(stage, camp["id"])["status"] == "procuring"
    r = stage.client.post(f"/api/v1/campaigns/{camp['id']}/cold-chain-booking", headers=supplier,
                          json={"reference": "SF-COLD-7"})
    assert r.status_code == 200
    assert advance("shipping").json()["status"] == "shipping"


def test_a_formed_group_that_cannot_be_delivered_is_called_off_refunded_and_compensated(any_stage):
    stage = any_stage
    # given a formed group of 2 with a supplier and a leader
    _, merchant = stage.merchant()
    supplier_id, supplier = staff(stage, "supplier")
    leader_id, leader = staff(stage, "leader")
    camp = open_campaign(stage, merchant, threshold=2, max_size=2, supplier_id=supplier_id, leader_id=leader_id)
    buyers = [stage.buyer() for _ in range(2)]
    order_ids = [join_and_pay(stage, b, camp["id"])["id"] for b in buyers]
    url = f"/api/v1/campaigns/{camp['id']}/cancel"
    # then the leader may not, a reason is required, and ops must name who is responsible
    assert stage.client.post(url, headers=leader, json={"reason": "x"}).json()["code"] == "cancel_not_allowed"
    empty = stage.client.post(url, headers=supplier, json={"reason": "  "})
    assert empty.status_code == 422 and empty.json()["code"] == "reason_required"
    unnamed = stage.client.post(url, headers=stage.ops, json={"reason": "no stock"})
    assert unnamed.status_code == 422 and unnamed.json()["code"] == "responsible_party_invalid"
    # when the supplier calls it off
    r = stage.client.post(url, headers=supplier, json={"reason": "the harvest failed"})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["responsible_party"]) == ("cancelled", "supplier")
    again = stage.client.post(url, headers=merchant, json={"reason": "again"})
    assert again.status_code == 409 and again.json()["code"] == "campaign_not_cancellable"
    stage.tick("campaigns")
    stage.tick("campaigns")
    stage.tick("orders")
    # then every participant got the full price back once, a ¥5 coupon the merchant is charged for, and a message
    refunds = _refunds_of(stage, order_ids)
    assert Counter(r.order_id for r in refunds) == Counter({o: 1 for o in order_ids})
    assert all(r.amount_cents == 1000 and r.status == "succeeded" for r in refunds)
    with UnitOfWork(stage.db) as uow:
        coupons = list(uow.session.scalars(select(Coupon).where(Coupon.ref.like(f"campaign:{camp['id']}:%"))))
        assert sorted(c.value for c in coupons) == [500, 500] and {c.origin for c in coupons} == {"compensation"}
        claims = list(uow.session.scalars(select(RecoveryClaim)))
        assert sorted(c.amount_cents for c in claims) == [500, 500]
        assert {c.merchant_id for c in claims} == {camp["merchant_id"]}
        assert ledger.total(uow.session) == 0 and ledger.balance(uow.session, ledger.ESCROW) == 0
    for b in buyers:
        msgs = stage.client.get("/api/v1/inbox?kind=campaign_cancelled", headers=b).json()["items"]
        assert len(msgs) == 1 and msgs[0]["data"]["responsible_party"] == "supplier"
        assert msgs[0]["data"]["refund_cents"] == 1000 and msgs[0]["data"]["coupon_cents"] == 500
    mine = stage.client.get("/api/v1/campaigns/participations", headers=buyers[0]).json()["items"][0]
    assert mine["campaign_status"] == "cancelled"


def test_only_a_formed_group_not_yet_delivered_can_be_called_off(any_stage):
    stage = any_stage
    _, merchant = stage.merchant()
    _, other = stage.merchant("Other")
    camp = open_campaign(stage, merchant, threshold=2)
    join_and_pay(stage, stage.buyer(), camp["id"])  # still collecting
    url = f"/api/v1/campaigns/{camp['id']}/cancel"
    r = stage.client.post(url, headers=merchant, json={"reason": "changed plans"})
    assert r.status_code == 409 and r.json()["code"] == "campaign_not_cancellable"
    assert stage.client.post(url, headers=other, json={"reason": "x"}).status_code == 404
    assert stage.client.post(url, headers=stage.buyer(), json={"reason": "x"}).status_code in (403, 404)
    # ops name the merchant as responsible once the group formed
    join_and_pay(stage, stage.buyer(), camp["id"])
    r = stage.client.post(url, headers=stage.ops, json={"reason": "store closed", "responsible": "merchant"})
    assert r.status_code == 200 and r.json()["responsible_party"] == "merchant"
    assert campaign_of(stage, camp["id"])["cancel_reason"] == "store closed"
