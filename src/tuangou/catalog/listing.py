"""Reads of deals: one deal, the order path's context, the ranked listing with availability, the calendar.

Nothing here commits; the reads open their own unit of work or run inside the caller's.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from tuangou.catalog import participants, rules
from tuangou.catalog.counters import paused_dates
from tuangou.catalog.deals import bucket_caps, deal_timezone
from tuangou.catalog.models import CapacityBucket, Deal, Store
from tuangou.catalog.views import DealContext, DealView, deal_view
from tuangou.core.auth import Principal, Role
from tuangou.core.db import InTransaction, UnitOfWork
from tuangou.core.errors import NotFound, ValidationFailed


def get_deal(uow: UnitOfWork, deal_id: int, actor: Principal | None = None) -> DealView:
    with uow:
        deal = uow.session.get(Deal, deal_id)
        if deal is None or (deal.status == rules.DealStatus.DRAFT and not _may_see_draft(actor, deal)):
            raise NotFound(f"deal {deal_id} not found")
        return deal_view(deal, deal_timezone(uow, deal))


def _may_see_draft(actor: Principal | None, deal: Deal) -> bool:
    return actor is not None and (actor.role == Role.OPS or actor.merchant_id == deal.merchant_id)


def deal_category(tx: InTransaction, deal_id: int) -> str:
    """Inside an open unit of work: the category a deal is sold in."""
    category = tx.session.scalar(select(Deal.category).where(Deal.id == deal_id))
    if category is None:
        raise NotFound(f"deal {deal_id} not found")
    return str(category)


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
            view = asdict(deal_view(deal, tz))
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
    keys = [rules.STOCK_BUCKET] if deal.kind == rules.DealKind.GOODS else list(bucket_caps(deal, day))
    buckets = {b.key: b for b in uow.session.scalars(select(CapacityBucket).where(
        CapacityBucket.deal_id == deal.id, CapacityBucket.key.in_([*keys, rules.TOTAL_BUCKET])))}
    listed = deal.status == rules.DealStatus.PUBLISHED
    states = []
    for key in keys:
        b = buckets.get(key)
        default = bucket_caps(deal, day).get(key, 0) if deal.kind == rules.DealKind.VOUCHER else 0
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
