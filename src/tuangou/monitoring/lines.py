"""Which business line (category, city) and merchant a deal's events count for: resolved once per deal,
kept in kpi_deal_lines and in a process cache (a deal never changes store, a store never changes city here)."""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import select

from tuangou.campaigns import service as campaigns
from tuangou.catalog import service as catalog
from tuangou.core.db import Database, InTransaction, UnitOfWork, insert_ignore, upsertable_insert
from tuangou.core.errors import DomainError, NotFound
from tuangou.monitoring import rules
from tuangou.monitoring.models import DealLine
from tuangou.orders import service as orders

CACHE_LIMIT = 500_000


class _Cache:
    def __init__(self) -> None:
        self.lines: dict[int, tuple[int, str, str]] = {}  # deal -> (merchant, category, city)
        self.stores: dict[int, tuple[str, str]] = {}  # store -> (category, city)


_caches: WeakKeyDictionary[Database, _Cache] = WeakKeyDictionary()  # one per database (tests use many)


def _cache(uow: InTransaction) -> _Cache:
    cache = _caches.get(uow.db)
    if cache is None:
        cache = _caches[uow.db] = _Cache()
    return cache


def _remember(uow: InTransaction, deal_id: int, line: tuple[int, str, str]) -> None:
    lines = _cache(uow).lines
    if len(lines) >= CACHE_LIMIT:
        lines.clear()
    lines[deal_id] = line


def warm(uow: InTransaction, deal_ids: set[int]) -> None:
    """Know the lines of these deals: from kpi_deal_lines, else resolved from the catalog and kept there,
    a few queries per 500 deals (a backlog of events names thousands of deals the process has not seen)."""
    cache = _cache(uow).lines
    missing = sorted(d for d in deal_ids if d not in cache)
    for i in range(0, len(missing), 500):
        chunk = missing[i:i + 500]
        for row in uow.session.execute(select(DealLine.deal_id, DealLine.merchant_id, DealLine.category,
                                              DealLine.city).where(DealLine.deal_id.in_(chunk))):
            _remember(uow, int(row[0]), (int(row[1]), str(row[2]), str(row[3])))
        unknown = [d for d in chunk if d not in cache]
        if not unknown:
            continue
        found = {d: (m, category, rules.city_of(address))
                 for d, (m, category, address) in catalog.deal_homes(uow, unknown).items()}
        if found:  # one statement compiled once, run for every row (executemany)
            uow.session.execute(upsertable_insert(uow.session.get_bind().dialect.name, DealLine.__table__)
                                .on_conflict_do_nothing(index_elements=["deal_id"]),
                                [{"deal_id": d, "merchant_id": m, "category": c, "city": city}
                                 for d, (m, c, city) in found.items()])
        for d, line in found.items():
            _remember(uow, d, line)


def deal_line(uow: InTransaction, deal_id: int, *, warmed: bool = False) -> tuple[int, str, str] | None:
    """(merchant, category, city) of a deal: from the process cache, kpi_deal_lines, or resolved once."""
    _lines, _stores = _cache(uow).lines, _cache(uow).stores
    line = _lines.get(deal_id)
    if line is not None:
        return line
    if not warmed:
        warm(uow, {deal_id})
        if deal_id in _lines:
            return _lines[deal_id]
    try:
        facts = catalog.deal_facts(uow, deal_id)
        store_id = int(facts["store_id"])
        if store_id not in _stores:
            store = catalog.get_store(UnitOfWork(uow.db, uow.clock, readonly=True), store_id)
            _stores[store_id] = (store.category, rules.city_of(store.address))
    except NotFound:
        return None
    line = (int(facts["merchant_id"]), *_stores[store_id])
    insert_ignore(uow.session, DealLine.__table__, {"deal_id": deal_id, "merchant_id": line[0],
                                                    "category": line[1], "city": line[2]}, ["deal_id"])
    _remember(uow, deal_id, line)
    return line


def deal_of(uow: UnitOfWork, payload: dict[str, Any]) -> int | None:
    try:
        if "deal_id" in payload:
            return int(payload["deal_id"])
        if "order_id" in payload:
            return int(orders.order_facts(uow, int(payload["order_id"]))["deal_id"])
        if "campaign_id" in payload:
            return int(campaigns.campaign_row(uow, int(payload["campaign_id"])).deal_id)
    except (DomainError, TypeError, ValueError):
        return None
    return None
