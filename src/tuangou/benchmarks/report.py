"""Rich tables and the final JSON line of the benchmarks."""

from __future__ import annotations

import json
import os
import queue
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table


def postgres_url() -> str | None:
    return os.environ.get("TUANGOU_BENCH_POSTGRES_URL") or os.environ.get("TUANGOU_TEST_POSTGRES_URL")


def await_phase(out: Any, progress: Any, step: Callable[[str, int, int], None] | None, timeout: float,
                total: int) -> Any:
    """`out.get(timeout)` that, while it waits, reports the load generator's order counter to `step`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return out.get(timeout=0.25 if step else timeout)
        except queue.Empty:
            if time.monotonic() > deadline:
                raise
        if step is not None:
            step("orders placed", min(progress.value, total), total)


def print_flash_sale(console: Console, r: dict[str, Any]) -> None:
    table = Table(title=f"flash sale (load {r['loadavg']}): {r['db']}, {r['processes']} process(es), {r['buyers']} buyers, "
                        f"cap {r['cap']}, reserve={r['reserve']}, {r['cpus']} cpus")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key in ("orders_per_s", "noop_per_s", "ratio", "p50_ms", "p99_ms", "order_p99_ms", "noop_p99_ms", "sold",
                "paid_orders_db", "oversold", "duplicates", "errors_5xx", "errors_4xx", "connection_resets",
                "servers_killed", "peak_rss_mb", "server_cpu_ms_per_order", "server_cpu_ms_per_noop", "cpu_ratio",
                "client_cpu_ms_per_request", "statements_per_order", "transactions_per_order",
                "burst", "answer_p50_ms", "answer_p99_ms", "last_answer_ms", "refusals", "refusals_per_s",
                "seconds", "orders_per_s_risk_off", "order_p99_ms_risk_off", "server_cpu_ms_per_order_risk_off",
                "risk_orders_per_s_change"):
        if key in r:
            table.add_row(key, str(r[key]))
    console.print(table)
    print(json.dumps(r, separators=(",", ":")), flush=True)


def print_governance(console: Console, rows: list[dict[str, Any]]) -> None:
    jobs = sorted({name for r in rows for name in r["jobs_s"]})
    table = Table(title=f"governance tick (core.jobs.run_all) on {rows[0]['db']}, seconds per job, "
                        f"{os.cpu_count()} cpus, load {rows[0]['loadavg']}")
    for col in ("merchants", "deals", "orders", *[f"job {j} s" for j in jobs], "tick s", "next tick s",
                "expired", "relayed", "KPI events", "KPI backlog"):
        table.add_column(col, justify="right")
    for r in rows:
        done = r["results"]
        table.add_row(str(r["merchants"]), str(r["deals"]), str(r["orders"]),
                      *[f"{r['jobs_s'].get(j, 0):.3f}" for j in jobs], f"{r['tick_s']:.3f}",
                      f"{r['next_tick_s']:.3f}", str(_get(done, "orders", "expired")),
                      str(_get(done, "notify", "relayed")), str(r.get("kpi_events", "-")),
                      str(r.get("kpi_backlog", "-")))
    console.print(table)
    print(json.dumps(rows[-1] if len(rows) == 1 else {"runs": rows}, separators=(",", ":")), flush=True)


def _get(results: dict[str, Any], job: str, key: str) -> Any:
    value = results.get(job)
    return value.get(key, "-") if isinstance(value, dict) else "-"
