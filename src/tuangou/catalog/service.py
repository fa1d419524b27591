"""Stores, deals and the capacity calendar.

The hot path's atomic counters (`reserve`, `release_reserved`, `confirm_sold`,
`release_sold`) are in `counters.py` and re-exported here.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, insert, select, update

from tuangou.accounts import service as accounts
from tuangou.catalog import participants, rules
from tuangou.catalog.counters import (
    buckets_from,
    buckets_of,
    confirm_held,
    confirm_sold,
    deal_columns,
    hold,
    move_sold,
    pause_date,
    paused_dates,
    release_reserved,
    release_reserved_many,
    release_sold,
    reopen_recovered,
    reserve,
    reserve_for_update,
    room_on,
    snapshot,
    snapshot_query,
)
from tuangou.catalog.live import live_deal_ids, live_deals_of, live_merchant_ids, live_timezones
from tuangou.catalog.models import CapacityBucket, Deal, Store
from tuangou.core.audit import record_audit, require_reason
from tuangou.core.auth import Principal, Role
from tuangou.core.db import InTransaction, UnitOfWork, insert_ignore, table, upsertable_insert
from tuangou.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from tuangou.core.outbox import OutboxEvent, event_row, record_event

PUBLISH_HORIZON_DAYS = 62  # buckets made ahead at publish; later dates are made on first order


@dataclass(frozen=True)
class StoreView:
    id: int
    merchant_id: int
    name: str
    category: str
    timezone: str
    address: str


@dataclass(frozen=True)
class DealView:
    id: int
    store_id: int
    merchant_id: int
    title: str
    description: str
    kind: str
    category: str
    price_cents: int
    original_price_cents: int
    valid_from: str
    valid_until: str
    per_buyer_limit: int | None
    daily_cap: int | None
    total_cap: int | None
    slots: dict[str, int]
    large_promotion: bool
    status: str
    timezone: str


@dataclass(frozen=True)
class DealContext:
    """What the order path needs to know of a deal, read once."""

    id: int
    merchant_id: int
    store_id: int
    kind: rules.DealKind
    status: rules.DealStatus
    price_cents: int
    per_buyer_limit: int | None
    daily_cap: int | None
    has_total_cap: bool
    slots: dict[str, int]
    timezone: str
    valid_from: datetime
    valid_until: datetime
    title: str


def _store_view(s: Store) -> StoreView:
    return StoreView(s.id, s.merchant_id, s.name, s.category, s.timezone, s.address)


def _deal_view(d: Deal, tz: str) -> DealView:
    return DealView(d.id, d.store_id, d.merchant_id, d.title, d.description, d.kind, d.category, d.price_cents,
                    d.original_price_cents, d.valid_from.isoformat(), d.valid_until.isoformat(),
                    d.per_buyer_limit, d.daily_cap, d.total_cap, dict(d.slots or {}), d.large_promotion,
                    d.status, tz)


def _own_store(uow: UnitOfWork, actor: Principal, store_id: int) -> Store:
    store = uow.session.get(Store, store_id)
    if store is None:
        raise NotFound(f"store {store_id} not found")
    actor.require_merchant(store.merchant_id)
    return store


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


def _require_active_merchant(uow: UnitOfWork, merchant_id: int) -> None:
    if accounts.merchant_status(uow, merchant_id) != "active":
        raise Forbidden("this merchant is not active", code="merchant_inactive")


# ---- stores -------------------------------------------------------------------------------------

def create_store(uow: UnitOfWork, actor: Principal, name: str, category: str, timezone: str,
                 address: str = "", merchant_id: int | None = None) -> StoreView:
    with uow:
        owner = merchant_id if actor.role == Role.OPS else actor.merchant_id
        if owner is None:
            raise ValidationFailed("merchant_id is required when ops create a store")
        actor.require_merchant(owner)
        if category not in rules.Category.__members__.values():
            raise ValidationFailed(f"unknown category {category!r}")
        if not rules.valid_timezone(timezone):
            raise ValidationFailed(f"unknown time zone {timezone!r}")
        _require_active_merchant(uow, owner)
        store = Store(merchant_id=owner, name=name.strip(), category=category, timezone=timezone,
                      address=address, created_at=uow.now)
        uow.session.add(store)
        uow.session.flush()
        record_event(uow.session, "StoreCreated", {"store_id": store.id}, uow.now, merchant_id=owner)
        uow.commit()
        return _store_view(store)


def list_stores(uow: UnitOfWork, actor: Principal | None, merchant_id: int | None = None) -> list[StoreView]:
    with uow:
        q = select(Store).order_by(Store.id)
        if actor is not None and actor.role == Role.MERCHANT:
            q = q.where(Store.merchant_id == actor.merchant_id)
        elif merchant_id is not None:
            q = q.where(Store.merchant_id == merchant_id)
        return [_store_view(s) for s in uow.session.scalars(q)]


def get_store(uow: UnitOfWork, store_id: int) -> StoreView:
    with uow:
        store = uow.session.get(Store, store_id)
        if store is None:
            raise NotFound(f"store {store_id} not found")
        return _store_view(store)


# ---- deals --------------------------------------------------------------------------------------

def create_deal(uow: UnitOfWork, actor: Principal, store_id: int, *, title: str, kind: str,
                price_cents: int, original_price_cents: int, valid_from: datetime, valid_until: datetime,
                description: str = "", per_buyer_limit: int | None = None, daily_cap: int | None = None,
                total_cap: int | None = None, stock: int | None = None, slots: dict[str, int] | None = None,
                large_promotion: bool = False) -> DealView:
    """A draft deal. Voucher deals need a daily cap (or slot caps); goods deals need stock."""
    with uow:
        store = _own_store(uow, actor, store_id)
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
        return _deal_view(deal, store.timezone)


def _service_dates(deal: Deal, tz: str, now: datetime, horizon_days: int) -> list[date]:
    zone = ZoneInfo(tz)
    start = max(deal.valid_from, now).astimezone(zone).date()
    end = min(deal.valid_until.astimezone(zone).date(), start + timedelta(days=horizon_days))
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _bucket_caps(deal: Deal, service_date: date) -> dict[str, int]:
    if deal.slots:
        return {rules.date_bucket(service_date, slot): int(cap) for slot, cap in deal.slots.items()}
    return {rules.date_bucket(service_date): int(deal.daily_cap or 0)}


def publish_deal(uow: UnitOfWork, actor: Principal, deal_id: int, reason: str = "") -> DealView:
    """Put a draft or delisted deal on sale and open its buckets (ops on a merchant's behalf: with a reason)."""
    if actor.role == Role.OPS:
        require_reason(reason)
    with uow:
        deal = own_deal(uow, actor, deal_id, for_update=True)
        _require_active_merchant(uow, deal.merchant_id)
        if deal.status == rules.DealStatus.PUBLISHED:
            return _deal_view(deal, _tz(uow, deal))
        for p in participants.registry.items:  # suspensions, promotion bans, paused business lines
            p.check_publish(uow, deal.id, deal.merchant_id, deal.large_promotion)
        if deal.valid_until <= uow.now:
            raise Conflict("the deal's validity has ended", code="deal_expired")
        tz = _tz(uow, deal)
        rows = [{"deal_id": deal.id, "key": key, "cap": cap, "sold": 0, "reserved": 0, "open": True}
                for day in (_service_dates(deal, tz, uow.now, PUBLISH_HORIZON_DAYS)
                            if deal.kind == rules.DealKind.VOUCHER else [])
                for key, cap in _bucket_caps(deal, day).items()]
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
        return _deal_view(deal, tz)


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
        return _deal_view(deal, _tz(uow, deal))


def _tz(uow: UnitOfWork, deal: Deal) -> str:
    store = uow.session.get(Store, deal.store_id)
    assert store is not None
    return store.timezone


def get_deal(uow: UnitOfWork, deal_id: int, actor: Principal | None = None) -> DealView:
    with uow:
        deal = uow.session.get(Deal, deal_id)
        if deal is None or (deal.status == rules.DealStatus.DRAFT and not _may_see_draft(actor, deal)):
            raise NotFound(f"deal {deal_id} not found")
        return _deal_view(deal, _tz(uow, deal))


def _may_see_draft(actor: Principal | None, deal: Deal) -> bool:
    return actor is not None and (actor.role == Role.OPS or actor.merchant_id == deal.merchant_id)


def deal_category(tx: InTransaction, deal_id: int) -> str:
    """Inside an open unit of work: the category a deal is sold in."""
    category = tx.session.scalar(select(Deal.category).where(Deal.id == deal_id))
    if category is None:
        raise NotFound(f"deal {deal_id} not found")
    return str(category)


def check_may_list(tx: InTransaction, deal_id: int, merchant_id: int, large_promotion: bool) -> None:
    """Inside an open unit of work: the checks a publish makes (suspensions, promotion bans, deposits, paused
    business lines), for a deal offered in another form, e.g. a group-buy campaign (a large promotion)."""
    for p in participants.registry.items:
        p.check_publish(tx, deal_id, merchant_id, large_promotion)


def deal_context(uow: UnitOfWork, deal_id: int) -> DealContext:
    """Inside an open unit of work: the facts the order path needs."""
    row = uow.session.execute(select(Deal, Store.timezone).join(Store, Store.id == Deal.store_id)
                              .where(Deal.id == deal_id)).first()
    if row is None:
        raise NotFound(f"deal {deal_id} not found")
    d, tz = row
    return DealContext(d.id, d.merchant_id, d.store_id, rules.DealKind(d.kind), rules.DealStatus(d.status),
                       d.price_cents, d.per_buyer_limit, d.daily_cap, d.total_cap is not None,
                       {k: int(v) for k, v in (d.slots or {}).items()}, tz, d.valid_from, d.valid_until,
                       d.title)


def list_deals(uow: UnitOfWork, *, service_date: date | None, category: str | None = None,
               store_id: int | None = None, merchant_id: int | None = None, status: str | None = "published",
               cursor: int | None = None, limit: int = 50, order_ids: list[int] | None = None
               ) -> list[dict[str, Any]]:
    """Deals with their availability on `service_date` (default: each store's today).

    Published listings follow the merchants' scores (merchants.service.rank_deals); `cursor` is
    then the id of the last deal seen and the page continues after it in that order.
    """
    with uow:
        q = select(Deal, Store.timezone).join(Store, Store.id == Deal.store_id).order_by(Deal.id)
        ranked = status == rules.DealStatus.PUBLISHED and order_ids is None
        if not ranked:
            q = q.limit(limit)
        if status:
            q = q.where(Deal.status == status)
        if category:
            q = q.where(Deal.category == category)
        if store_id:
            q = q.where(Deal.store_id == store_id)
        if merchant_id:
            q = q.where(Deal.merchant_id == merchant_id)
        if cursor and not ranked:
            q = q.where(Deal.id > cursor)
        if order_ids is not None:
            q = q.where(Deal.id.in_(order_ids))
        rows = _ranked_page(uow, q, cursor, limit) if ranked else list(uow.session.execute(q).all())
        out = []
        for deal, tz in rows:
            day = service_date or uow.now.astimezone(ZoneInfo(tz)).date()
            view = asdict(_deal_view(deal, tz))
            view["availability"] = _availability(uow, deal, day)
            out.append(view)
        return out


def _ranked_page(uow: UnitOfWork, q: Any, cursor: int | None, limit: int) -> list[Any]:
    keys = q.with_only_columns(Deal.id, Deal.merchant_id, Deal.category)
    listed = [(d, m, c) for d, m, c in uow.session.execute(keys).all()]
    order = next((r for p in participants.registry.items if (r := p.rank(uow, listed)) is not None),
                 sorted(d for d, _, _ in listed))
    if cursor and cursor not in order:
        return []  # the last deal seen left the listing: no position to continue from
    start = order.index(cursor) + 1 if cursor else 0
    page = order[start:start + limit]
    found = {deal.id: (deal, tz) for deal, tz in uow.session.execute(q.where(Deal.id.in_(page))).all()} if page else {}
    return [found[i] for i in page if i in found]


def _availability(uow: UnitOfWork, deal: Deal, day: date) -> dict[str, Any]:
    keys = [rules.STOCK_BUCKET] if deal.kind == rules.DealKind.GOODS else list(_bucket_caps(deal, day))
    buckets = {b.key: b for b in uow.session.scalars(select(CapacityBucket).where(
        CapacityBucket.deal_id == deal.id, CapacityBucket.key.in_([*keys, rules.TOTAL_BUCKET])))}
    listed = deal.status == rules.DealStatus.PUBLISHED
    states = []
    for key in keys:
        b = buckets.get(key)
        default = _bucket_caps(deal, day).get(key, 0) if deal.kind == rules.DealKind.VOUCHER else 0
        states.append(rules.BucketState(key, b.cap if b else default, b.sold if b else 0,
                                        b.reserved if b else 0, listed and (b.open if b else True)))
    total = buckets.get(rules.TOTAL_BUCKET)
    cap = sum(s.cap for s in states)
    sold = sum(s.sold for s in states)
    reserved = sum(s.reserved for s in states)
    remaining = sum(s.remaining for s in states if s.open)
    if total is not None:
        remaining = min(remaining, max(0, total.cap - total.sold - total.reserved))
    status = (rules.Availability.DELISTED if not listed or not any(s.open for s in states)
              else rules.Availability.ON_SALE if remaining > 0 else rules.Availability.SOLD_OUT)
    result: dict[str, Any] = {"service_date": day.isoformat() if deal.kind == rules.DealKind.VOUCHER else None,
                              "cap": cap, "sold": sold, "reserved": reserved, "remaining": remaining,
                              "status": status.value}
    if deal.slots:
        result["slots"] = [{"slot": s.key.split("@", 1)[1], "cap": s.cap, "sold": s.sold, "reserved": s.reserved,
                            "remaining": s.remaining, "status": s.availability().value} for s in states]
    return result


def deal_calendar(uow: UnitOfWork, deal_id: int, actor: Principal | None) -> list[dict[str, Any]]:
    with uow:
        deal = uow.session.get(Deal, deal_id)
        if deal is None or (deal.status == rules.DealStatus.DRAFT and not _may_see_draft(actor, deal)):
            raise NotFound(f"deal {deal_id} not found")
        buckets = uow.session.scalars(select(CapacityBucket).where(CapacityBucket.deal_id == deal_id)
                                      .order_by(CapacityBucket.key))
        paused = paused_dates(uow, deal_id)
        return [{**asdict(rules.BucketState(b.key, b.cap, b.sold, b.reserved, b.open)),
                 "remaining": rules.BucketState(b.key, b.cap, b.sold, b.reserved, b.open).remaining,
                 "status": rules.BucketState(b.key, b.cap, b.sold, b.reserved,
                                             b.open and deal.status == "published").availability().value,
                 "paused": paused.get(b.key)}
                for b in buckets]


def bucket_key(ctx: DealContext, service_date: date | None, slot: str | None) -> str:
    if ctx.kind == rules.DealKind.GOODS:
        return rules.STOCK_BUCKET
    if service_date is None:
        raise ValidationFailed("service_date is required")
    return rules.date_bucket(service_date, slot)


def apply_cap(uow: InTransaction, deal_id: int, key: str, cap: int, *, allow_below_sold: bool) -> dict[str, Any]:
    """Inside an open unit of work: set a bucket's cap, creating the bucket if needed.

    Returns the bucket's counters after the change, with `over` = units sold or held
    beyond the new cap (0 unless allow_below_sold).
    """
    deal = uow.session.get(Deal, deal_id)
    if deal is None:
        raise NotFound(f"deal {deal_id} not found")
    if key not in (rules.STOCK_BUCKET, rules.TOTAL_BUCKET):
        try:
            date.fromisoformat(key.split("@", 1)[0])
        except ValueError as exc:
            raise ValidationFailed(f"bucket key {key!r} is not a date, date@slot, 'total' or 'stock'") from exc
    insert_ignore(uow.session, CapacityBucket.__table__, {
        "deal_id": deal_id, "key": key, "cap": cap, "sold": 0, "reserved": 0,
        "open": deal.status == rules.DealStatus.PUBLISHED}, ["deal_id", "key"])
    cond = and_(CapacityBucket.deal_id == deal_id, CapacityBucket.key == key)
    if not allow_below_sold:
        cond = and_(cond, CapacityBucket.sold + CapacityBucket.reserved <= cap)
    changed = uow.session.execute(update(CapacityBucket).where(cond).values(cap=cap)).rowcount  # type: ignore[attr-defined]
    bucket = uow.session.scalar(select(CapacityBucket).where(CapacityBucket.deal_id == deal_id,
                                                             CapacityBucket.key == key)
                                .execution_options(populate_existing=True))
    assert bucket is not None
    if not changed:
        raise Conflict(f"{bucket.sold + bucket.reserved} units are already sold or held on {key}; "
                       f"the cap cannot go below that here", code="cap_below_sold",
                       sold=bucket.sold, reserved=bucket.reserved)
    record_event(uow.session, "CapacityChanged", {"deal_id": deal_id, "key": key, "cap": cap}, uow.now,
                 merchant_id=deal.merchant_id)
    reopen_recovered(uow, deal_id, [key])
    return {"key": key, "cap": bucket.cap, "sold": bucket.sold, "reserved": bucket.reserved,
            "over": max(0, bucket.sold + bucket.reserved - bucket.cap)}


def apply_caps(uow: InTransaction, deal_id: int, caps: dict[str, int]) -> list[dict[str, Any]]:
    """Inside an open unit of work: `apply_cap(..., allow_below_sold=True)` for several date (or stock) buckets
    of one deal in a few statements (missing buckets made, caps set, counters read back once)."""
    if not caps:
        return []
    deal = uow.session.get(Deal, deal_id)
    if deal is None:
        raise NotFound(f"deal {deal_id} not found")
    for key in caps:
        if key != rules.STOCK_BUCKET:
            date.fromisoformat(key.split("@", 1)[0])  # only date and stock buckets come here (capacity's plans)
    t = table(CapacityBucket)
    of_deal = and_(t.c.deal_id == deal_id, t.c.key.in_(list(caps)))
    existing = set(uow.session.scalars(select(t.c.key).where(of_deal)))
    made: set[str] = set()
    if len(existing) < len(caps):  # missing buckets are made with their cap at once
        stmt = upsertable_insert(uow.session.get_bind().dialect.name, t).values([
            {"deal_id": deal_id, "key": k, "cap": c, "sold": 0, "reserved": 0,
             "open": deal.status == rules.DealStatus.PUBLISHED} for k, c in caps.items() if k not in existing])
        made = set(uow.session.scalars(stmt.on_conflict_do_nothing(index_elements=["deal_id", "key"])
                                       .returning(t.c.key)))
    move = [{"d": deal_id, "k": k, "c": c} for k, c in caps.items() if k not in made]  # incl. a racing order's
    if move:
        uow.session.execute(update(t).where(t.c.deal_id == bindparam("d"), t.c.key == bindparam("k"))
                            .values(cap=bindparam("c")), move)
    rows = {r.key: r for r in uow.session.execute(select(t.c.key, t.c.cap, t.c.sold, t.c.reserved).where(of_deal))}
    uow.session.execute(insert(table(OutboxEvent)), [event_row(
        "CapacityChanged", {"deal_id": deal_id, "key": k, "cap": c}, uow.now, merchant_id=deal.merchant_id)
        for k, c in caps.items()])
    reopen_recovered(uow, deal_id, list(caps))
    return [{"key": k, "cap": rows[k].cap, "sold": rows[k].sold, "reserved": rows[k].reserved,
             "over": max(0, rows[k].sold + rows[k].reserved - rows[k].cap)} for k in caps]


# ---- for capacity governance (capacity/, governance/) ------------------------------------------------

def _facts(d: Any, tz: str) -> dict[str, Any]:  # a Deal, or a Core row of the deals table
    return {"id": d.id, "store_id": d.store_id, "merchant_id": d.merchant_id, "title": d.title, "kind": d.kind,
            "category": d.category, "price_cents": d.price_cents, "daily_cap": d.daily_cap,
            "slots": {k: int(v) for k, v in (d.slots or {}).items()}, "large_promotion": d.large_promotion,
            "status": d.status, "valid_from": d.valid_from, "valid_until": d.valid_until, "timezone": tz}


def deal_facts(uow: InTransaction, deal_id: int, *, lock: bool = False) -> dict[str, Any]:
    """Inside an open unit of work: plain facts of a deal and its store (`lock`: hold the deal row
    until commit, so changes derived from the deal's inputs are made one at a time)."""
    q = select(Deal, Store.timezone).join(Store, Store.id == Deal.store_id).where(Deal.id == deal_id)
    if lock:
        q = q.with_for_update(of=Deal)
    row = uow.session.execute(q.execution_options(populate_existing=True)).first()
    if row is None:
        raise NotFound(f"deal {deal_id} not found")
    return _facts(*row)


def deal_facts_many(uow: InTransaction, deal_ids: list[int], *, lock: bool = False) -> list[dict[str, Any]]:
    """Inside an open unit of work: `deal_facts` of several deals in one query, in id order (locks taken
    in that fixed order)."""
    deals = table(Deal)
    q = select(deals, table(Store).c.timezone).join(table(Store), table(Store).c.id == deals.c.store_id).where(
        deals.c.id.in_(deal_ids)).order_by(deals.c.id)  # Core rows: a batch of thousands builds no ORM objects
    if lock:
        q = q.with_for_update(of=deals)
    return [_facts(d, d.timezone) for d in uow.session.execute(q)]


def deal_ids(uow: UnitOfWork, *, store_id: int | None = None, merchant_id: int | None = None,
             statuses: tuple[str, ...] = (), store_ids: Collection[int] | None = None) -> list[int]:
    """Inside an open unit of work: ids of deals, optionally of one store (or of `store_ids`) or merchant,
    in some statuses."""
    q = select(Deal.id).order_by(Deal.id)
    if store_id is not None:
        q = q.where(Deal.store_id == store_id)
    if store_ids is not None:
        q = q.where(Deal.store_id.in_(sorted(store_ids)))
    if merchant_id is not None:
        q = q.where(Deal.merchant_id == merchant_id)
    if statuses:
        q = q.where(Deal.status.in_(statuses))
    return list(uow.session.scalars(q))


def store_facts(uow: UnitOfWork, store_id: int, actor: Principal | None = None) -> dict[str, Any]:
    """Inside an open unit of work: a store's facts; with `actor`, only if ops or its merchant."""
    store = _own_store(uow, actor, store_id) if actor is not None else uow.session.get(Store, store_id)
    if store is None:
        raise NotFound(f"store {store_id} not found")
    return {"id": store.id, "merchant_id": store.merchant_id, "name": store.name, "category": store.category,
            "timezone": store.timezone}


def live_deals(uow: UnitOfWork) -> list[tuple[int, int, str]]:
    """Inside an open unit of work: (deal id, merchant id, store time zone) of every published deal."""
    rows = uow.session.execute(select(Deal.id, Deal.merchant_id, Store.timezone).join(Store, Store.id == Deal.store_id)
                               .where(Deal.status == rules.DealStatus.PUBLISHED).order_by(Deal.id))
    return [(int(d), int(m), str(tz)) for d, m, tz in rows]


def store_category(uow: UnitOfWork, store_id: int) -> str:
    """Inside an open unit of work: a store's category (violation points are per category)."""
    store = uow.session.get(Store, store_id)
    if store is None:
        raise NotFound(f"store {store_id} not found")
    return store.category


__all__ = ["DealContext", "DealView", "StoreView", "apply_cap", "apply_caps", "buckets_from", "deal_facts_many", "bucket_key", "buckets_of", "confirm_held",
           "confirm_sold", "create_deal", "create_store", "deal_calendar", "deal_columns", "deal_context",
           "deal_facts", "deal_ids", "delist", "delist_deal", "delist_merchant_deals", "get_deal", "get_store",
           "hold", "list_deals", "list_stores", "live_deal_ids", "live_deals", "live_deals_of",
           "live_merchant_ids", "live_timezones", "move_sold", "own_deal", "pause_date", "paused_dates",
           "publish_deal", "release_reserved", "release_reserved_many", "release_sold", "reserve",
           "reserve_for_update", "room_on", "snapshot", "snapshot_query", "store_category", "store_facts"]


def deal_homes(uow: InTransaction, deal_ids: list[int]) -> dict[int, tuple[int, str, str]]:
    """Inside an open unit of work: per deal (merchant, store category, store address), in one query."""
    q = select(Deal.id, Deal.merchant_id, Store.category, Store.address).join(Store, Store.id == Deal.store_id
                                                                              ).where(Deal.id.in_(deal_ids))
    return {int(d): (int(m), str(c), str(a or "")) for d, m, c, a in uow.session.execute(q)}
