"""Pure logistics rules: shipment states, the shipping SLA, compensation, tracking checks, telemetry.

No storage and no clock: `now` is a parameter and every number is policy data with the seed defaults.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from tuangou.catalog.rules import Category


class OrderShipping(StrEnum):
    """Where a paid goods order stands with shipping (the order-visible `shipped`/`delivered`)."""

    AWAITING = "awaiting_shipment"  # paid, nothing shipped yet: the SLA clock runs
    PARTIAL = "partially_shipped"  # some units shipped; the rest still to come
    SHIPPED = "shipped"  # every unit handed to a carrier
    DELIVERED = "delivered"  # every shipment signed for (campaigns: at the pick-up point)
    CANCELLED = "cancelled"  # not shipped in time: the platform refunded and compensated the buyer
    CLOSED = "closed"  # ended elsewhere (the buyer refunded before shipping); nothing left to do


class ShipmentStatus(StrEnum):
    LABEL_PENDING = "label_pending"  # a replacement or re-routed parcel waiting for its tracking number
    AWAITING_SCAN = "awaiting_scan"  # tracking number uploaded, the carrier has not scanned it yet
    IN_TRANSIT = "in_transit"  # scanned at least once
    DELIVERED = "delivered"  # signed for
    EXCURSION = "excursion"  # cold chain broken: waiting for replenishment or a refund
    REPLACED = "replaced"  # spoiled; a new parcel from a backup warehouse replaces it
    REFUNDED = "refunded"  # spoiled and nothing could replace it: its units were refunded
    REROUTED = "rerouted"  # its carrier went down; a parcel with the backup carrier replaces it
    VOIDED = "voided"  # ops confirmed it as a fake shipment: it never counted


OPEN_SHIPMENT = (ShipmentStatus.LABEL_PENDING, ShipmentStatus.AWAITING_SCAN, ShipmentStatus.IN_TRANSIT)
LIVE_SHIPMENT = (*OPEN_SHIPMENT, ShipmentStatus.DELIVERED, ShipmentStatus.EXCURSION)


class EventKind(StrEnum):
    SCAN = "scan"  # picked up or sorted at a site
    POSITION = "position"  # a GPS position on the way
    TEMPERATURE = "temperature"  # a reading from the parcel's logger (°C)
    EXCEPTION = "exception"  # the carrier reports a problem (weather, outage, address)
    DELIVERED = "delivered"  # signed for


class FlagKind(StrEnum):
    REUSED_NUMBER = "reused_number"  # the same tracking number on an unrelated order
    NO_FIRST_SCAN = "no_first_scan"  # the carrier never scanned it within the expected time
    FAR_FIRST_SCAN = "far_first_scan"  # the first scan happened far from the ship-from warehouse


class FlagStatus(StrEnum):
    OPEN = "open"  # waiting for ops
    CONFIRMED = "confirmed"  # ops found it fake: a fake_shipment violation, the shipment is void
    DISMISSED = "dismissed"  # ops found an innocent explanation


class ExceptionKind(StrEnum):
    WEATHER = "weather"  # typhoon, snow
    CARRIER_OUTAGE = "carrier_outage"  # the carrier cannot pick up or deliver
    ROAD_CLOSURE = "road_closure"  # roads closed by the authorities
    OTHER = "other"  # anything else, explained in the description


class ExceptionStatus(StrEnum):
    OPEN = "open"  # reported, waiting for ops
    ACCEPTED = "accepted"  # ops accepted it: the SLA clock paused for the affected orders
    REJECTED = "rejected"  # ops rejected it: the clock never stopped


class BuyerChoice(StrEnum):
    WAIT = "wait"  # keep the re-routed parcel as it comes
    UPGRADE = "upgrade"  # faster delivery at the platform's cost
    COUPON = "coupon"  # a compensation coupon now


@dataclass(frozen=True)
class LogisticsPolicy:
    ship_within_minutes: int = 48 * 60  # from payment to the first shipment (C2)
    ship_within_minutes_by_category: dict[str, int] = field(default_factory=dict)
    warn_before_minutes: int = 12 * 60  # the merchant is warned this long before the deadline
    compensation_bps: int = 3000  # late-shipment compensation: 30 % of what the buyer paid …
    compensation_min_cents: int = 500  # … at least ¥5 …
    compensation_max_cents: int = 50000  # … at most ¥500
    first_scan_within_minutes: int = 24 * 60  # default for carriers that state none (C3)
    far_first_scan_km: int = 300  # a first scan further than this from the warehouse is suspicious
    max_pause_minutes: int = 7 * 24 * 60  # one accepted exception pauses the clock at most this long
    event_future_tolerance_s: int = 300  # carrier clocks may run this much ahead
    outage_coupon_cents: int = 1000  # the buyer's coupon when a re-routed parcel is late
    late_shipment_target_bps: int = 400  # seller performance targets (< 4 %)
    cancel_rate_target_bps: int = 250  # (< 2.5 %)
    valid_tracking_target_bps: int = 9500  # (>= 95 %)
    defect_rate_target_bps: int = 100  # (< 1 %)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def policy_from_dict(data: dict[str, Any], base: LogisticsPolicy | None = None) -> LogisticsPolicy:
    """Merge `data` over `base` (seed defaults when None); ValueError on unknown fields or nonsense."""
    base = base or LogisticsPolicy()
    known = {f.name for f in fields(LogisticsPolicy)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown policy fields: {', '.join(sorted(unknown))}")
    changes: dict[str, Any] = {}
    for name, value in data.items():
        if name == "ship_within_minutes_by_category":
            if not isinstance(value, dict):
                raise ValueError("ship_within_minutes_by_category maps a category to minutes")
            unknown_categories = set(value) - set(Category.__members__.values())
            if unknown_categories:
                raise ValueError(f"unknown categories: {', '.join(sorted(map(str, unknown_categories)))}")
            changes[name] = {str(k): _count(f"{name}.{k}", v) for k, v in value.items()}
        else:
            changes[name] = _count(name, value)
    policy = replace(base, **changes)
    if policy.compensation_min_cents > policy.compensation_max_cents:
        raise ValueError("compensation_min_cents must not exceed compensation_max_cents")
    if policy.compensation_bps > 10000:
        raise ValueError("compensation_bps is at most 10000 (100 %)")
    return policy


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > 10**9:
        raise ValueError(f"{name} must be a whole number from 0 to 10^9")
    return value


# ---- the shipping SLA (C2) ----------------------------------------------------------------------

def ship_deadline(paid_at: datetime, category: str, policy: LogisticsPolicy,
                  delivery_at: datetime | None = None) -> datetime:
    """When the first parcel must be with a carrier. A group-buy line is due by its delivery time
    when that is later (its stages have their own owners and SLAs)."""
    minutes = policy.ship_within_minutes_by_category.get(category, policy.ship_within_minutes)
    due = paid_at + timedelta(minutes=minutes)
    return max(due, delivery_at) if delivery_at is not None else due


def warn_at(due_at: datetime, policy: LogisticsPolicy) -> datetime:
    return due_at - timedelta(minutes=policy.warn_before_minutes)


def late_compensation(paid_cents: int, policy: LogisticsPolicy) -> int:
    """30 % of what the buyer paid, at least ¥5, at most ¥500 (seed numbers); 0 for a free order."""
    if paid_cents <= 0:
        return 0
    share = paid_cents * policy.compensation_bps // 10000
    return max(policy.compensation_min_cents, min(policy.compensation_max_cents, share))


def pause_minutes(starts_at: datetime, until: datetime, policy: LogisticsPolicy) -> int:
    """How long an accepted exception stops the clock: its span, capped by the policy."""
    span = max(0, math.ceil((until - starts_at).total_seconds() / 60))
    return min(span, policy.max_pause_minutes)


# ---- shipments and tracking numbers (C3) --------------------------------------------------------

def tracking_number_ok(pattern: str, number: str) -> bool:
    return re.fullmatch(pattern, number) is not None


def pattern_problem(pattern: str) -> str | None:
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"tracking_pattern is not a regular expression: {exc}"
    return None


def units_problem(order_quantity: int, already_shipped: int, units: int) -> str | None:
    if units <= 0:
        return "a shipment carries at least one unit"
    if already_shipped + units > order_quantity:
        return (f"the order has {order_quantity} unit(s) and {already_shipped} already shipped; "
                f"{units} more would be too many")
    return None


def shipping_after(order_quantity: int, shipped_units: int) -> OrderShipping:
    if shipped_units <= 0:
        return OrderShipping.AWAITING
    return OrderShipping.SHIPPED if shipped_units >= order_quantity else OrderShipping.PARTIAL


def first_scan_deadline(uploaded_at: datetime, carrier_minutes: int | None, policy: LogisticsPolicy) -> datetime:
    return uploaded_at + timedelta(minutes=carrier_minutes or policy.first_scan_within_minutes)


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine) on a 6371 km sphere."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(min(1.0, a)))


def far_first_scan(warehouse: tuple[float, float] | None, scan: tuple[float, float] | None,
                   policy: LogisticsPolicy) -> float | None:
    """The distance when the first scan is further from the warehouse than the policy allows, else None."""
    if warehouse is None or scan is None:
        return None
    km = distance_km(warehouse[0], warehouse[1], scan[0], scan[1])
    return round(km, 1) if km > policy.far_first_scan_km else None


# ---- carrier events ------------------------------------------------------------------------------

@dataclass(frozen=True)
class CarrierEvent:
    event_id: str
    tracking_number: str
    kind: EventKind
    occurred_at: datetime
    lat: float | None = None
    lon: float | None = None
    temperature_c: float | None = None
    location: str = ""
    detail: str = ""


def event_problem(e: CarrierEvent, now: datetime, policy: LogisticsPolicy) -> str | None:
    """Why a carrier event is refused, or None. Events may arrive in any order; only the future is
    impossible (beyond the carrier clocks' tolerance)."""
    if e.occurred_at > now + timedelta(seconds=policy.event_future_tolerance_s):
        return f"event {e.event_id} happened in the future ({e.occurred_at.isoformat()})"
    if e.kind == EventKind.TEMPERATURE and e.temperature_c is None:
        return f"temperature event {e.event_id} carries no temperature_c"
    if (e.lat is None) != (e.lon is None):
        return f"event {e.event_id} gives only one of lat/lon"
    return None


def conflicting_events(events: list[CarrierEvent]) -> list[str]:
    """One (tracking number, event id) sent twice in a request with different contents: the sender is
    confused about what happened, so the request is refused rather than one version kept at random.
    The same event twice is a plain duplicate, counted and ignored."""
    seen: dict[tuple[str, str], CarrierEvent] = {}
    problems = []
    for e in events:
        first = seen.setdefault((e.tracking_number, e.event_id), e)
        if first != e:
            problems.append(f"event {e.event_id} of {e.tracking_number} is sent twice with different contents")
    return problems


@dataclass(frozen=True)
class ShipmentDelta:
    """What one batch of new events says about one shipment; folded with min/max so that batches
    applied in any order, by any number of writers, end in the same state."""

    first_scan_at: datetime | None = None
    first_scan_lat: float | None = None
    first_scan_lon: float | None = None
    last_event_at: datetime | None = None
    delivered_at: datetime | None = None
    excursion_at: datetime | None = None
    exception_at: datetime | None = None


def fold_events(events: list[CarrierEvent], temp_range: tuple[float, float] | None) -> ShipmentDelta:
    ordered = sorted(events, key=lambda e: (e.occurred_at, e.event_id))
    scans = [e for e in ordered if e.kind in (EventKind.SCAN, EventKind.POSITION, EventKind.DELIVERED)]
    first = scans[0] if scans else None
    delivered = next((e.occurred_at for e in ordered if e.kind == EventKind.DELIVERED), None)
    excursion = None
    if temp_range is not None:
        low, high = temp_range
        excursion = next((e.occurred_at for e in ordered if e.kind == EventKind.TEMPERATURE
                          and e.temperature_c is not None and not low <= e.temperature_c <= high), None)
    exception = next((e.occurred_at for e in ordered if e.kind == EventKind.EXCEPTION), None)
    return ShipmentDelta(first_scan_at=first.occurred_at if first else None,
                         first_scan_lat=first.lat if first else None, first_scan_lon=first.lon if first else None,
                         last_event_at=ordered[-1].occurred_at if ordered else None, delivered_at=delivered,
                         excursion_at=excursion, exception_at=exception)


# ---- seller performance ---------------------------------------------------------------------------

WINDOWS = (7, 30, 60)


@dataclass(frozen=True)
class OrderRecord:
    """One paid goods order as the performance rates see it."""

    order_id: int
    category: str
    paid_at: datetime
    due_at: datetime
    shipped_at: datetime | None  # when the last unit shipped
    status: str
    defect: bool  # a confirmed fake shipment or a broken cold chain


@dataclass(frozen=True)
class ShipmentRecord:
    order_id: int
    category: str
    created_at: datetime
    scan_due_at: datetime
    first_scan_at: datetime | None
    voided: bool


def _rate(name: str, ids: list[int], denominator: int, target_bps: int) -> dict[str, Any]:
    """A rate where lower is better: `ids` are the orders behind the numerator."""
    bps = round(len(ids) * 10000 / denominator) if denominator else 0
    return {"metric": name, "rate_bps": bps, "numerator": len(ids), "denominator": denominator,
            "target": f"below {target_bps} bps", "ok": bps < target_bps, "order_ids": sorted(set(ids))[:200]}


def performance(orders: list[OrderRecord], shipments: list[ShipmentRecord], now: datetime, days: int,
                policy: LogisticsPolicy) -> list[dict[str, Any]]:
    """The four rates over the last `days`, with the orders behind each number."""
    since = now - timedelta(days=days)
    window = [o for o in orders if o.paid_at >= since]
    due = [o for o in window if o.due_at <= now or o.shipped_at is not None]
    late = [o.order_id for o in due if (o.shipped_at is None and o.status in (
        OrderShipping.AWAITING, OrderShipping.PARTIAL, OrderShipping.CANCELLED))
        or (o.shipped_at is not None and o.shipped_at > o.due_at)]
    cancelled = [o.order_id for o in window if o.status == OrderShipping.CANCELLED]
    checked = [s for s in shipments if s.created_at >= since and (s.scan_due_at <= now or s.first_scan_at)]
    invalid = [s.order_id for s in checked if s.voided or s.first_scan_at is None or s.first_scan_at > s.scan_due_at]
    valid_bps = 10000 - round(len(invalid) * 10000 / len(checked)) if checked else 10000
    valid = {"metric": "valid_tracking_rate", "rate_bps": valid_bps, "numerator": len(checked) - len(invalid),
             "denominator": len(checked), "target": f"at least {policy.valid_tracking_target_bps} bps",
             "ok": valid_bps >= policy.valid_tracking_target_bps, "order_ids": sorted(set(invalid))[:200]}
    defects = [o.order_id for o in window if o.defect or o.status == OrderShipping.CANCELLED]
    return [_rate("late_shipment_rate", late, len(due), policy.late_shipment_target_bps),
            _rate("pre_fulfilment_cancel_rate", cancelled, len(window), policy.cancel_rate_target_bps), valid,
            _rate("order_defect_rate", defects, len(window), policy.defect_rate_target_bps)]


@dataclass(frozen=True)
class RateCounts:
    """One merchant's window as counts (what the daily warning needs, summed in the database)."""

    orders: int
    due: int
    late: int
    cancelled: int
    defects: int
    checked: int
    invalid: int


def off_target(c: RateCounts, policy: LogisticsPolicy) -> list[tuple[str, int]]:
    """(metric, rate in basis points) of every rate that misses its target."""
    def bps(n: int, d: int) -> int:
        return round(n * 10000 / d) if d else 0
    out = []
    if c.due and bps(c.late, c.due) >= policy.late_shipment_target_bps:
        out.append(("late_shipment_rate", bps(c.late, c.due)))
    if c.orders and bps(c.cancelled, c.orders) >= policy.cancel_rate_target_bps:
        out.append(("pre_fulfilment_cancel_rate", bps(c.cancelled, c.orders)))
    if c.checked and 10000 - bps(c.invalid, c.checked) < policy.valid_tracking_target_bps:
        out.append(("valid_tracking_rate", 10000 - bps(c.invalid, c.checked)))
    if c.orders and bps(c.defects, c.orders) >= policy.defect_rate_target_bps:
        out.append(("order_defect_rate", bps(c.defects, c.orders)))
    return out
