"""`run(options)`: build the world once, replay it with governance on and/or off, each on a fresh database."""

from __future__ import annotations

import resource
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuangou.core.db import scratch_postgres
from tuangou.simulator import config, report, rules, world
from tuangou.simulator.driver import Driver


@dataclass
class Options:
    stores: int = 50
    days: int = 2
    seed: int = 1
    governance: str = "both"  # on | off | both
    db: str = "sqlite"  # sqlite | postgresql
    postgres_url: str | None = None
    config_path: Path | None = None
    out: Path = field(default_factory=lambda: Path("var/simulate"))


def _database(kind: str, postgres_url: str | None, workdir: Path) -> tuple[str, Callable[[], None]]:
    if kind == "sqlite":
        return f"sqlite:///{workdir}/sim-{uuid.uuid4().hex[:8]}.db", lambda: None
    if not postgres_url:
        raise SystemExit("--db postgresql needs TUANGOU_TEST_POSTGRES_URL (an admin URL)")
    return scratch_postgres(postgres_url, "tg_sim")


def run(opts: Options, progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    cfg = config.load(opts.config_path)
    city = world.build(cfg, opts.stores, opts.days, opts.seed)
    modes = config.MODES if opts.governance == "both" else (opts.governance,)
    result: dict[str, Any] = {"stores": opts.stores, "days": opts.days, "seed": opts.seed, "db": opts.db,
                              "generated_at": report.stamp(), "world": {
                                  "orders_requested": len(city.orders), "disruptions": len(city.disruptions),
                                  "honesty": {h: sum(1 for s in city.stores if s.honesty == h)
                                              for h in ("truthful", "over_declares", "oversells")},
                                  "flash_sales": sum(1 for s in city.stores if s.flash)}}
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="tuangou-sim-"))
    try:
        for mode in modes:
            url, drop = _database(opts.db, opts.postgres_url, workdir)
            try:
                done = 0

                def tick(n: int, mode: str = mode) -> None:
                    nonlocal done
                    done += n
                    if progress is not None:
                        progress(mode, done, len(city.orders))
                t0, cpu0 = time.perf_counter(), time.process_time()
                result[mode] = report.summary(Driver(city, cfg, mode, url).simulate(tick), city)
                result[mode]["seconds"] = round(time.perf_counter() - t0, 1)
                # CPU time too: on a shared machine the wall clock mostly measures the neighbours
                result[mode]["cpu_seconds"] = round(time.process_time() - cpu0, 1)
            finally:
                drop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if "on" in result and "off" in result:
        result["harm_prevented"] = rules.reduction(result["on"]["harmed_buyers"], result["off"]["harmed_buyers"])
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return result


# the numbers that must be equal for two runs of one seed (timings and stamps differ)
VOLATILE = ("seconds", "cpu_seconds", "generated_at", "peak_rss_mb")


def comparable(result: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in result.items() if k not in VOLATILE}
    for mode in config.MODES:
        if mode in out:
            out[mode] = {k: v for k, v in out[mode].items() if k not in VOLATILE}
    return out
