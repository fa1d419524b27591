"""The simulator's configuration: the world and, per mode, the policy overrides and how people behave.

Defaults below; a TOML file (`--config`) is merged over them key by key, so an operator can ask
"what if the compensation coupon were ¥10?" with two lines:

    [on.policies.governance]
    compensation_coupon_cents = 1000
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

MODES = ("on", "off")

DEFAULTS: dict[str, Any] = {
    "world": {
        "start": "2026-11-23",  # a Monday; service days start here, store-local
        "timezone": "Asia/Shanghai",
        "buyers_per_store": 12,
        # store mix by category (SPEC: catering, milk tea, bakery, fresh, KTV, fitness, shows)
        "categories": {"catering": 0.30, "beverage": 0.20, "bakery": 0.15, "fresh": 0.10,
                       "entertainment": 0.10, "fitness": 0.10, "show": 0.05},
        "price_cents": {"catering": 3900, "beverage": 1500, "bakery": 2500, "fresh": 4900,
                        "entertainment": 8800, "fitness": 6900, "show": 12000},
        "capacity_min": 3,  # units a store really serves on a weekday
        "capacity_max": 7,
        "weekend_factor_min": 1.5,  # weekend turnover x1.5-2 (seed 000)
        "weekend_factor_max": 2.0,
        "demand_ratio": 1.2,  # mean demand / real capacity (popular shops sell out)
        "demand_spread": 0.35,  # log-normal sigma of a store's popularity
        "two_unit_share": 0.2,  # orders of two units
        "pay_share": 0.95,  # the rest reserve and never pay (the hold expires)
        "lunch_share": 0.45,  # orders in the lunch peak (10:30-13:00), then dinner (16:30-19:30), rest 08-21
        "dinner_share": 0.40,
        "visit_after_minutes": [30, 120],  # the buyer arrives this long after ordering
        "flash_share": 0.10,  # stores running a flash sale (a large promotion: buy-one-get-one)
        "flash_demand": 1.8,
        # merchant honesty: most declare truthfully, some over-declare, a few over-sell on purpose
        "honesty": {"truthful": 0.80, "over_declares": 0.15, "oversells": 0.05},
        "over_declare_factor": 1.4,  # declared capacity / real capacity
        "oversell_factor": 2.0,  # an over-seller declares and offers twice what it can do
        "disruption_rate": 0.08,  # per store and day
        "disruptions": {"chef_on_leave": 0.5, "ingredients_short": 0.6, "machine_broken": 0.4},
        "dispute_share": 0.8,  # harmed buyers who complain; the rest leave unhappy
        "settle_days": 4,  # days run after the last sale day so late remedies land
    },
    # The worker: every job at these store-local times (08:01 brings the daily suggestion), and between them
    # an hourly tick of the jobs whose timing changes an outcome (expiries, refunds, escalations, limits).
    # Capacity refresh and the sales pushes cost ~10 ms per governed deal per tick, so they run at the full ticks
    # only; disruptions and declarations move caps at once in their own transactions anyway.
    "worker": {"full_ticks": ["00:05", "08:01"], "light_tick_skips": ["capacity", "governance"]},
    # The KPI board's red level (B5) pauses a whole category of the city, and the simulated ops never check and
    # resume a line: left on, it stops the city's business within a day in both modes and hides what the
    # over-selling rules (A1-A12) do. It judges no line by default here; `min_paid_orders = 20` turns it on.
    "on": {
        "policies": {"governance": {}, "disputes": {}, "accountability": {},
                     "monitoring": {"min_paid_orders": 1_000_000}},
        "people": {"merchant_admits_minutes": 30,  # a truthful merchant admits a failed order
                   "ops_decides_minutes": 180,  # escalated after 120 min, ops decide within the hour
                   "ops_flags_oversale": True},
    },
    "off": {
        # a plain shop: the merchant's static cap, no breaker, no pre-sale audit, no limits, no automatic
        # compensation, disputes refunded by hand after days (the seeds' stories: "three days later")
        "policies": {
            "governance": {"dynamic_daily_cap": False, "circuit_breaker": False, "presale_audit": False,
                           "verify_after_oversale": False, "compensation_coupon_cents": 0},
            "disputes": {"tiers": {"light": {"coupon_cents": 0}, "medium": {"side_item_cents": 0},
                                   "severe": {"coupon_cents": 0}}},
            "accountability": {"limit_below_score": 0},
            "monitoring": {"min_paid_orders": 1_000_000},
        },
        "people": {"merchant_admits_minutes": None, "ops_decides_minutes": 3 * 24 * 60,
                   "ops_flags_oversale": False},
    },
}


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` merged into a copy of `base`, tables key by key, everything else replaced."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load(path: Path | None) -> dict[str, Any]:
    if path is None:
        return copy.deepcopy(DEFAULTS)
    with path.open("rb") as fh:
        return merge(DEFAULTS, tomllib.load(fh))
