"""Plain facts of deals for other capabilities (capacity, governance, risk, monitoring, logistics).

Each runs inside the caller's unit of work and hands back dicts or tuples, never ORM objects.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import select

from tuangou.catalog import rules
from tuangou.catalog.models import Deal, Store
from tuangou.core.db import InTransaction, UnitOfWork, table
from tuangou.core.errors import NotFound


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


def live_deals(uow: UnitOfWork) -> list[tuple[int, int, str]]:
    """Inside an open unit of work: (deal id, merchant id, store time zone) of every published deal."""
    rows = uow.session.execute(select(Deal.id, Deal.merchant_id, Store.timezone).join(Store, Store.id == Deal.store_id)
                               .where(Deal.status == rules.DealStatus.PUBLISHED).order_by(Deal.id))
    return [(int(d), int(m), str(tz)) for d, m, tz in rows]


def deal_homes(uow: InTransaction, deal_ids: list[int]) -> dict[int, tuple[int, str, str]]:
    """Inside an open unit of work: per deal (merchant, store category, store address), in one query."""
    q = select(Deal.id, Deal.merchant_id, Store.category, Store.address).join(Store, Store.id == Deal.store_id
                                                                              ).where(Deal.id.in_(deal_ids))
    return {int(d): (int(m), str(c), str(a or "")) for d, m, c, a in uow.session.execute(q)}
