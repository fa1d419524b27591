"""Deal authoring and sale: creating a draft, publishing it (opening its buckets), delisting it.

These are the commands that move a deal through its statuses; reads of deals are in `listing.py`.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from tuangou.catalog import participants, rules
from tuangou.catalog.models import CapacityBucket, Deal, Store
from tuangou.catalog.stores import own_store, require_active_merchant
from tuangou.catalog.views import DealView, deal_view
from tuangou.core.audit import record_audit, require_reason
from tuangou.core.auth import Principal, Role
from tuangou.core.db import InTransaction, UnitOfWork, upsertable_insert
from tuangou.core.errors import Conflict, NotFound, ValidationFailed
from tuangou.core.outbox import record_event

PUBLISH_HORIZON_DAYS = 62  # buckets made ahead at publish; later dates are made on first order


def own_deal(uow: UnitOfWork, actor: Principal, deal_id: int, *, for_update: bool = False) -> Deal:
    """The deal, if `actor` is ops or the merchant that owns it (inside an open unit of work)."""
    q = select(Deal).where(Deal.id == deal_id)
    if for_update:
        q = q.with_for_update()
    deal = uow.session.scalar(q)
    if deal is None:
        raise NotFound(f"deal {deal_id} not found")
    actor.require_merchant(deal.merchant_id)
    return deal


def create_deal(uow: UnitOfWork, actor: Principal, store_id: int, *, title: str, kind: str,
                price_cents: int, original_price_cents: int, valid_from: datetime, valid_until: datetime,
                description: str = "", per_buyer_limit: int | None = None, daily_cap: int | None = None,
                total_cap: int | None = None, stock: int | None = None, slots: dict[str, int] | None = None,
                large_promotion: bool = False) -> DealView:
    """A draft deal. Voucher deals need a daily cap (or slot caps); goods deals need stock."""
    with uow:
        store = own_store(uow, actor, store_id)
        problems = rules.check_deal_terms(price_cents, original_price_cents, valid_from, valid_until,
                                          per_buyer_limit)
        if kind not in rules.DealKind.__members__.values():
            problems.append(f"kind must be one of {', '.join(rules.DealKind)}")
        elif kind == rules.DealKind.VOUCHER:
            if daily_cap is None and not slots:
                problems.append("a voucher deal needs daily_cap or slots (what the store can serve a day)")
            if stock is not None:
                problems.append("stock is for goods deals; voucher deals use daily_cap")
        elif stock is None or stock < 0:
            problems.append("a goods deal needs stock >= 0")
        for name, value in [("daily_cap", daily_cap), ("total_cap", total_cap)] + [
                (f"slots.{k}", v) for k, v in (slots or {}).items()]:
            if value is not None and value < 0:
                problems.append(f"{name} must be >= 0")
        if problems:
            raise ValidationFailed("; ".join(problems))
        deal = Deal(store_id=store.id, merchant_id=store.merchant_id, title=title.strip(),
                    description=description, kind=kind, category=store.category, price_cents=price_cents,
                    original_price_cents=original_price_cents, valid_from=valid_from,
                    valid_until=valid_until, per_buyer_limit=per_buyer_limit, daily_cap=daily_cap,
                    total_cap=total_cap, slots=dict(slots or {}), large_promotion=large_promotion,
                    status=rules.DealStatus.DRAFT, created_at=uow.now)
        uow.session.add(deal)
        uow.session.flush()
        if kind == rules.DealKind.GOODS:
            uow.session.add(CapacityBucket(deal_id=deal.id, key=rules.STOCK_BUCKET, cap=stock, sold=0,
                                           reserved=0, open=False))
        if total_cap is not None:
            uow.session.add(CapacityBucket(deal_id=deal.id, key=rules.TOTAL_BUCKET, cap=total_cap, sold=0,
                                           reserved=0, open=False))
        record_event(uow.session, "DealCreated", {"deal_id": deal.id}, uow.now, merchant_id=deal.merchant_id)
        uow.commit()
        return deal_view(deal, store.timezone)


def _service_dates(deal: Deal, tz: str, now: datetime, horizon_days: int) -> list[date]:
    zone = ZoneInfo(tz)
    start = max(deal.valid_from, now).astimezone(zone).date()
    end = min(deal.valid_until.astimezone(zone).date(), start + timedelta(days=horizon_days))
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def bucket_caps(deal: Deal, service_date: date) -> dict[str, int]:
    if deal.slots:
        return {rules.date_bucket(service_date, slot): int(cap) for slot, cap in deal.slots.items()}
    return {rules.date_bucket(service_date): int(deal.daily_cap or 0)}


def publish_deal(uow: UnitOfWork, actor: Principal, deal_id: int, reason: str = "") -> DealView:
    """Put a draft or delisted deal on sale and open its buckets (ops on a merchant's behalf: with a reason)."""
    if actor.role == Role.OPS:
        require_reason(reason)
    with uow:
        deal = own_deal(uow, actor, deal_id, for_update=True)
        require_active_merchant(uow, deal.merchant_id)
        if deal.status == rules.DealStatus.PUBLISHED:
            return deal_view(deal, deal_timezone(uow, deal))
        for p in participants.registry.items:  # suspensions, promotion bans, paused business lines
            p.check_publish(uow, deal.id, deal.merchant_id, deal.large_promotion)
        if deal.valid_until <= uow.now:
            raise Conflict("the deal's validity has ended", code="deal_expired")
        tz = deal_timezone(uow, deal)
        rows = [{"deal_id": deal.id, "key": key, "cap": cap, "sold": 0, "reserved": 0, "open": True}
                for day in (_service_dates(deal, tz, uow.now, PUBLISH_HORIZON_DAYS)
                            if deal.kind == rules.DealKind.VOUCHER else [])
                for key, cap in bucket_caps(deal, day).items()]
        if rows:  # one statement for the whole horizon
            uow.session.execute(upsertable_insert(uow.session.get_bind().dialect.name, CapacityBucket.__table__)
                                .values(rows).on_conflict_do_nothing(index_elements=["deal_id", "key"]))
        uow.session.execute(update(CapacityBucket).where(CapacityBucket.deal_id == deal.id,  # paused dates wait
                                                         CapacityBucket.pause_reason.is_(None)).values(open=True))
        deal.status = rules.DealStatus.PUBLISHED
        deal.published_at = uow.now
        # capacity governance: a large promotion needs an approved audit; caps follow the store's capacity
        uow.session.flush()
        for p in participants.registry.items:
            p.on_published(uow, deal.id)
        record_event(uow.session, "DealPublished", {"deal_id": deal.id}, uow.now, merchant_id=deal.merchant_id)
        if actor.role == Role.OPS:
            record_audit(uow.session, actor_id=actor.user_id, actor_role="ops", action="publish_deal",
                         target=f"deal:{deal.id}", reason=reason, now=uow.now)
        uow.commit()
        return deal_view(deal, tz)


def delist(uow: InTransaction, deal_id: int, why: str) -> None:
    """Inside an open unit of work: stop all sales of a deal at once (orders already made stay)."""
    deal = uow.session.get(Deal, deal_id)
    if deal is None:
        raise NotFound(f"deal {deal_id} not found")
    uow.session.execute(update(CapacityBucket).where(CapacityBucket.deal_id == deal_id).values(open=False))
    if deal.status != rules.DealStatus.DELISTED:
        deal.status = rules.DealStatus.DELISTED
        record_event(uow.session, "DealDelisted", {"deal_id": deal_id, "why": why}, uow.now,
                     merchant_id=deal.merchant_id)


def delist_merchant_deals(uow: InTransaction, merchant_id: int, why: str) -> int:
    """Inside an open unit of work: stop every published deal of a merchant (removal); returns how many."""
    ids = list(uow.session.scalars(select(Deal.id).where(Deal.merchant_id == merchant_id,
                                                         Deal.status == rules.DealStatus.PUBLISHED).order_by(Deal.id)))
    for deal_id in ids:
        delist(uow, deal_id, why)
    return len(ids)


def delist_deal(uow: UnitOfWork, actor: Principal, deal_id: int, reason: str) -> DealView:
    if actor.role == Role.OPS:
        require_reason(reason)
    with uow:
        deal = own_deal(uow, actor, deal_id, for_update=True)
        delist(uow, deal_id, reason or "delisted by merchant")
        if actor.role == Role.OPS:
            record_audit(uow.session, actor_id=actor.user_id, actor_role="ops", action="delist_deal",
                         target=f"deal:{deal_id}", reason=reason, now=uow.now)
        uow.commit()
        return deal_view(deal, deal_timezone(uow, deal))


def deal_timezone(uow: UnitOfWork, deal: Deal) -> str:
    store = uow.session.get(Store, deal.store_id)
    assert store is not None
    return store.timezone


def check_may_list(tx: InTransaction, deal_id: int, merchant_id: int, large_promotion: bool) -> None:
    """Inside an open unit of work: the checks a publish makes (suspensions, promotion bans, deposits, paused
    business lines), for a deal offered in another form, e.g. a group-buy campaign (a large promotion)."""
    for p in participants.registry.items:
        p.check_publish(tx, deal_id, merchant_id, large_promotion)
