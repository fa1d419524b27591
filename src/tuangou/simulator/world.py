"""A deterministic world from a seed and the config: stores, what they can really do each day, demand, disruptions.

Pure: no database, no clock. Both modes (governance on and off) replay the very same world, so any
difference in the outcome comes from the platform's rules, not from luck.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any


@dataclass(frozen=True)
class Store:
    index: int
    category: str
    honesty: str  # truthful | over_declares | oversells
    capacity: int  # units it really serves on a weekday
    weekend_factor: float
    declared: int  # what it declares (truthful: its capacity)
    offer: int  # the static daily cap the merchant chooses for its deal
    price_cents: int
    flash: bool  # runs a large promotion (needs a pre-sale audit when governance is on)


@dataclass(frozen=True)
class OrderRequest:
    day: int  # index of the sale day
    minute: int  # store-local minute of the day the buyer orders
    visit_minute: int  # when the buyer comes to be served
    store: int
    buyer: int
    quantity: int
    pays: bool
    complains: bool  # would open a dispute if not served


@dataclass(frozen=True)
class Disruption:
    day: int
    minute: int  # when it happens (and a truthful merchant reports it)
    store: int
    kind: str
    factor: float  # share of the day's capacity left


@dataclass
class World:
    start: date
    days: int
    timezone: str
    stores: list[Store]
    buyers: int
    orders: list[OrderRequest]
    disruptions: list[Disruption]
    true_caps: dict[tuple[int, int], int] = field(default_factory=dict)  # (store, day) -> units really served

    def date_of(self, day: int) -> date:
        return self.start + timedelta(days=day)

    def capacity_on(self, store: int, day: int) -> int:
        """Units the store really serves on sale day `day` or any later one (settle days included)."""
        if (store, day) in self.true_caps:
            return self.true_caps[(store, day)]
        s = self.stores[store]
        return _day_capacity(s, self.date_of(day))


def _day_capacity(s: Store, day: date) -> int:
    return round(s.capacity * (s.weekend_factor if day.weekday() >= 5 else 1.0))


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    names = sorted(weights)
    return rng.choices(names, [weights[n] for n in names])[0]


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 50:  # normal approximation, plenty for demand counts
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _minute(rng: random.Random, w: dict[str, Any]) -> int:
    r = rng.random()
    if r < w["lunch_share"]:
        return rng.randint(10 * 60 + 30, 13 * 60)
    if r < w["lunch_share"] + w["dinner_share"]:
        return rng.randint(16 * 60 + 30, 19 * 60 + 30)
    return rng.randint(8 * 60, 21 * 60)


def build(cfg: dict[str, Any], stores: int, days: int, seed: int) -> World:
    w = cfg["world"]
    rng = random.Random(seed)
    start = date.fromisoformat(w["start"])
    made: list[Store] = []
    for i in range(stores):
        category = _pick(rng, w["categories"])
        honesty = _pick(rng, w["honesty"])
        capacity = rng.randint(w["capacity_min"], w["capacity_max"])
        weekend = round(rng.uniform(w["weekend_factor_min"], w["weekend_factor_max"]), 2)
        declared = capacity if honesty == "truthful" else math.ceil(capacity * (
            w["over_declare_factor"] if honesty == "over_declares" else w["oversell_factor"]))
        # a plain shop sets one static cap for every day: what it (says it) can do on its best day
        offer = math.ceil(declared * weekend) if honesty != "oversells" else math.ceil(capacity * weekend
                                                                                     * w["oversell_factor"])
        made.append(Store(i, category, honesty, capacity, weekend, declared, offer,
                          int(w["price_cents"][category]), rng.random() < w["flash_share"]))
    buyers = max(20, stores * int(w["buyers_per_store"]))
    popularity = [rng.lognormvariate(0, w["demand_spread"]) for _ in made]
    orders: list[OrderRequest] = []
    disruptions: list[Disruption] = []
    true_caps: dict[tuple[int, int], int] = {}
    lo, hi = w["visit_after_minutes"]
    for day in range(days):
        when = start + timedelta(days=day)
        for s in made:
            cap = _day_capacity(s, when)
            if rng.random() < w["disruption_rate"]:
                kind = _pick(rng, {k: 1.0 for k in w["disruptions"]})
                factor = float(w["disruptions"][kind])
                disruptions.append(Disruption(day, rng.randint(9 * 60, 13 * 60), s.index, kind, factor))
                cap = math.floor(cap * factor)
            true_caps[(s.index, day)] = cap
            want = w["demand_ratio"] * popularity[s.index] * _day_capacity(s, when) * (
                w["flash_demand"] if s.flash else 1.0)
            units = _poisson(rng, want)
            while units > 0:
                qty = 2 if units >= 2 and rng.random() < w["two_unit_share"] else 1
                units -= qty
                minute = _minute(rng, w)
                visit = min(22 * 60 - 1, minute + rng.randint(lo, hi))
                orders.append(OrderRequest(day, minute, visit, s.index, rng.randrange(buyers), qty,
                                           rng.random() < w["pay_share"], rng.random() < w["dispute_share"]))
    orders.sort(key=lambda o: (o.day, o.minute, o.store, o.buyer))
    return World(start, days, w["timezone"], made, buyers, orders, disruptions, true_caps)
