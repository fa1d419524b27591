"""`tuangou bench flash-sale`: a hot deal, many buyers in the same second, measured against the app's ceiling.

One run: a fresh database, N uvicorn server processes (one port each: the
generator spreads buyers over them like a load balancer, without adding a proxy
hop to the measurement), one deal with cap C, B buyers with tokens, then one
separate load-generator process that (1) warms up, (2) places and pays orders
until the deal sells out or time ends, (3) drives the no-op endpoint of the same
app with the same buyers and connections. The database is read afterwards: the
counters must match the orders, and the run fails on any oversell, duplicate or 5xx.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from tuangou.benchmarks import dataset, report
from tuangou.core.auth import Principal, Role
from tuangou.core.clock import SystemClock
from tuangou.core.db import Database, UnitOfWork

WARMUP_S = 0.5


@dataclass
class FlashSaleOptions:
    db: str = "sqlite"
    processes: int = 1
    buyers: int = 64
    cap: int = 2000
    seconds: float = 10.0
    noop_seconds: float = 4.0
    chaos: bool = False
    reserve: str = "update"  # "update" (the hot path) or "for_update" (the locking baseline)
    sqlite_synchronous: str = "NORMAL"
    pool_size: int = 8  # per process, plus as many overflow: 2 processes + a restarted one stay far below max_connections
    postgres_url: str | None = None
    workdir: Path = Path("var/bench")
    burst: int = 0  # >0: that many buyers connect first, then all place (and pay) one order at the same instant


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Servers:
    """N uvicorn processes of the same app on N ports; one may be killed and restarted."""

    def __init__(self, env: dict[str, str], count: int) -> None:
        self.env = env
        self.ports = [_free_port() for _ in range(count)]
        self.procs: list[subprocess.Popen[bytes]] = []
        self.peak_rss_mb = 0.0
        self.killed = 0
        self.cpu_of_killed = 0.0

    def _start(self, port: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "tuangou.benchmarks.server:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop", "--http", "httptools",
             "--no-access-log", "--log-level", "warning", "--backlog", "4096"], env=self.env)

    def start(self) -> None:
        self.procs = [self._start(p) for p in self.ports]
        for port in self.ports:
            self._wait_ready(port)

    def _wait_ready(self, port: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server on port {port} did not start")

    def sample_rss(self) -> None:
        for p in self.procs:
            try:
                status = Path(f"/proc/{p.pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):  # the process's peak resident set
                    self.peak_rss_mb = max(self.peak_rss_mb, int(line.split()[1]) / 1024)

    def cpu_seconds(self) -> float:
        """User + system CPU the server processes used so far (killed ones included).

        Unlike throughput, CPU per order does not depend on what else runs on the machine."""
        tick = os.sysconf("SC_CLK_TCK")
        total = self.cpu_of_killed
        for p in self.procs:
            try:
                fields = Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick
        return total

    def kill_and_restart(self, index: int) -> None:
        self.sample_rss()
        before = self.cpu_seconds()
        self.procs[index].send_signal(signal.SIGKILL)
        self.procs[index].wait()
        self.cpu_of_killed += before - self.cpu_seconds()  # what the dead process had used
        self.killed += 1
        self.procs[index] = self._start(self.ports[index])
        self._wait_ready(self.ports[index])

    def stop(self) -> None:
        self.sample_rss()
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def _seed_deal(db: Database, cap: int) -> int:
    from tuangou.accounts import service as accounts
    from tuangou.catalog import service as catalog
    clock = SystemClock()
    now = clock.now()
    merchant_id, owner = accounts.create_merchant(UnitOfWork(db, clock), None, "Cake shop",
                                                  f"cake.{secrets.token_hex(4)}@bench.tuangou", dataset.PASSWORD)
    merchant = Principal(owner.id, Role.MERCHANT, merchant_id)
    store = catalog.create_store(UnitOfWork(db, clock), merchant, "Cake shop", "catering", "Asia/Shanghai")
    deal = catalog.create_deal(UnitOfWork(db, clock), merchant, store.id, title="¥9.9 taro mille-feuille",
                               kind="goods", price_cents=990, original_price_cents=2800,
                               valid_from=now - timedelta(hours=1), valid_until=now + timedelta(days=7), stock=cap)
    catalog.publish_deal(UnitOfWork(db, clock), merchant, deal.id)
    return deal.id


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(opts: FlashSaleOptions, step: dataset.Step | None = None) -> dict[str, Any]:
    """Run one benchmark; returns the result (the JSON object the CLI prints last). `step(phase, done,
    total)` follows each sale (a progress bar in the CLI).

    Two sales in one run, each on a fresh database: with the risk checks off, then on. The figures are the
    risk-on sale's; `orders_per_s_risk_off` and `order_p99_ms_risk_off` say what the checks cost."""
    off = _run_once(replace(opts, noop_seconds=min(1.0, opts.noop_seconds)), risk=False, step=step)
    on = _run_once(opts, risk=True, step=step)
    return {**on, "orders_per_s_risk_off": off["orders_per_s"], "order_p99_ms_risk_off": off["order_p99_ms"],
            "p99_ms_risk_off": off["p99_ms"], "server_cpu_ms_per_order_risk_off": off["server_cpu_ms_per_order"],
            "statements_place_risk_off": off["statements_place"], "statements_pay_risk_off": off["statements_pay"],
            "risk_orders_per_s_change": round(on["orders_per_s"] / off["orders_per_s"] - 1, 3)
            if off["orders_per_s"] else 0.0,
            "risk_off_failed": failed(off)}


