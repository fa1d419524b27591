"""What catalog commands and reads hand back: store and deal views, and the order path's deal context.

Kept apart from the commands so the counters (which take a `DealContext`) and every service sub-module
can name these types without importing one another.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tuangou.catalog import rules
from tuangou.catalog.models import Deal, Store


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


def store_view(s: Store) -> StoreView:
    return StoreView(s.id, s.merchant_id, s.name, s.category, s.timezone, s.address)


def deal_view(d: Deal, tz: str) -> DealView:
    return DealView(d.id, d.store_id, d.merchant_id, d.title, d.description, d.kind, d.category, d.price_cents,
                    d.original_price_cents, d.valid_from.isoformat(), d.valid_until.isoformat(),
                    d.per_buyer_limit, d.daily_cap, d.total_cap, dict(d.slots or {}), d.large_promotion,
                    d.status, tz)
