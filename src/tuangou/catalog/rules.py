"""Pure catalog rules: categories, deal kinds and states, capacity buckets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

TOTAL_BUCKET = "total"  # optional cap over the whole deal
STOCK_BUCKET = "stock"  # physical stock of a goods deal


class Category(StrEnum):
    CATERING = "catering"  # restaurants, noodle shops
    FRESH = "fresh"  # fruit, vegetables, meat
    BEVERAGE = "beverage"  # milk tea, coffee
    BAKERY = "bakery"  # cakes, bread
    ENTERTAINMENT = "entertainment"  # KTV, games
    FITNESS = "fitness"  # gyms, classes
    BEAUTY = "beauty"  # salons
    SHOW = "show"  # performances
    OTHER = "other"  # anything else


class DealKind(StrEnum):
    VOUCHER = "voucher"  # redeemed in the store on a service date; capacity is a calendar
    GOODS = "goods"  # shipped or picked up; draws on physical stock


class DealStatus(StrEnum):
    DRAFT = "draft"  # being prepared, invisible to buyers
    PUBLISHED = "published"  # on sale
    DELISTED = "delisted"  # taken off sale (by the merchant, ops or the circuit breaker)


class Availability(StrEnum):
    ON_SALE = "on_sale"  # units remain
    SOLD_OUT = "sold_out"  # sold + reserved reached the cap
    DELISTED = "delisted"  # not sellable whatever the numbers say


@dataclass(frozen=True)
class BucketState:
    key: str
    cap: int
    sold: int
    reserved: int
    open: bool

    @property
    def remaining(self) -> int:
        return max(0, self.cap - self.sold - self.reserved)

    def availability(self) -> Availability:
        if not self.open:
            return Availability.DELISTED
        return Availability.ON_SALE if self.remaining > 0 else Availability.SOLD_OUT


def valid_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def date_bucket(service_date: date, slot: str | None = None) -> str:
    """Key of the capacity bucket for one service date (and optional time slot)."""
    return f"{service_date.isoformat()}@{slot}" if slot else service_date.isoformat()


def buckets_for_order(kind: DealKind, service_date: date | None, slot: str | None,
                      has_total_cap: bool) -> list[str]:
    """Every bucket an order must reserve in, in the fixed order rows are locked."""
    keys = [STOCK_BUCKET] if kind == DealKind.GOODS else [date_bucket(service_date, slot)]  # type: ignore[arg-type]
    if has_total_cap:
        keys.append(TOTAL_BUCKET)
    return sorted(keys)


def check_deal_terms(price_cents: int, original_price_cents: int, valid_from: datetime,
                     valid_until: datetime, per_buyer_limit: int | None) -> list[str]:
    problems = []
    if price_cents <= 0:
        problems.append("price_cents must be positive")
    if original_price_cents < price_cents:
        problems.append("original_price_cents cannot be below price_cents")
    if valid_until <= valid_from:
        problems.append("valid_until must be after valid_from")
    if per_buyer_limit is not None and per_buyer_limit <= 0:
        problems.append("per_buyer_limit must be positive")
    return problems


def service_date_problem(service_date: date, today: date, valid_from: date, valid_until: date) -> str | None:
    """Why an order cannot be for `service_date`, or None."""
    if service_date < today:
        return "service_date is in the past"
    if service_date < valid_from or service_date > valid_until:
        return f"service_date must be between {valid_from} and {valid_until}"
    return None


@dataclass(frozen=True)
class DealSnapshot:
    """A deal as the order path reads it in one query: terms, store time zone, the buckets the order
    will draw on (those that exist), and the columns order participants added (`extra`).

    It may be stale by the time it is used: the guarded UPDATEs decide, the snapshot only lets
    a hopeless request be refused without a write transaction."""

    id: int
    merchant_id: int
    store_id: int
    kind: DealKind
    status: DealStatus
    price_cents: int
    per_buyer_limit: int | None
    daily_cap: int | None
    has_total_cap: bool
    slots: dict[str, int]
    timezone: str
    valid_from: datetime
    valid_until: datetime
    title: str
    category: str
    buckets: dict[str, BucketState]
    extra: dict[str, object]

    def default_cap(self, key: str) -> int | None:
        """The cap a bucket not made yet starts with (date buckets only)."""
        if key in (STOCK_BUCKET, TOTAL_BUCKET):
            return None
        _, _, slot = key.partition("@")
        return self.slots.get(slot) if slot else self.daily_cap


def availability_refusal(state: BucketState, qty: int) -> tuple[str, str, int] | None:
    """Why `qty` more units cannot be held in a bucket as last seen: (code, message, remaining), or None."""
    if not state.open:
        return "not_on_sale", f"not on sale for {state.key}", 0
    if state.remaining == 0:
        return "sold_out", f"sold out for {state.key}", 0
    if state.remaining < qty:
        return "cap_exceeded", f"only {state.remaining} left for {state.key}, asked for {qty}", state.remaining
    return None