def _bench_policy(db: Database) -> None:
    """The benchmark's buyers are bots that each buy dozens of units a second: the risk checks run in full
    (every window counted, every rule evaluated) but the policy lets them all pass, so both sales sell the
    same way and only the cost of the checks differs."""
    from tuangou.accounts import service as accounts
    from tuangou.risk import rules as risk_rules
    from tuangou.risk import service as risk
    ops = accounts.create_user(UnitOfWork(db), None, f"ops.{secrets.token_hex(4)}@bench.tuangou", dataset.PASSWORD,
                               Role.OPS, "bench ops")
    unlimited = {scope: 10**8 for scope in risk_rules.SCOPES}
    risk.update_policy(UnitOfWork(db), Principal(ops.id, Role.OPS),
                       {"hold_orders": unlimited, "reject_orders": unlimited,
                        "hold_accounts": {s: 10**8 for s in risk_rules.SHARED_SCOPES}, "hold_units": 10**8},
                       "flash-sale benchmark: bots buy at full speed")


def _run_once(opts: FlashSaleOptions, *, risk: bool, step: dataset.Step | None = None) -> dict[str, Any]:
    from tuangou.composition import compose
    from tuangou.core.migrate import upgrade
    compose(risk=risk)  # this process's statement count sees what the servers run
    url, remove = dataset.fresh_database(opts.db, opts.postgres_url, opts.workdir)
    loadavg = round(os.getloadavg()[0], 2)  # other work on the machine skews every figure
    servers: Servers | None = None
    try:
        upgrade(url)
        secret = secrets.token_hex(16)
        db = Database(url, sqlite_synchronous=opts.sqlite_synchronous)
        deal_id = _seed_deal(db, opts.cap)
        _bench_policy(db)
        counts = count_statements(db)
        tokens = dataset.make_buyers(db, opts.burst or opts.buyers, secret, secrets.token_hex(3))
        env = {**os.environ, "TUANGOU_DATABASE_URL": url, "TUANGOU_SECRET_KEY": secret,
               "TUANGOU_SQLITE_SYNCHRONOUS": opts.sqlite_synchronous, "TUANGOU_DB_POOL_SIZE": str(opts.pool_size),
               "TUANGOU_RUN_WORKER_IN_PROCESS": "false", "TUANGOU_BENCH_RESERVE": opts.reserve,
               "TUANGOU_RISK_CHECKS": "true" if risk else "false",
               # a flash sale is 64 callers each at full speed: per-caller limits would measure 429s
               "TUANGOU_RATE_LIMIT": ""}
        servers = Servers(env, opts.processes)
        servers.start()
        if opts.burst:
            phases = [("warmup_noop", WARMUP_S), ("burst", opts.seconds), ("noop", opts.noop_seconds)]
        else:
            phases = [("warmup", WARMUP_S), ("orders", opts.seconds), ("noop", min(opts.seconds, opts.noop_seconds))]
        ctx = mp.get_context("spawn")
        started, out, progress = ctx.Event(), ctx.Queue(), ctx.Value("i", 0)
        from tuangou.benchmarks.loadgen import run_phases
        gen = ctx.Process(target=run_phases, args=({"phases": phases, "ports": servers.ports, "tokens": tokens,
                                                    "deal_id": deal_id, "steady_buyers": opts.buyers},
                                                   started, out, progress), daemon=True)
        gen.start()
        chaos = threading.Thread(target=_chaos, args=(servers, started, progress, opts), daemon=True)
        if opts.chaos:
            chaos.start()
        results: dict[str, dict[str, Any]] = {}
        started.wait(timeout=120)
        cpu = {"start": servers.cpu_seconds()}
        while len(results) < len(phases):
            kind, tally = report.await_phase(out, progress, step, opts.seconds * 3 + 120, opts.burst or opts.cap)
            kind = "orders" if kind == "burst" else kind
            results[kind] = tally
            cpu[kind] = servers.cpu_seconds()
            if kind == "orders":
                servers.sample_rss()
        gen.join(timeout=30)
        if opts.chaos:
            chaos.join(timeout=60)
        servers.stop()
        facts = dataset.sale_facts(db, deal_id)
        db.dispose()
        per_order = (cpu["orders"] - cpu["start"]) * 1000 / max(1, results["orders"]["paid"])
        per_noop = (cpu["noop"] - cpu["orders"]) * 1000 / max(1, results["noop"]["sequences"])
        return {**_summary(opts, results["orders"], results["noop"], facts, servers),
                "server_cpu_ms_per_order": round(per_order, 3), "server_cpu_ms_per_noop": round(per_noop, 3),
                "cpu_ratio": round(per_noop / per_order, 3) if per_order else 0.0,
                "client_cpu_ms_per_request": round(results["noop"]["client_cpu_s"] * 1000
                                                   / max(1, len(results["noop"]["latencies_ms"])), 3),
                **_burst_summary(opts, results["orders"]), **counts, "loadavg": loadavg}
    finally:
        if servers is not None:
            servers.stop()
        remove()
        compose()


