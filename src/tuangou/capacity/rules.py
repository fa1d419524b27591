"""Pure capacity rules: bottlenecks, day factors, disruptions, daily caps, safe sales, over-sale picks.

Nothing here reads a clock or a database; every number that is a policy lives in
`GovernancePolicy` with the seed's defaults and is stored (and editable) by ops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo


class AuditStatus(StrEnum):
    PENDING = "pending"  # filed by the merchant, waiting for ops
    APPROVED = "approved"  # ops approved; approved_cap is the deal's capacity
    REJECTED = "rejected"  # ops refused; the deal cannot be published as a large promotion


class DisruptionKind(StrEnum):
    CHEF_ON_LEAVE = "chef_on_leave"  # fewer hands in the kitchen
    INGREDIENTS_SHORT = "ingredients_short"  # the day's purchase fell short
    MACHINE_BROKEN = "machine_broken"  # equipment down
    OTHER = "other"  # anything else that cuts capacity


class OversalePick(StrEnum):
    NEWEST_FIRST = "newest_first"  # the last paid orders are moved first (the default: earliest buyers keep their day)
    OLDEST_FIRST = "oldest_first"  # the first paid orders are moved first


@dataclass(frozen=True)
class GovernancePolicy:
    """Every number of capacity governance; ops change them through the API."""

    warn_remaining: int = 10  # warn the merchant when this many units remain
    red_flag_percent: int = 85  # hourly push shows a red flag past this share sold
    compensation_coupon_cents: int = 500  # ¥5 no-threshold coupon for every over-sold buyer
    coupon_valid_days: int = 30
    max_day_factor: float = 2.0  # weekend / holiday turnover at most 2x a weekday
    safe_sales_ratio: float = 0.8  # safe sales = daily reception x activity days x 0.8
    suggestion_hour: int = 8  # store-local hour of the daily stock suggestion
    audit_value_threshold_cents: int = 2_000_000  # a day's offer worth more than ¥20,000 needs an audit
    low_stock_units: int = 10  # goods: alert when physical stock falls to this
    postpone_search_days: int = 7  # how far ahead a new date is sought for an over-sold order
    redate_window_days: int = 7  # a buyer may ask to move a booking to a date up to this many days from today
    oversale_pick: str = OversalePick.NEWEST_FIRST
    recompute_horizon_days: int = 7  # dynamic caps are kept fresh this many days ahead
    # The switches below are on in every real installation; the simulator turns them off to show a plain shop.
    dynamic_daily_cap: bool = True  # off: a deal's cap is the merchant's offer; capacity inputs never move it
    circuit_breaker: bool = True  # off: a cap that falls below what is sold leaves the over-sold orders in place
    presale_audit: bool = True  # off: a large promotion is published without a capacity audit
    # A confirmed over-sale the breaker did not see (no disruption reported) proves the declaration wrong: the
    # deal's capacity becomes what the store did serve that day, until an audit with an inspection says more.
    verify_after_oversale: bool = True

    def problems(self) -> list[str]:
        out = []
        for name in ("warn_remaining", "compensation_coupon_cents", "audit_value_threshold_cents",
                     "low_stock_units", "postpone_search_days", "recompute_horizon_days", "redate_window_days"):
            if getattr(self, name) < 0:
                out.append(f"{name} must be >= 0")
        if not 0 < self.red_flag_percent <= 100:
            out.append("red_flag_percent must be in 1..100")
        if self.coupon_valid_days <= 0:
            out.append("coupon_valid_days must be positive")
        if not 1.0 <= self.max_day_factor <= 10.0:
            out.append("max_day_factor must be in 1..10")
        if not 0 < self.safe_sales_ratio <= 1:
            out.append("safe_sales_ratio must be in (0, 1]")
        if not 0 <= self.suggestion_hour <= 23:
            out.append("suggestion_hour must be in 0..23")
        if self.oversale_pick not in OversalePick.__members__.values():
            out.append(f"oversale_pick must be one of {', '.join(OversalePick)}")
        if max(self.recompute_horizon_days, self.postpone_search_days, self.redate_window_days) > 62:
            out.append("horizons are at most 62 days")
        return out

    def merged(self, changes: dict[str, Any]) -> GovernancePolicy:
        known: dict[str, type[Any]] = {f.name: str if isinstance(getattr(self, f.name), str) else type(getattr(self, f.name))
                 for f in fields(self)}
        unknown = sorted(set(changes) - set(known))
        if unknown:
            raise ValueError(f"unknown policy fields: {', '.join(unknown)}")
        typed: dict[str, Any] = {}
        for name, value in changes.items():
            want = known[name]
            ok = isinstance(value, bool) if want is bool else (
                (isinstance(value, (int, float)) if want is float else isinstance(value, want))
                and not isinstance(value, bool))
            if not ok:
                raise ValueError(f"{name} must be a {want.__name__}")
            typed[name] = float(value) if want is float else value
        return replace(self, **typed)


# ---- declarations and bottlenecks (A1, A3) --------------------------------------------------------

@dataclass(frozen=True)
class Machine:
    name: str
    per_hour: float  # units one machine makes in an hour
    count: int = 1


@dataclass(frozen=True)
class Declaration:
    """What a store says it can do in a day; any resource left None is not a limit."""

    opens: str = "10:00"
    closes: str = "20:00"
    staff: int | None = None
    per_staff_per_hour: float | None = None
    ingredient_units_per_day: float | None = None
    max_reception_per_day: int | None = None
    machines: tuple[Machine, ...] = ()
    # units the store can hold at once (the cold room that keeps 100 jin of strawberries): the capacity of its
    # goods deals, not of its vouchers (it says nothing about how many guests a day it serves)
    storage_units: float | None = None

    def with_findings(self, findings: dict[str, Any]) -> Declaration:
        """On-site inspection findings override declared numbers; machines are matched by name."""
        plain = {k: v for k, v in findings.items() if k != "machines"}
        result = replace(self, **plain)
        if "machines" in findings:
            found = {m.name: m for m in machines_from(findings["machines"])}
            kept = [found.pop(m.name, m) for m in self.machines]
            result = replace(result, machines=tuple(kept + list(found.values())))
        return result


def machines_from(raw: list[dict[str, Any]]) -> list[Machine]:
    return [Machine(str(m["name"]), float(m["per_hour"]), int(m.get("count", 1))) for m in raw]


def parse_hhmm(value: str) -> int:
    """Minutes after midnight of 'HH:MM' (24:00 allowed)."""
    hh, sep, mm = value.partition(":")
    if not sep or not hh.isdigit() or not mm.isdigit():
        raise ValueError(f"time {value!r} is not HH:MM")
    minutes = int(hh) * 60 + int(mm)
    if int(mm) >= 60 or minutes > 24 * 60:
        raise ValueError(f"time {value!r} is not HH:MM")
    return minutes


def opening_hours(d: Declaration) -> float:
    opens, closes = parse_hhmm(d.opens), parse_hhmm(d.closes)
    if closes <= opens:
        raise ValueError("closes must be after opens")
    return (closes - opens) / 60


def declaration_problems(d: Declaration) -> list[str]:
    out = []
    try:
        opening_hours(d)
    except ValueError as exc:
        out.append(str(exc))
    for name in ("staff", "per_staff_per_hour", "ingredient_units_per_day", "max_reception_per_day",
                 "storage_units"):
        value = getattr(d, name)
        if value is not None and value < 0:
            out.append(f"{name} must be >= 0")
    if (d.staff is None) != (d.per_staff_per_hour is None):
        out.append("staff and per_staff_per_hour go together")
    for m in d.machines:
        if m.per_hour < 0 or m.count < 0 or not m.name:
            out.append(f"machine {m.name!r} needs a name, per_hour >= 0 and count >= 0")
    if len({m.name for m in d.machines}) != len(d.machines):
        out.append("machine names must be unique")
    return out


def daily_resources(d: Declaration) -> dict[str, float]:
    """Units per day each declared resource can support over the opening hours."""
    hours = opening_hours(d)
    out: dict[str, float] = {}
    if d.staff is not None and d.per_staff_per_hour is not None:
        out["staff"] = d.staff * d.per_staff_per_hour * hours
    if d.ingredient_units_per_day is not None:
        out["ingredients"] = float(d.ingredient_units_per_day)
    if d.max_reception_per_day is not None:
        out["reception"] = float(d.max_reception_per_day)
    for m in d.machines:
        out[f"machine:{m.name}"] = m.per_hour * m.count * hours
    return out


@dataclass(frozen=True)
class Bottleneck:
    cap: int | None  # deal units a day; None when nothing limits
    resource: str | None  # the tightest resource
    per_resource: dict[str, int] = field(default_factory=dict)


def bottleneck(d: Declaration, consumption: dict[str, float] | None = None) -> Bottleneck:
    """The approved daily cap: the tightest resource, each divided by what one deal unit uses of it.

    A resource the deal does not name in `consumption` is used once per unit; a
    consumption of 0 means the deal does not use it.
    """
    use = consumption or {}
    per: dict[str, int] = {}
    for name, units in daily_resources(d).items():
        need = use.get(name, use.get(name.split(":", 1)[0], 1.0))
        if need > 0:
            per[name] = math.floor(units / need + 1e-9)
    if not per:
        return Bottleneck(None, None, {})
    tightest = min(per, key=lambda k: (per[k], k))
    return Bottleneck(per[tightest], tightest, per)


def storage_bottleneck(d: Declaration, consumption: dict[str, float] | None = None) -> Bottleneck:
    """The stock a goods deal may have on sale: what the store's storage holds, divided by what one unit
    of the deal takes of it (`consumption["storage"]`, default 1; 0: the deal needs no storage)."""
    if d.storage_units is None:
        return Bottleneck(None, None, {})
    need = (consumption or {}).get("storage", 1.0)
    if need <= 0:
        return Bottleneck(None, None, {})
    cap = math.floor(d.storage_units / need + 1e-9)
    return Bottleneck(cap, "storage", {"storage": cap})


# ---- dynamic daily cap (A1) ----------------------------------------------------------------------

@dataclass(frozen=True)
class Disruption:
    starts_at: datetime
    ends_at: datetime | None  # None: until ended
    capacity_factor: float = 1.0  # share of capacity left (chef on leave: 0.5)
    max_units: int | None = None  # an absolute limit for the day (ingredients for 30 only)


def local_day_bounds(day: date, tz: str) -> tuple[datetime, datetime]:
    zone = ZoneInfo(tz)
    start = datetime.combine(day, time(0), zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(UTC)
    return start, end


def disruption_hits(dis: Disruption, day: date, tz: str, now: datetime | None = None) -> bool:
    """Whether a disruption cuts the day's cap: it overlaps what is left of the day after `now`,
    so one ended this afternoon no longer cuts today."""
    start, end = local_day_bounds(day, tz)
    if now is not None:
        start = max(start, now)
    return dis.starts_at < end and (dis.ends_at is None or dis.ends_at > start)


def next_refresh(now: datetime, tz: str, disruptions: list[Disruption]) -> datetime:
    """When time alone next changes a deal's caps: the store's next midnight (a new day enters the
    horizon) or, before it, the end of a running disruption (today's cap comes back)."""
    zone = ZoneInfo(tz)
    midnight = datetime.combine(now.astimezone(zone).date() + timedelta(days=1), time(0), zone).astimezone(UTC)
    return min([midnight, *(d.ends_at for d in disruptions if d.ends_at is not None and now < d.ends_at < midnight)])


def verified_base(base: int, capacity_that_day: int, served: int) -> int:
    """The daily capacity a store proved on a day it failed buyers: its base scaled by the share of that
    day's planned capacity it really served (the day's factor and disruptions are taken out again)."""
    if capacity_that_day <= 0 or served >= capacity_that_day:
        return base
    return max(0, math.floor(base * max(0, served) / capacity_that_day + 1e-9))


def stepped_down_base(base: int, capacity_that_day: int, served: int) -> int:
    """The daily capacity after an upheld over-sale on a day that did not fill up. A buyer turned away below
    the plan proves the store fell short, not by how much: a non-capacity failure on a slow day would cut a
    busy shop to that day's demand. So the capacity moves halfway from its base towards what the store
    served (as `verified_base` scales it), and always down by at least one unit: repeated shortfalls
    converge on what the store serves, one slow day never shuts it."""
    halfway = (base + verified_base(base, capacity_that_day, served)) // 2
    return max(0, min(halfway, base - 1))


def day_factor(day: date, weekday_factors: dict[int, float], holidays: dict[date, float],
               max_factor: float) -> float:
    """Holidays win over weekdays; no factor means 1; never above the policy's maximum."""
    factor = holidays.get(day, weekday_factors.get(day.weekday(), 1.0))
    return max(0.0, min(factor, max_factor))


def daily_cap(base: int, factor: float, disruptions: list[Disruption]) -> int:
    """Base bottleneck x day factor x every disruption's share, under every disruption's absolute limit."""
    value = base * factor
    for dis in disruptions:
        value *= max(0.0, min(1.0, dis.capacity_factor))
    cap = math.floor(value + 1e-9)
    for dis in disruptions:
        if dis.max_units is not None:
            cap = min(cap, dis.max_units)
    return max(0, cap)


def _shares(total: int, weights: dict[str, int]) -> dict[str, int]:
    """`total` (at most the weights' sum) split in proportion to `weights`: floors first, then one unit each to
    the largest remainders (ties by name), so the shares add up to `total` and none exceeds its weight."""
    whole = sum(weights.values())
    if total <= 0 or whole <= 0:
        return {k: 0 for k in weights}
    exact = {k: total * w / whole for k, w in weights.items()}
    out = {k: math.floor(v + 1e-9) for k, v in exact.items()}
    left = total - sum(out.values())
    for k in sorted(weights, key=lambda k: (-(exact[k] - out[k]), k)):
        if left <= 0:
            break
        if out[k] < weights[k]:
            out[k] += 1
            left -= 1
    return out


def split_slots(capacity: int | None, offers: dict[str, int], sold: dict[str, int], reserved: dict[str, int],
                current: dict[str, int] | None = None) -> dict[str, int]:
    """Each slot's cap when a day can serve `capacity` units over slots the merchant offers `offers` of.

    The day's capacity is handed out in layers: first what each slot sold, then what it holds unpaid, then
    the rest of its offer, each layer in proportion when the capacity runs out inside it. So the caps add
    up to min(capacity, offers), none is above the merchant's slot cap, and a slot's cap falls below what
    it sold only when the whole day sold more than the capacity (then the breaker moves that excess).
    `current` caps that already satisfy all of this are kept, so a recompute moves nothing needlessly."""
    slots = sorted(offers)
    offer = {s: max(0, offers[s]) for s in slots}
    if capacity is None or capacity >= sum(offer.values()):
        return offer
    capacity = max(0, capacity)
    paid = {s: min(max(0, sold.get(s, 0)), offer[s]) for s in slots}
    held = {s: min(max(0, reserved.get(s, 0)), offer[s] - paid[s]) for s in slots}
    if current is not None and set(current) == set(slots) and sum(current.values()) == capacity and all(
            paid[s] + held[s] <= current[s] <= offer[s] for s in slots):
        return dict(current)
    caps = {s: 0 for s in slots}
    left = capacity
    for layer in (paid, held, {s: offer[s] - paid[s] - held[s] for s in slots}):
        part = layer if sum(layer.values()) <= left else _shares(left, layer)
        for s in slots:
            caps[s] += part[s]
        left -= sum(part.values())
        if left <= 0:
            break
    return caps


def sellable_cap(offer: int, capacity: int | None) -> int:
    """What may be sold: the merchant's offer, never above what the store can serve."""
    return offer if capacity is None else min(offer, capacity)


def safe_sales(daily_reception: int, activity_days: int, ratio: float) -> int:
    """Suggested cap of a multi-day campaign (A9): daily reception x days x ratio."""
    if daily_reception < 0 or activity_days < 0:
        raise ValueError("daily_reception and activity_days must be >= 0")
    return math.floor(daily_reception * activity_days * ratio + 1e-9)


def needs_audit(large_promotion: bool, price_cents: int, daily_offer: int | None, threshold_cents: int) -> bool:
    """A large promotion (buy-one-get-one) or a day's offer worth more than the threshold."""
    return large_promotion or (daily_offer is not None and price_cents * daily_offer > threshold_cents)


# ---- while selling (A4, A5) -----------------------------------------------------------------------

def red_line_crossed(cap: int, used_before: int, used_after: int, warn_remaining: int) -> int | None:
    """The warning line (units used) this order crossed, or None.

    The line is `cap - warn_remaining` (at least 1), so a new cap draws a new line
    and earns a new warning, while orders moving back and forth across one line do not.
    """
    line = max(1, cap - warn_remaining)
    return line if used_before < line <= used_after else None


@dataclass(frozen=True)
class PaidOrder:
    id: int
    quantity: int
    created_at: datetime


def pick_oversold(orders: list[PaidOrder], over: int, pick: str = OversalePick.NEWEST_FIRST) -> list[int]:
    """Ids of the orders to move so that at least `over` units leave the bucket."""
    if over <= 0:
        return []
    ordered = sorted(orders, key=lambda o: (o.created_at, o.id), reverse=pick == OversalePick.NEWEST_FIRST)
    chosen, moved = [], 0
    for o in ordered:
        if moved >= over:
            break
        chosen.append(o.id)
        moved += o.quantity
    return chosen


def sales_line(title: str, cap: int, sold: int, reserved: int, red_flag_percent: int) -> tuple[str, bool]:
    """One line of the hourly push and whether it carries the red flag."""
    used = sold + reserved
    remaining = max(0, cap - used)
    percent = 100 if cap == 0 else math.floor(100 * used / cap)
    red = cap == 0 or percent >= red_flag_percent
    flag = "[RED] " if red else ""
    return f"{flag}{title}: sold {percent}% ({sold} sold, {reserved} held), {remaining} left of {cap}", red
