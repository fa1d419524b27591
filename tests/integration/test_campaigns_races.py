"""Races on both databases: the group never overfills, forms once, and a shared pool never overdraws."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from tuangou.campaigns import service as campaigns
from tuangou.campaigns.models import Campaign, CampaignMember, PurchaseList, StockPool
from tuangou.core import ledger
from tuangou.core.db import UnitOfWork
from tuangou.core.errors import Conflict, DomainError
from tuangou.orders import service as orders

from .campaign_stage import fast_buyers, goods_deal, open_campaign, staff

WORKERS = 24  # threads in flight at once; keeps PostgreSQL connections well under its limit


def _join(stage, buyer, campaign_id):
    try:
        result, _ = campaigns.join_campaign(UnitOfWork(stage.db, stage.clock), buyer, campaign_id, 1,
                                            uuid.uuid4().hex)
        return result["order"]["id"]
    except DomainError as exc:
        return exc.code


def test_100_concurrent_joins_to_a_group_of_20_make_exactly_20(any_stage):
    stage = any_stage
    _, merchant = stage.merchant()
    camp = open_campaign(stage, merchant, threshold=10, max_size=20)  # the deal has stock 1000
    buyers = fast_buyers(stage.db, 100)
    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(lambda b: _join(stage, b, camp["id"]), buyers))
    joined = [r for r in results if isinstance(r, int)]
    assert len(joined) == 20
    assert set(r for r in results if not isinstance(r, int)) == {"group_full"}
    with UnitOfWork(stage.db) as uow:
        assert uow.session.scalar(select(Campaign.joined_count)) == 20
        assert uow.session.scalar(select(func.count()).select_from(CampaignMember)) == 20
    assert len(orders.list_orders(UnitOfWork(stage.db), _ops(), deal_id=camp["deal_id"], limit=200)) == 20


def _ops():
    from tuangou.core.auth import Principal, Role
    return Principal(0, Role.OPS)


def test_concurrent_payments_past_the_threshold_emit_exactly_one_purchase_list(any_stage):
    stage = any_stage
    _, merchant = stage.merchant()
    leader_id, _ = staff(stage, "leader")
    camp = open_campaign(stage, merchant, threshold=5, max_size=20, leader_id=leader_id,
                         leader_commission_cents=300)
    buyers = fast_buyers(stage.db, 20)
    order_ids = [_join(stage, b, camp["id"]) for b in buyers]
    assert all(isinstance(o, int) for o in order_ids)

    def pay(pair):
        buyer, order_id = pair
        try:
            view, _ = orders.pay_order(UnitOfWork(stage.db, stage.clock), buyer, order_id, "", stage.gateway,
                                       "succeed")
        except Conflict as refused:  # a payment after entry closed is given back and answered with a code
            assert refused.code == "campaign_entry_closed"
            return "refunded"
        return view.status

    with ThreadPoolExecutor(WORKERS) as pool:
        statuses = list(pool.map(pay, zip(buyers, order_ids, strict=True)))
    with UnitOfWork(stage.db) as uow:
        assert uow.session.scalar(select(func.count()).select_from(PurchaseList)) == 1
        listed = uow.session.scalar(select(PurchaseList.lines))[0]["quantity"]
        members = uow.session.scalar(select(func.count()).select_from(CampaignMember)
                                     .where(CampaignMember.status == "paid"))
        assert listed == members == statuses.count("paid") >= 5  # everyone listed paid; nobody paid unlisted
        assert statuses.count("refunded") == 20 - listed  # payments after entry closed are refunded
        assert ledger.balance(uow.session, campaigns.leader_account(leader_id)) == 300  # commission once
        assert uow.session.scalar(select(Campaign.status)) == "formed"


def test_shared_pool_race_never_draws_past_its_capacity(any_stage):
    stage = any_stage
    _, merchant = stage.merchant()
    pool_id = stage.client.post("/api/v1/stock-pools", headers=merchant,
                                json={"name": "Lychees", "capacity": 15, "safe_stock": 0}).json()["id"]
    first = open_campaign(stage, merchant, threshold=1, max_size=20, pool_id=pool_id)
    second = open_campaign(stage, merchant, deal_id=goods_deal(stage, merchant), threshold=1, max_size=20,
                           pool_id=pool_id)
    buyers = fast_buyers(stage.db, 40)
    targets = [(b, (first, second)[i % 2]["id"]) for i, b in enumerate(buyers)]
    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(lambda t: _join(stage, *t), targets))
    assert sum(isinstance(r, int) for r in results) == 15
    assert set(r for r in results if not isinstance(r, int)) == {"sold_out"}
    with UnitOfWork(stage.db) as uow:
        assert uow.session.scalar(select(StockPool.used)) == 15
        assert sum(uow.session.scalars(select(Campaign.joined_count))) == 15
    view = stage.client.get(f"/api/v1/stock-pools/{pool_id}", headers=merchant).json()
    assert view["remaining"] == 0 and view["level"] == 3
    warnings = stage.client.get("/api/v1/inbox?kind=pool_low", headers=merchant).json()["items"]
    assert sorted(w["data"]["level"] for w in warnings) == [1, 2, 3]  # each water level warned once