def _burst_summary(opts: FlashSaleOptions, orders: dict[str, Any]) -> dict[str, Any]:
    if not opts.burst:
        return {}
    answers = orders["answers_ms"]
    refusal_s = orders["last_refusal_ms"] / 1000
    return {"burst": opts.burst, "answered": len(answers),
            "answer_p50_ms": round(_percentile(answers, 0.50), 1), "answer_p99_ms": round(_percentile(answers, 0.99), 1),
            "last_answer_ms": round(max(answers, default=0.0), 1), "refusals": orders["refusals"],
            "refusals_per_s": round(orders["refusals"] / refusal_s, 1) if refusal_s else 0.0}


def count_statements(db: Database) -> dict[str, Any]:
    """Place and pay one order in this process on a probe deal, counting what reaches the database:
    SQL statements (BEGIN/COMMIT/ROLLBACK and SQLite PRAGMAs not counted) and committed write transactions."""
    from sqlalchemy import event

    from tuangou.accounts import service as accounts
    from tuangou.orders import service as orders
    from tuangou.orders.gateway import SandboxGateway
    probe = _seed_deal(db, 1000)
    user = accounts.create_user(UnitOfWork(db), None, f"probe.{secrets.token_hex(4)}@bench.tuangou",
                                dataset.PASSWORD, Role.BUYER, "probe")
    buyer = Principal(user.id, Role.BUYER)
    gateway = SandboxGateway()
    tally = {"statements": 0, "commits": 0}

    def on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "PRAGMA", "SAVEPOINT",
                                                      "RELEASE")):
            tally["statements"] += 1

    def on_commit(conn: Any) -> None:
        tally["commits"] += 1

    engines = {id(db.engine): db.engine, id(db.read_engine): db.read_engine}
    # a first order warms the caches (compiled statements, the deal seen), as a running server has them
    order, _ = orders.place_order(UnitOfWork(db), buyer, probe, 1, "probe-warm")
    orders.pay_order(UnitOfWork(db), buyer, order.id, "", gateway)
    for engine in engines.values():
        event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(db.engine, "commit", on_commit)
    try:
        order, _ = orders.place_order(UnitOfWork(db), buyer, probe, 1, "probe-1")
        place = dict(tally)
        orders.pay_order(UnitOfWork(db), buyer, order.id, "", gateway)
    finally:
        for engine in engines.values():
            event.remove(engine, "before_cursor_execute", on_execute)
        event.remove(db.engine, "commit", on_commit)
    return {"statements_per_order": tally["statements"], "transactions_per_order": tally["commits"],
            "statements_place": place["statements"], "statements_pay": tally["statements"] - place["statements"]}


