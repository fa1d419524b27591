"""`tuangou bench governance`: one scheduled tick on a generated platform of M merchants and D deals.

The tick is `core.jobs.run_all(ctx)`, one capability at a time so each job gets its
own timing; whatever jobs exist (orders expiry/refunds/reconciliation, the outbox
relay, and capacity governance's 08:00 suggestions, hourly pushes and cap
recomputation once they land) are timed without changing this file. The clock is
set to 08:00 in Shanghai, on the hour, so daily and hourly work falls due.

The data set (bulk inserts, COPY on PostgreSQL, not services, so 100k deals and
1M orders take about a minute): per merchant a login and a store (in Beijing or
Shanghai); per deal today's capacity bucket (one deal in ten sells a time slot,
one in ten is goods with a stock bucket); N orders spread over the deals (95 %
paid with a voucher, 5 % reserved and past their expiry) with the OrderPlaced /
OrderPaid events they left in the outbox (relayed, not yet folded into the KPIs:
the KPI job starts with the whole history as its backlog, its worst case); one
unrelayed outbox event per ten deals for the relay.
"""

from __future__ import annotations

import functools
import itertools
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text

from tuangou.benchmarks import dataset
from tuangou.core.clock import SettableClock
from tuangou.core.config import Settings
from tuangou.core.db import Database
from tuangou.core.jobs import JobContext, run_all
from tuangou.core.registry import job_modules
from tuangou.orders.gateway import SandboxGateway

TZ = "Asia/Shanghai"
SLOT = "18:00"  # the seating of the slotted deals
HISTORY = timedelta(days=30)  # the generated orders were placed over this past


@dataclass
class GovernanceOptions:
    merchants: int = 100
    deals: int = 1000
    orders: int | None = None  # default: one per deal
    db: str = "sqlite"
    postgres_url: str | None = None
    workdir: Path = field(default_factory=lambda: Path("var/bench"))


def eight_oclock(today: datetime | None = None) -> datetime:
    """Today's 08:00 in Shanghai, as UTC (00:00 UTC)."""
    local = (today or datetime.now(UTC)).astimezone(ZoneInfo(TZ))
    return local.replace(hour=8, minute=0, second=0, microsecond=0).astimezone(UTC)


