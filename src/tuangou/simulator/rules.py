"""The outcome model: what happened to each buyer, measured against what the store could really do.

Pure (no database, no clock): the driver feeds it facts read through the services. A buyer is harmed
when they came on their service day and the store had no capacity left for them (the store's real
capacity that day, not the cap the platform believed). What happened next decides the class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum


class Outcome(StrEnum):
    SERVED = "served"  # served on the day the buyer chose
    MOVED_WITH_NOTICE = "moved_with_notice"  # told before the day, served on another day
    REFUNDED_WITH_NOTICE = "refunded_with_notice"  # told before the day, money back (no wasted trip)
    COMPENSATED = "compensated"  # harmed, then refunded and given something on top
    REFUNDED = "refunded"  # harmed, then only refunded
    UNREMEDIED = "harmed_without_remedy"  # harmed and nothing happened (no complaint, or none upheld yet)
    PENDING = "pending"  # paid, service day after the run ended (moved far out)


HARMED = (Outcome.COMPENSATED, Outcome.REFUNDED, Outcome.UNREMEDIED)


@dataclass
class BuyerRecord:
    """One paid order (a buyer's purchase) and what the run saw happen to it."""

    order_id: int
    store: int
    quantity: int
    amount_cents: int
    chosen_date: date
    served_on: date | None = None
    failed_at: datetime | None = None  # the visit at which the store could not serve
    refunded_before_service: bool = False
    remedied_at: datetime | None = None  # a dispute upheld: refund and coupons booked at this time
    remedy_refund_cents: int = 0
    remedy_extra_cents: int = 0  # coupons and side items


def classify(r: BuyerRecord) -> Outcome:
    if r.failed_at is None:
        if r.served_on is not None:
            return Outcome.SERVED if r.served_on == r.chosen_date else Outcome.MOVED_WITH_NOTICE
        return Outcome.REFUNDED_WITH_NOTICE if r.refunded_before_service else Outcome.PENDING
    if r.remedied_at is None:
        return Outcome.UNREMEDIED
    return Outcome.COMPENSATED if r.remedy_extra_cents > 0 else Outcome.REFUNDED


@dataclass(frozen=True)
class Visit:
    order_id: int
    quantity: int
    visit_minute: int


def serve(visits: list[Visit], capacity_left: int) -> tuple[list[int], list[int], int]:
    """A store serves the buyers who come, in the order they come, while it has capacity.

    Returns (served order ids, failed order ids, capacity left). A two-unit order the store can no longer
    serve whole fails whole; a later one-unit order may still be served.
    """
    served: list[int] = []
    failed: list[int] = []
    for v in sorted(visits, key=lambda v: (v.visit_minute, v.order_id)):
        if v.quantity <= capacity_left:
            capacity_left -= v.quantity
            served.append(v.order_id)
        else:
            failed.append(v.order_id)
    return served, failed, capacity_left


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def per_10k(part: int, whole: int) -> float:
    return round(part * 10_000 / whole, 1) if whole else 0.0


def reduction(on: int, off: int) -> float | None:
    """Share of the `off` harm that governance prevented (1.0 = all of it)."""
    return None if off == 0 else round(1 - on / off, 4)