def _chaos(servers: Servers, started: Any, progress: Any, opts: FlashSaleOptions) -> None:
    """Kill one server process with SIGKILL mid-sale (a quarter of the cap paid, or a quarter of the
    time gone), then restart it on its port."""
    started.wait(timeout=120)
    deadline = time.monotonic() + opts.seconds / 4
    while progress.value < max(1, opts.cap // 4) and time.monotonic() < deadline:
        time.sleep(0.01)
    servers.kill_and_restart(len(servers.procs) - 1)


def _summary(opts: FlashSaleOptions, orders: dict[str, Any], noop: dict[str, Any], facts: dict[str, Any],
             servers: Servers) -> dict[str, Any]:
    elapsed = max(orders["elapsed_s"], 1e-9)
    orders_per_s = orders["paid"] / elapsed
    noop_per_s = noop["sequences"] / max(noop["elapsed_s"], 1e-9)
    client_oversold = max(0, orders["units"] - orders["replays"] - opts.cap)
    db_oversold = max(0, facts["sold"] + facts["reserved"] - facts["cap"], facts["paid_units"] - facts["cap"])
    return {
        "orders_per_s": round(orders_per_s, 1),
        "noop_per_s": round(noop_per_s, 1),
        "ratio": round(orders_per_s / noop_per_s, 3) if noop_per_s else 0.0,
        "p50_ms": round(_percentile(orders["latencies_ms"], 0.50), 2),
        "p99_ms": round(_percentile(orders["latencies_ms"], 0.99), 2),
        "order_p99_ms": round(_percentile(orders["order_latencies_ms"], 0.99), 2),
        "noop_p99_ms": round(_percentile(noop["latencies_ms"], 0.99), 2),
        "cap": opts.cap,
        "sold": facts["sold"],
        "paid_orders_db": facts["paid_units"],
        "sold_matches_paid": facts["sold"] == facts["paid_units"],
        "sold_out": orders["sold_out"] > 0,
        "oversold": max(client_oversold, db_oversold),
        "duplicates": orders["duplicates"] + facts["duplicate_keys"],
        "errors_5xx": orders["errors_5xx"] + noop["errors_5xx"],
        "errors_4xx": orders["errors_4xx"] + noop["errors_4xx"],
        "first_4xx": orders["first_4xx"] or noop["first_4xx"],
        "connection_resets": orders["resets"] + noop["resets"],
        "replays": orders["replays"],
        "servers_killed": servers.killed,
        "peak_rss_mb": round(servers.peak_rss_mb, 1),
        "db": opts.db,
        "processes": opts.processes,
        "buyers": opts.buyers,
        "reserve": opts.reserve,
        "sqlite_synchronous": opts.sqlite_synchronous if opts.db == "sqlite" else None,
        "seconds": round(elapsed, 2),
        "cpus": os.cpu_count(),
    }


def failed(result: dict[str, Any]) -> bool:
    return bool(result["oversold"] or result["duplicates"] or result["errors_5xx"]
                or not result["sold_matches_paid"] or result.get("risk_off_failed"))



def as_json(result: dict[str, Any]) -> str:
    return json.dumps(result, separators=(",", ":"))