def generate(db: Database, merchants: int, deals: int, now: datetime, orders: int | None = None,
             step: dataset.Step | None = None) -> dict[str, int]:
    """Insert the data set; returns row counts. `orders` (default: one per deal) are spread evenly over the
    deals; every order left its events in the outbox (already relayed, not yet folded into the KPIs)."""
    day = now.astimezone(ZoneInfo(TZ)).date()
    key = day.isoformat()
    n_orders = orders or deals
    per_deal = -(-n_orders // deals)  # orders of the busiest deals: their cap must hold them
    cap = max(20, per_deal + 10)
    pw = "scrypt$00$00"  # nobody logs in during this benchmark
    buyers = max(10, min(5000, n_orders // 10))
    paid = [i % 20 != 19 for i in range(20)]  # 95 % paid, 5 % reserved and past their expiry
    n_paid = (n_orders // 20) * 19 + min(n_orders % 20, 19)
    put = functools.partial(dataset.stream_rows, db, step=step)
    put("merchants", ({"id": m, "name": f"Merchant {m}", "status": "active", "created_at": now - timedelta(days=90)}
                      for m in range(1, merchants + 1)), merchants)
    put("users", itertools.chain(
        ({"id": m, "email": f"m{m}@gov.bench", "name": f"m{m}", "password_hash": pw, "role": "merchant",
          "merchant_id": m, "active": True, "created_at": now} for m in range(1, merchants + 1)),
        ({"id": merchants + b, "email": f"b{b}@gov.bench", "name": f"b{b}", "password_hash": pw, "role": "buyer",
          "merchant_id": None, "active": True, "created_at": now} for b in range(1, buyers + 1))),
        merchants + buyers)
    put("stores", ({"id": m, "merchant_id": m, "name": f"Store {m}", "category": "catering", "timezone": TZ,
                    "address": "Chaoyang, Beijing" if m % 2 else "Xuhui, Shanghai", "created_at": now}
                   for m in range(1, merchants + 1)), merchants)
    put("deals", ({"id": d, "store_id": _merchant(d, merchants), "merchant_id": _merchant(d, merchants),
                   "title": f"Deal {d}", "description": "", "kind": "goods" if _shape(d) == "goods" else "voucher",
                   "category": "catering", "price_cents": 9900, "original_price_cents": 19900,
                   "valid_from": now - timedelta(days=10), "valid_until": now + timedelta(days=30),
                   "per_buyer_limit": None, "daily_cap": cap if _shape(d) == "daily" else None, "total_cap": None,
                   "slots": {SLOT: cap} if _shape(d) == "slotted" else {}, "large_promotion": False,
                   "status": "published", "created_at": now - timedelta(days=10),
                   "published_at": now - timedelta(days=10)}
                  for d in range(1, deals + 1)), deals)

    def bucket(d: int) -> str:  # the one bucket of deal d the orders draw on
        return {"daily": key, "slotted": f"{key}@{SLOT}", "goods": "stock"}[_shape(d)]

    def units(d: int) -> tuple[int, int]:  # (paid, reserved) orders of deal d
        ids = range(d - 1, n_orders, deals)
        sold = sum(1 for i in ids if paid[i % 20])
        return sold, len(ids) - sold
    put("capacity_buckets", ({"deal_id": d, "key": bucket(d), "cap": cap, "sold": s, "reserved": r, "open": True}
                             for d in range(1, deals + 1) for s, r in [units(d)]), deals)
    # the orders came over the last HISTORY, in id order, each paid a minute after it was placed
    start, gap = now - HISTORY, HISTORY / max(n_orders, 1)

    def placed_at(i: int) -> datetime:
        return start + gap * i

    def paid_at(i: int) -> datetime:
        return placed_at(i) + timedelta(minutes=1)

    def deal_of(i: int) -> int:
        return i % deals + 1
    put("orders", ({"id": i + 1, "buyer_id": merchants + 1 + i % buyers, "deal_id": deal_of(i),
                    "merchant_id": _merchant(deal_of(i), merchants), "store_id": _merchant(deal_of(i), merchants),
                    "quantity": 1, "unit_price_cents": 9900, "amount_cents": 9900,
                    "service_date": None if _shape(deal_of(i)) == "goods" else day,
                    "slot": SLOT if _shape(deal_of(i)) == "slotted" else None,
                    "buckets": [bucket(deal_of(i))], "status": "paid" if paid[i % 20] else "reserved",
                    "idempotency_key": f"gov-{i:08d}", "fingerprint": "gov", "extra": {},
                    "expires_at": placed_at(i) + timedelta(minutes=15), "created_at": placed_at(i),
                    "paid_at": paid_at(i) if paid[i % 20] else None,
                    "announced": 2 if paid[i % 20] else 1}  # their events are among the generated ones
                   for i in range(n_orders)), n_orders)
    put("vouchers", ({"code": f"GOV{i:010d}", "order_id": i + 1, "deal_id": deal_of(i),
                      "merchant_id": _merchant(deal_of(i), merchants), "buyer_id": merchants + 1 + i % buyers,
                      "price_cents": 9900, "status": "issued", "issued_at": paid_at(i)}
                     for i in range(n_orders) if paid[i % 20]), n_paid)
    # what the orders left in the outbox: relayed to webhooks long ago, waiting for the KPI job's cursor;
    # then one unrelayed event per ten deals for the relay
    history = n_orders + n_paid
    ids = itertools.count(1)

    def event_id() -> str:  # unique and shaped like the services' uuid4s, without drawing 2M of them
        return f"00000000-0000-4000-8000-{next(ids):012d}"

    def events() -> Any:
        for i in range(n_orders):
            d, m = deal_of(i), _merchant(deal_of(i), merchants)
            yield {"event_id": event_id(), "type": "OrderPlaced", "merchant_id": m,
                   "payload": {"order_id": i + 1, "deal_id": d, "quantity": 1, "amount_cents": 9900},
                   "occurred_at": placed_at(i), "relayed_at": placed_at(i)}
            if paid[i % 20]:
                yield {"event_id": event_id(), "type": "OrderPaid", "merchant_id": m,
                       "payload": {"order_id": i + 1, "deal_id": d, "amount_cents": 9900},
                       "occurred_at": paid_at(i), "relayed_at": paid_at(i)}
        for d in range(1, deals + 1, 10):
            yield {"event_id": event_id(), "type": "CapacityChanged", "merchant_id": _merchant(d, merchants),
                   "payload": {"deal_id": d, "key": bucket(d), "cap": cap}, "occurred_at": now - timedelta(minutes=1),
                   "relayed_at": None}
    unrelayed = len(range(1, deals + 1, 10))
    put("outbox_events", events(), history + unrelayed)
    return {"orders": n_orders, "vouchers": n_paid, "events": history + unrelayed, "unrelayed": unrelayed,
            "buyers": buyers}


def _shape(deal: int) -> str:
    """One deal in ten sells a time slot (a seating), one in ten is goods (stock); the rest are daily vouchers."""
    return {1: "slotted", 2: "goods"}.get(deal % 10, "daily")


def _merchant(deal: int, merchants: int) -> int:
    return (deal - 1) % merchants + 1


def run(opts: GovernanceOptions, step: dataset.Step | None = None) -> dict[str, Any]:
    """Generate, then time one tick job by job and the tick after it; `step(phase, done, total)` follows both."""
    from tuangou.core.migrate import upgrade
    report = step or (lambda phase, done, total: None)
    url, remove = dataset.fresh_database(opts.db, opts.postgres_url, opts.workdir)
    loadavg = round(os.getloadavg()[0], 2)  # other work on the machine skews every figure
    try:
        upgrade(url)
        settings = Settings(database_url=url)
        db = Database(url, sqlite_synchronous=settings.sqlite_synchronous)
        clock = SettableClock(eight_oclock())
        t0 = time.perf_counter()
        counts = generate(db, opts.merchants, opts.deals, clock.now(), opts.orders, step)
        generate_s = time.perf_counter() - t0
        if db.engine.dialect.name == "postgresql":
            # what autovacuum does within a minute of a bulk load: without statistics the planner takes the
            # freshly copied tables for empty and picks nested loops over 100,000 rows (the live-deal reads of
            # the 08:00 suggestions took 30 s instead of 1 ms before this was added)
            with db.engine.connect() as conn:
                conn.execute(text("ANALYZE"))
                conn.commit()
        ctx = JobContext(db=db, clock=clock, settings=settings,
                         extras={"payment_gateway": SandboxGateway(), "http": _NoHttp()})
        jobs_s: dict[str, float] = {}
        results: dict[str, Any] = {}
        modules = job_modules()
        # the jobs that open every tick (`run_first`, e.g. orders announcing their events) run alone first;
        # each call below runs them again, idle then, so every job's time is read from ctx.durations
        results.update(run_all(ctx, only=["-"]))
        jobs_s.update(ctx.durations)
        for i, module in enumerate(modules):
            name = module.__name__.split(".")[1]
            report("tick, job by job", i, len(modules))
            results.update({k: v for k, v in run_all(ctx, only=[name]).items() if "." not in k})
            jobs_s[name] = ctx.durations.get(name, 0.0)
        report("tick, job by job", len(modules), len(modules))
        clock.advance(timedelta(minutes=1))
        t = time.perf_counter()
        after = run_all(ctx)  # the next tick: idle once the due work is done, else the next batch of it
        next_tick_s = time.perf_counter() - t
        report("next tick", 1, 1)
        kpi = _kpi_figures(db, results.get("monitoring"), after.get("monitoring"))
        db.dispose()
        return {"merchants": opts.merchants, "deals": opts.deals, **counts, "db": opts.db,
                "generate_s": round(generate_s, 2), "rows_per_s": round(_rows(counts) / generate_s) if generate_s else 0,
                "jobs_s": jobs_s, "tick_s": round(sum(jobs_s.values()), 4), "next_tick_s": round(next_tick_s, 4),
                "kpi_s": jobs_s.get("monitoring"), "next_kpi_s": ctx.durations.get("monitoring"), **kpi,
                "results": results, "errors": sum(1 for v in [*results.values(), *after.values()] if v == "failed"),
                "loadavg": loadavg, "loadavg_end": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}
    finally:
        remove()


def _rows(counts: dict[str, int]) -> int:
    return counts["orders"] * 2 + counts["events"]


def _kpi_figures(db: Database, first: Any, second: Any) -> dict[str, Any]:
    """How much of the outbox the KPI job folded in each tick and how much is left behind its cursor."""
    cursors, events = dataset.table("event_cursors"), dataset.table("outbox_events")
    with db.engine.connect() as conn:
        at = conn.scalar(select(cursors.c.last_event_id).where(cursors.c.name == "kpi")) or 0
        left = conn.scalar(select(func.count()).select_from(events).where(events.c.id > at))
    folded = [r.get("events") if isinstance(r, dict) else None for r in (first, second)]
    return {"kpi_events": folded[0], "next_kpi_events": folded[1], "kpi_backlog": int(left or 0)}


class _NoHttp:
    """The webhook client: the data set has no endpoints, so nothing is ever sent."""

    def post(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the governance benchmark sends no webhooks")
