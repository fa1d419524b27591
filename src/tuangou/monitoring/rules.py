"""Pure KPI rules (SPEC B5): tallies folded from events, KPIs from tallies, three warning levels.

A business line is (category, city). Tallies only grow; every KPI is a ratio of tallies, so the job
never rescans orders: it folds the events that arrived since its cursor into the tallies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from enum import IntEnum, StrEnum
from typing import Any


class Level(IntEnum):
    """Warning level of a KPI or a line; ordered so that `max` is the worst."""

    GREEN = 0  # within 10 % of every target
    YELLOW = 1  # >= 10 % off: an automatic check task for ops
    ORANGE = 2  # >= 30 % off: escalated to the ops lead
    RED = 3  # >= 50 % off: the business line is paused until ops resume it


LEVEL_NAMES = {Level.GREEN: "green", Level.YELLOW: "yellow", Level.ORANGE: "orange", Level.RED: "red"}


class Direction(StrEnum):
    HIGHER = "higher"  # a value below target is a deviation (rates of success)
    LOWER = "lower"  # a value above target is a deviation (refunds, disputes)


# KPI name -> which side of the target is bad
KPIS: dict[str, Direction] = {
    "formation_rate": Direction.HIGHER,
    "average_order_value_cents": Direction.HIGHER,
    "prepayment_coverage": Direction.HIGHER,
    "refund_rate": Direction.LOWER,
    "dispute_rate": Direction.LOWER,
    "oversale_rate": Direction.LOWER,
    "on_time_rate": Direction.HIGHER,
    "temperature_compliance": Direction.HIGHER,
}


@dataclass
class Tally:
    """Running totals of one line or merchant; every field only grows."""

    placed: int = 0  # orders placed (reserved)
    paid: int = 0  # orders paid
    paid_cents: int = 0
    refunded_cents: int = 0  # refunds owed to buyers (any cause)
    disputes: int = 0  # disputes opened
    disputes_confirmed: int = 0
    compensation_cents: int = 0  # paid out by the platform first (refund + coupons) on confirmed disputes
    recovered_cents: int = 0  # booked back from the merchant
    incidents: int = 0  # over-sale incidents
    formed: int = 0  # group-buys formed
    failed: int = 0  # group-buys failed at the deadline
    delivered: int = 0  # shipments delivered (logistics events, once that capability lands)
    delivered_on_time: int = 0
    temp_readings: int = 0  # cold-chain temperature readings
    temp_ok: int = 0

    def add(self, other: Tally) -> None:
        for name in TALLY_FIELDS:  # a KPI batch adds thousands of tallies: no fields() per call
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {name: int(getattr(self, name)) for name in TALLY_FIELDS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tally:
        names = {f.name for f in fields(cls)}
        return cls(**{k: int(v or 0) for k, v in data.items() if k in names})


TALLY_FIELDS = tuple(f.name for f in fields(Tally))


def fold(event_type: str, payload: Mapping[str, Any]) -> Tally | None:
    """What one outbox event adds to its line's and merchant's tallies (None: nothing)."""
    t = Tally()
    if event_type == "OrderPlaced":
        t.placed = 1
    elif event_type == "OrderPaid":
        t.paid, t.paid_cents = 1, int(payload.get("amount_cents", 0))
    elif event_type == "RefundOwed" and payload.get("price_adjustment"):  # the sale was cheaper, not undone
        t.paid_cents = -int(payload.get("amount_cents", 0))
    elif event_type == "RefundOwed":
        t.refunded_cents = int(payload.get("amount_cents", 0))
    elif event_type == "DisputeOpened":
        t.disputes = 1
    elif event_type == "DisputeConfirmed":
        t.disputes_confirmed = 1
        t.compensation_cents = sum(int(payload.get(k) or 0) for k in ("refund_cents", "coupon_cents",
                                                                      "side_item_cents"))
    elif event_type == "RecoveryBooked":
        t.recovered_cents = int(payload.get("amount_cents", 0))
    elif event_type == "OversaleIncidentRecorded":
        t.incidents = 1
    elif event_type == "CampaignFormed":
        t.formed = 1
    elif event_type == "CampaignFailed":
        t.failed = 1
    elif event_type == "ShipmentDelivered":  # logistics: {"on_time": bool}
        t.delivered, t.delivered_on_time = 1, int(bool(payload.get("on_time")))
    elif event_type == "TemperatureRecorded":  # logistics: {"compliant": bool}
        t.temp_readings, t.temp_ok = 1, int(bool(payload.get("compliant")))
    else:
        return None
    return t


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def kpis(t: Tally) -> dict[str, float | None]:
    """Each KPI of a tally; None while it has no denominator (no data is not a deviation)."""
    return {
        "formation_rate": _ratio(t.formed, t.formed + t.failed),
        "average_order_value_cents": round(t.paid_cents / t.paid) if t.paid else None,
        "prepayment_coverage": _ratio(t.paid, t.placed),
        "refund_rate": _ratio(t.refunded_cents, t.paid_cents),
        "dispute_rate": _ratio(t.disputes, t.paid),
        "oversale_rate": _ratio(t.incidents, t.paid),
        "on_time_rate": _ratio(t.delivered_on_time, t.delivered),
        "temperature_compliance": _ratio(t.temp_ok, t.temp_readings),
    }


@dataclass(frozen=True)
class MonitoringPolicy:
    """Targets per KPI (seed: operations, logistics and finance dashboards) and the three levels."""

    targets: dict[str, float] = field(default_factory=lambda: {
        "formation_rate": 0.8, "prepayment_coverage": 0.9, "refund_rate": 0.05, "dispute_rate": 0.02,
        "oversale_rate": 0.01, "on_time_rate": 0.95, "temperature_compliance": 0.98})
    # per line "category/city" -> KPI -> target, over the defaults above (e.g. average order value)
    line_targets: dict[str, dict[str, float]] = field(default_factory=dict)
    yellow_percent: int = 10
    orange_percent: int = 30
    red_percent: int = 50
    min_paid_orders: int = 20  # a line with fewer paid orders is not judged yet (too few to mean anything)

    def targets_for(self, category: str, city: str) -> dict[str, float]:
        return {**self.targets, **self.line_targets.get(line_key(category, city), {})}

    def as_dict(self) -> dict[str, Any]:
        return {"targets": dict(self.targets), "line_targets": {k: dict(v) for k, v in self.line_targets.items()},
                "yellow_percent": self.yellow_percent, "orange_percent": self.orange_percent,
                "red_percent": self.red_percent, "min_paid_orders": self.min_paid_orders}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MonitoringPolicy:
        base = cls()
        return cls({k: float(v) for k, v in data.get("targets", base.targets).items()},
                   {str(k): {kk: float(vv) for kk, vv in v.items()} for k, v in data.get("line_targets", {}).items()},
                   int(data.get("yellow_percent", base.yellow_percent)),
                   int(data.get("orange_percent", base.orange_percent)),
                   int(data.get("red_percent", base.red_percent)),
                   int(data.get("min_paid_orders", base.min_paid_orders)))


def policy_problems(p: MonitoringPolicy) -> list[str]:
    problems = []
    for name in [*p.targets, *(k for v in p.line_targets.values() for k in v)]:
        if name not in KPIS:
            problems.append(f"unknown KPI {name!r} (known: {', '.join(KPIS)})")
    if any(v < 0 for v in p.targets.values()) or any(x < 0 for v in p.line_targets.values() for x in v.values()):
        problems.append("targets must be >= 0")
    for key in p.line_targets:
        if key.count("/") != 1:
            problems.append(f"line {key!r} must be written category/city")
    if not 0 < p.yellow_percent < p.orange_percent < p.red_percent <= 100:
        problems.append("levels must satisfy 0 < yellow_percent < orange_percent < red_percent <= 100")
    if p.min_paid_orders < 0:
        problems.append("min_paid_orders must be >= 0")
    return problems


def line_key(category: str, city: str) -> str:
    return f"{category}/{city}"


def city_of(address: str) -> str:
    """The city of a store address written "district, city" (the last part); "-" when unknown."""
    parts = [p.strip() for p in address.replace("，", ",").split(",") if p.strip()]
    return parts[-1][:60] if parts else "-"


def deviation_percent(value: float, target: float, direction: Direction) -> float:
    """How far on the bad side of its target a value is, in percent of the target (0 when on target or better)."""
    if direction is Direction.HIGHER:
        if target <= 0 or value >= target:
            return 0.0
        return round((target - value) / target * 100, 1)
    if value <= target:
        return 0.0
    if target <= 0:
        return 100.0
    return round((value - target) / target * 100, 1)


def level_of(deviation: float, policy: MonitoringPolicy) -> Level:
    if deviation >= policy.red_percent:
        return Level.RED
    if deviation >= policy.orange_percent:
        return Level.ORANGE
    if deviation >= policy.yellow_percent:
        return Level.YELLOW
    return Level.GREEN


@dataclass(frozen=True)
class Judgement:
    level: Level
    kpis: dict[str, float | None]
    deviations: dict[str, float]  # KPI -> percent off target (only KPIs with a value and a target)
    worst: str | None  # the KPI that set the level


def judge(t: Tally, targets: Mapping[str, float], policy: MonitoringPolicy) -> Judgement:
    values = kpis(t)
    if t.paid < policy.min_paid_orders:
        return Judgement(Level.GREEN, values, {}, None)
    deviations = {name: deviation_percent(v, targets[name], KPIS[name])
                  for name, v in values.items() if v is not None and name in targets}
    worst = max(deviations, key=lambda n: deviations[n], default=None)
    level = level_of(deviations[worst], policy) if worst is not None else Level.GREEN
    return Judgement(level, values, deviations, worst if level > Level.GREEN else None)


class Action(StrEnum):
    OPEN_CHECK = "open_check"  # yellow: an automatic check task for ops
    ESCALATE = "escalate"  # orange: tell the ops lead
    PAUSE = "pause"  # red: no new listings or orders in the line


def transition_actions(old: Level, new: Level, paused: bool) -> list[Action]:
    """What a change of a line's level sets off. Only a rise acts; each level it crosses acts once.

    A fall is recorded but never unpauses: ops resume a paused line with a reason. A line resumed while
    still red is not paused again until it has left red and come back.
    """
    if new <= old:
        return []
    actions = []
    if old < Level.YELLOW <= new:
        actions.append(Action.OPEN_CHECK)
    if old < Level.ORANGE <= new:
        actions.append(Action.ESCALATE)
    if old < Level.RED <= new and not paused:
        actions.append(Action.PAUSE)
    return actions


def line_paused(paused_lines: Iterable[tuple[str, str]], category: str, city: str) -> bool:
    """Whether (category, city) is among the paused lines: orders and listings in it are refused."""
    return (category, city) in set(paused_lines)
