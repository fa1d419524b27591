"""`tuangou bench tracking --events N`: carrier events in bulk through HTTP, then the logistics tick.

A fresh database gets S open shipments (paid goods orders, shipped, waiting for their first scan), made
with multi-row INSERTs; one uvicorn process serves the app; the sandbox carrier's realistic streams
(pick-up scan, hubs, positions, delivery) for those parcels are pushed as signed bulk requests of
`batch` events from `clients` threads. Then the logistics tick runs until it is idle: every
first-scan check and SLA flag is up to date. The last line is a JSON object with `events_per_s`.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from tuangou.benchmarks import dataset
from tuangou.benchmarks.flash_sale import Servers
from tuangou.core.clock import SettableClock
from tuangou.core.config import Settings
from tuangou.core.db import Database
from tuangou.core.jobs import JobContext
from tuangou.logistics import jobs, sandbox
from tuangou.notify import rules as signing

SECRET = "bench-carrier-secret"
PER_PARCEL = 6  # events in one sandbox stream without a cold chain


@dataclass
class TrackingOptions:
    events: int = 20_000
    open_shipments: int = 0  # more parcels that get no events (the tick's load), e.g. 100000
    batch: int = 2000
    clients: int = 2
    db: str = "sqlite"
    postgres_url: str | None = None
    sqlite_synchronous: str = "NORMAL"
    workdir: Path = field(default_factory=lambda: Path("var/bench"))


def generate(db: Database, parcels: int, now: datetime) -> list[str]:
    """Merchants, buyers, goods deals, paid orders with their shipping records and one parcel each."""
    merchants, buyers = 10, 200
    pw = "scrypt$00$00"
    dataset.insert_rows(db, "merchants", [{"id": m, "name": f"M{m}", "status": "active", "created_at": now}
                                          for m in range(1, merchants + 1)])
    dataset.insert_rows(db, "users", [{"id": u, "email": f"u{u}@track.bench", "name": f"u{u}", "password_hash": pw,
                                       "role": "merchant" if u <= merchants else "buyer",
                                       "merchant_id": u if u <= merchants else None, "active": True,
                                       "created_at": now} for u in range(1, merchants + buyers + 1)])
    dataset.insert_rows(db, "stores", [{"id": m, "merchant_id": m, "name": f"S{m}", "category": "fresh",
                                        "timezone": "Asia/Shanghai", "address": "", "created_at": now}
                                       for m in range(1, merchants + 1)])
    dataset.insert_rows(db, "deals", [{"id": m, "store_id": m, "merchant_id": m, "title": f"Lychees {m}",
                                       "description": "", "kind": "goods", "category": "fresh", "price_cents": 3900,
                                       "original_price_cents": 5900, "valid_from": now - timedelta(days=1),
                                       "valid_until": now + timedelta(days=30), "per_buyer_limit": None,
                                       "daily_cap": None, "total_cap": None, "slots": {}, "large_promotion": False,
                                       "status": "published", "created_at": now, "published_at": now}
                                      for m in range(1, merchants + 1)])
    dataset.insert_rows(db, "logistics_carriers", [{"code": "sandbox", "name": "Sandbox", "secret": SECRET,
                                                    "tracking_pattern": "^SB[0-9]{10}$", "first_scan_minutes": None,
                                                    "down": False, "created_at": now}])
    paid = now - timedelta(hours=2)
    orders: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    shipments: list[dict[str, Any]] = []
    numbers: list[str] = []
    for i in range(1, parcels + 1):
        m, b = (i - 1) % merchants + 1, merchants + 1 + i % buyers
        number = f"SB{i:010d}"
        numbers.append(number)
        orders.append({"id": i, "buyer_id": b, "deal_id": m, "merchant_id": m, "store_id": m, "quantity": 1,
                       "unit_price_cents": 3900, "amount_cents": 3900, "service_date": None, "slot": None,
                       "buckets": ["stock"], "status": "paid", "idempotency_key": f"t{i}", "fingerprint": "t",
                       "extra": {}, "expires_at": paid, "created_at": paid, "paid_at": paid})
        records.append({"order_id": i, "merchant_id": m, "buyer_id": b, "deal_id": m, "category": "fresh",
                        "quantity": 1, "amount_cents": 3900, "paid_at": paid, "due_at": paid + timedelta(hours=48),
                        "warn_at": paid + timedelta(hours=36), "warned_at": None, "paused_minutes": 0,
                        "status": "shipped", "shipped_units": 1, "shipped_at": now - timedelta(hours=1),
                        "delivered_at": None, "ended_at": None, "compensation_cents": 0, "defect": False})
        shipments.append({"id": i, "order_id": i, "merchant_id": m, "buyer_id": b, "deal_id": m, "carrier": "sandbox",
                          "tracking_number": number, "units": 1, "warehouse_id": None, "status": "awaiting_scan",
                          "service": "standard", "created_at": now - timedelta(hours=1),
                          "labelled_at": now - timedelta(hours=1), "scan_due_at": now + timedelta(hours=23),
                          "scan_checked": False, "reason": ""})
    dataset.insert_rows(db, "orders", orders)
    dataset.insert_rows(db, "logistics_orders", records)
    dataset.insert_rows(db, "logistics_shipments", shipments)
    return numbers


def _bodies(numbers: list[str], events: int, batch: int, now: datetime) -> list[bytes]:
    stream: list[Any] = []
    for n in numbers:
        stream.extend(sandbox.stream(n, now - timedelta(hours=12), "normal"))
        if len(stream) >= events:
            break
    stream = [e for e in stream[:events]]
    return [sandbox.body_of(stream[i:i + batch]) for i in range(0, len(stream), batch)]


def _push(port: int, bodies: list[bytes], out: list[dict[str, Any]], errors: list[str]) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
        for body in bodies:
            sig = signing.signature(SECRET, int(time.time()), body)
            r = client.post("/api/v1/carriers/sandbox/events/bulk", content=body,
                            headers={"content-type": "application/json", "X-Tuangou-Signature": sig})
            if r.status_code != 200:
                errors.append(f"{r.status_code} {r.text[:200]}")
            else:
                out.append(r.json())


def _db_backend_cpu(db: Database) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend serving this bench's database (same machine: /proc), so the
    cost per event can be compared whatever else the machine is doing. {} on SQLite."""
    if db.engine.dialect.name != "postgresql":
        return {}
    with db.engine.connect() as conn:
        # its own backend included: it may be the one the tick used (the pool hands it back)
        pids = list(conn.scalars(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")))
    tick = os.sysconf("SC_CLK_TCK")
    cpu: dict[int, float] = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu[pid] = (int(fields[11]) + int(fields[12])) / tick
    return cpu


def run(opts: TrackingOptions, step: dataset.Step | None = None) -> dict[str, Any]:
    """`step(phase, done, total)` follows the data set, the pushes and the tick (a progress bar in the CLI)."""
    from tuangou.core.migrate import upgrade
    report = step or (lambda phase, done, total: None)
    url, remove = dataset.fresh_database(opts.db, opts.postgres_url, opts.workdir)
    loadavg = round(os.getloadavg()[0], 2)
    servers: Servers | None = None
    try:
        upgrade(url)
        db = Database(url, sqlite_synchronous=opts.sqlite_synchronous)
        now = datetime.now(UTC)
        parcels = -(-opts.events // PER_PARCEL)
        t = time.perf_counter()
        report("data set", 0, 1)
        numbers = generate(db, parcels + opts.open_shipments, now)
        report("data set", 1, 1)
        generate_s = time.perf_counter() - t
        bodies = _bodies(numbers[:parcels], opts.events, opts.batch, now)
        env = {**os.environ, "TUANGOU_DATABASE_URL": url, "TUANGOU_SQLITE_SYNCHRONOUS": opts.sqlite_synchronous,
               "TUANGOU_RUN_WORKER_IN_PROCESS": "false", "TUANGOU_RATE_LIMIT": ""}
        servers = Servers(env, 1)
        servers.start()
        out: list[dict[str, Any]] = []
        errors: list[str] = []
        shares = [bodies[i::opts.clients] for i in range(opts.clients)]
        threads = [threading.Thread(target=_push, args=(servers.ports[0], s, out, errors)) for s in shares]
        cpu_before, db_before = servers.cpu_seconds(), _db_backend_cpu(db)
        t = time.perf_counter()
        for th in threads:
            th.start()
        while any(th.is_alive() for th in threads):
            report("pushes", len(out) + len(errors), len(bodies))
            next(th for th in threads if th.is_alive()).join(0.25)
        report("pushes", len(out) + len(errors), len(bodies))
        ingest_s = time.perf_counter() - t
        server_cpu = servers.cpu_seconds() - cpu_before
        db_cpu = sum(v - db_before.get(pid, 0.0) for pid, v in _db_backend_cpu(db).items())
        loadavg_after = round(os.getloadavg()[0], 2)
        servers.stop()
        servers = None
        settings = Settings(database_url=url, sqlite_synchronous=opts.sqlite_synchronous)
        ctx = JobContext(db=db, clock=SettableClock(datetime.now(UTC)), settings=settings, extras={})
        t = time.perf_counter()
        first = jobs.run_due(ctx)
        tick_s = time.perf_counter() - t
        report("ticks", 1, 2)
        second = jobs.run_due(ctx)
        flags_s = time.perf_counter() - t
        report("ticks", 2, 2)
        # a day later every open parcel still without a scan has passed its first-scan time: the tick that
        # flags them all at once (the worst case of the governance tick over the open parcels)
        ctx.clock.advance(timedelta(hours=24))  # type: ignore[attr-defined]
        cpu0, db0, load_before_deadline = time.process_time(), _db_backend_cpu(db), round(os.getloadavg()[0], 2)
        t = time.perf_counter()
        late = jobs.run_due(ctx)
        deadline_tick_s = time.perf_counter() - t
        deadline_cpu_s = time.process_time() - cpu0
        deadline_db_cpu_s = sum(v - db0.get(pid, 0.0) for pid, v in _db_backend_cpu(db).items())
        db.dispose()
        stored = sum(o["stored"] for o in out)
        return {"events": opts.events, "events_per_s": round(opts.events / ingest_s, 1) if ingest_s else 0.0,
                "ingest_s": round(ingest_s, 3), "requests": len(bodies), "batch": opts.batch, "clients": opts.clients,
                "stored": stored, "duplicates": sum(o["duplicates"] for o in out), "errors": len(errors),
                "first_error": errors[0] if errors else None, "parcels_with_events": parcels,
                "open_shipments": parcels + opts.open_shipments, "tick_s": round(tick_s, 3),
                "flags_up_to_date_s": round(flags_s, 3), "scans_checked": first["scans"]["checked"],
                "idle_tick": second["scans"]["checked"] == 0, "deadline_tick_s": round(deadline_tick_s, 3),
                "deadline_flags": late["scans"]["flagged"], "deadline_tick_cpu_s": round(deadline_cpu_s, 2),
                "deadline_tick_db_cpu_s": round(deadline_db_cpu_s, 2) if opts.db == "postgresql" else None,
                "deadline_tick_loadavg": load_before_deadline, "db": opts.db, "generate_s": round(generate_s, 2),
                "server_cpu_ms_per_1000_events": round(server_cpu * 1e6 / opts.events, 1),
                "db_cpu_ms_per_1000_events": round(db_cpu * 1e6 / opts.events, 1) if opts.db == "postgresql"
                else None, "loadavg": loadavg, "loadavg_after": loadavg_after, "cpus": os.cpu_count()}
    finally:
        if servers is not None:
            servers.stop()
        remove()


def as_json(result: dict[str, Any]) -> str:
    return json.dumps(result, separators=(",", ":"))
