"""`tuangou bench governance`: one scheduled tick on a generated platform of M merchants and D deals.

The tick is `core.jobs.run_all(ctx)`, one capability at a time so each job gets its
own timing; whatever jobs exist (orders expiry/refunds/reconciliation, the outbox
relay, and capacity governance's 08:00 suggestions, hourly pushes and cap
recomputation once they land) are timed without changing this file. The clock is
set to 08:00 in Shanghai, on the hour, so daily and hourly work falls due.

The data set (made with multi-row INSERTs, not services, so 100k deals take
seconds): per merchant a login and a store; per deal today's capacity bucket and
one order (95 % paid with a voucher, 5 % reserved and past their expiry); one
unrelayed outbox event per ten deals.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tuangou.benchmarks import dataset
from tuangou.core.clock import SettableClock
from tuangou.core.config import Settings
from tuangou.core.db import Database
from tuangou.core.jobs import JobContext, run_all
from tuangou.core.registry import job_modules
from tuangou.orders.gateway import SandboxGateway

TZ = "Asia/Shanghai"


@dataclass
class GovernanceOptions:
    merchants: int = 100
    deals: int = 1000
    db: str = "sqlite"
    postgres_url: str | None = None
    workdir: Path = field(default_factory=lambda: Path("var/bench"))


def eight_oclock(today: datetime | None = None) -> datetime:
    """Today's 08:00 in Shanghai, as UTC (00:00 UTC)."""
    local = (today or datetime.now(UTC)).astimezone(ZoneInfo(TZ))
    return local.replace(hour=8, minute=0, second=0, microsecond=0).astimezone(UTC)


def generate(db: Database, merchants: int, deals: int, now: datetime) -> dict[str, int]:
    """Insert the data set; returns row counts."""
    day = now.astimezone(ZoneInfo(TZ)).date()
    pw = "scrypt$00$00"  # nobody logs in during this benchmark
    dataset.insert_rows(db, "merchants", [{"id": m, "name": f"Merchant {m}", "status": "active",
                                           "created_at": now - timedelta(days=90)} for m in range(1, merchants + 1)])
    buyers = max(10, min(5000, deals // 10))
    users = [{"id": m, "email": f"m{m}@gov.bench", "name": f"m{m}", "password_hash": pw, "role": "merchant",
              "merchant_id": m, "active": True, "created_at": now} for m in range(1, merchants + 1)]
    users += [{"id": merchants + b, "email": f"b{b}@gov.bench", "name": f"b{b}", "password_hash": pw,
               "role": "buyer", "merchant_id": None, "active": True, "created_at": now} for b in range(1, buyers + 1)]
    dataset.insert_rows(db, "users", users)
    dataset.insert_rows(db, "stores", [{"id": m, "merchant_id": m, "name": f"Store {m}", "category": "catering",
                                        "timezone": TZ, "address": "", "created_at": now}
                                       for m in range(1, merchants + 1)])
    deal_rows, buckets, orders, vouchers = [], [], [], []
    for d in range(1, deals + 1):
        m = (d - 1) % merchants + 1
        deal_rows.append({"id": d, "store_id": m, "merchant_id": m, "title": f"Deal {d}", "description": "",
                          "kind": "voucher", "category": "catering", "price_cents": 9900,
                          "original_price_cents": 19900, "valid_from": now - timedelta(days=10),
                          "valid_until": now + timedelta(days=30), "per_buyer_limit": None, "daily_cap": 20,
                          "total_cap": None, "slots": {}, "large_promotion": False, "status": "published",
                          "created_at": now - timedelta(days=10), "published_at": now - timedelta(days=10)})
        key = day.isoformat()
        paid = d % 20 != 0
        buckets.append({"deal_id": d, "key": key, "cap": 20, "sold": 1 if paid else 0,
                        "reserved": 0 if paid else 1, "open": True})
        orders.append({"id": d, "buyer_id": merchants + 1 + d % buyers, "deal_id": d, "merchant_id": m,
                       "store_id": m, "quantity": 1, "unit_price_cents": 9900, "amount_cents": 9900,
                       "service_date": day, "slot": None, "buckets": [key], "status": "paid" if paid else "reserved",
                       "idempotency_key": f"gov-{d}", "fingerprint": "gov", "extra": {},
                       "expires_at": now - timedelta(minutes=5), "created_at": now - timedelta(minutes=20),
                       "paid_at": now - timedelta(minutes=19) if paid else None,
                       "announced": 2 if paid else 1})  # their events are among the generated ones
        if paid:
            vouchers.append({"code": f"GOV{d:09d}", "order_id": d, "deal_id": d, "merchant_id": m,
                             "buyer_id": merchants + 1 + d % buyers, "price_cents": 9900, "status": "issued",
                             "issued_at": now - timedelta(minutes=19)})
    dataset.insert_rows(db, "deals", deal_rows)
    dataset.insert_rows(db, "capacity_buckets", buckets)
    dataset.insert_rows(db, "orders", orders)
    dataset.insert_rows(db, "vouchers", vouchers)
    events = [{"event_id": str(uuid.uuid4()), "type": "OrderPaid", "merchant_id": (d - 1) % merchants + 1,
               "payload": {"order_id": d}, "occurred_at": now - timedelta(minutes=1), "relayed_at": None}
              for d in range(1, deals + 1, 10)]
    dataset.insert_rows(db, "outbox_events", events)
    return {"orders": len(orders), "vouchers": len(vouchers), "events": len(events), "buyers": buyers}


def run(opts: GovernanceOptions) -> dict[str, Any]:
    from tuangou.core.migrate import upgrade
    url, remove = dataset.fresh_database(opts.db, opts.postgres_url, opts.workdir)
    loadavg = round(os.getloadavg()[0], 2)  # other work on the machine skews every figure
    try:
        upgrade(url)
        settings = Settings(database_url=url)
        db = Database(url, sqlite_synchronous=settings.sqlite_synchronous)
        clock = SettableClock(eight_oclock())
        t0 = time.perf_counter()
        counts = generate(db, opts.merchants, opts.deals, clock.now())
        generate_s = time.perf_counter() - t0
        ctx = JobContext(db=db, clock=clock, settings=settings,
                         extras={"payment_gateway": SandboxGateway(), "http": _NoHttp()})
        jobs_s: dict[str, float] = {}
        results: dict[str, Any] = {}
        for module in job_modules():
            name = module.__name__.split(".")[1]
            t = time.perf_counter()
            results.update(run_all(ctx, only=[name]))
            jobs_s[name] = round(time.perf_counter() - t, 4)
        clock.advance(timedelta(minutes=1))
        t = time.perf_counter()
        run_all(ctx)  # the next tick: idle once the due work is done, else the next batch of it
        next_tick_s = time.perf_counter() - t
        db.dispose()
        return {"merchants": opts.merchants, "deals": opts.deals, **counts, "db": opts.db,
                "generate_s": round(generate_s, 2), "jobs_s": jobs_s, "tick_s": round(sum(jobs_s.values()), 4),
                "next_tick_s": round(next_tick_s, 4), "results": results,
                "errors": sum(1 for v in results.values() if v == "failed"), "loadavg": loadavg,
                "cpus": os.cpu_count()}
    finally:
        remove()


class _NoHttp:
    """The webhook client: the data set has no endpoints, so nothing is ever sent."""

    def post(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the governance benchmark sends no webhooks")
