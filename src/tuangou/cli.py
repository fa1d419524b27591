"""`tuangou` command line: serve, worker, db, users, demo, bench, simulate."""

from __future__ import annotations

import difflib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from tuangou.core.auth import Role
from tuangou.core.config import Settings, mask_url, unknown_variables

app = typer.Typer(help="tuangou: group-buying with over-selling governance", no_args_is_help=True,
                  pretty_exceptions_enable=False)
db_app = typer.Typer(help="database schema")
users_app = typer.Typer(help="accounts")
bench_app = typer.Typer(help="benchmarks")
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(bench_app, name="bench")
console = Console()
err = Console(stderr=True)
_debug = {"on": False}


@app.callback()
def main_options(debug: bool = typer.Option(False, "--debug", help="show tracebacks of failures")) -> None:
    """Settings are checked before any command runs: a misspelled TUANGOU_* variable or an invalid
    value stops here with one line, rather than running against a default."""
    _debug["on"] = debug or _debug["on"]
    check_environment()
    compose_participants()


def check_environment() -> Settings:
    unknown = unknown_variables(os.environ)
    if unknown:
        known = [f"TUANGOU_{n.upper()}" for n in Settings.model_fields]
        hints = [f"{u}" + (f" (did you mean {m[0]}?)" if (m := difflib.get_close_matches(u, known, 1)) else "")
                 for u in unknown]
        fail(f"unknown setting {', '.join(hints)}", code=2)
    from pydantic import ValidationError
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "TUANGOU_" + str(first["loc"][0]).upper() if first.get("loc") else "a setting"
        fail(f"invalid {name}: {str(first['msg']).removeprefix('Value error, ')}", code=2)
    raise AssertionError("unreachable")


def fail(message: str, code: int = 1) -> None:
    err.print(f"[red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def describe(exc: BaseException) -> str:
    """One line for an expected failure; the traceback is for --debug."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from tuangou.core.backup import BackupError
    from tuangou.core.errors import DomainError
    if isinstance(exc, DomainError):
        return f"{exc.message} ({exc.code})"
    if isinstance(exc, BackupError):
        return str(exc)
    if isinstance(exc, OperationalError | ProgrammingError):
        orig = str(getattr(exc, "orig", exc)).strip().splitlines()
        where = mask_url(Settings().database_url) if not unknown_variables(os.environ) else "the database"
        return f"database error at {where}: {orig[0] if orig else type(exc).__name__}"
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''} (run with --debug for the traceback)"


def main() -> None:
    """The `tuangou` entry point: expected failures print one line and exit non-zero."""
    if "--debug" in sys.argv[1:]:
        _debug["on"] = True
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        if _debug["on"]:
            raise
        err.print(f"[red]error:[/] {describe(exc)}", highlight=False, soft_wrap=True)
        sys.exit(1)


@contextmanager
def progress_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    """A Rich progress bar; the callback takes (done, total)."""
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeElapsedColumn(), console=err, transient=False) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=max(total, 1))
        yield update
        bar.update(task, completed=bar.tasks[0].total or 1, total=bar.tasks[0].total or 1)


@contextmanager
def progress_phases() -> Iterator[Callable[[str, int, int], None]]:
    """Rich progress bars on stderr (stdout keeps the machine-readable last line), one per phase of a
    long run; the callback takes (phase, done, total). Off when stderr is not a terminal."""
    with Progress(SpinnerColumn(), TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, disable=not err.is_terminal, transient=False) as bar:
        tasks: dict[str, Any] = {}

        def update(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=max(total, 1))
            bar.update(tasks[phase], completed=done, total=max(total, 1))
        yield update


def _migrate(url: str) -> None:
    from tuangou.core.migrate import upgrade
    with progress_bar(f"migrating {mask_url(url)}") as step:
        upgrade(url, step)


def compose_participants() -> None:
    """Every command runs with the order participants composed (tuangou/composition.py)."""
    from tuangou.composition import compose
    compose()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration to TUANGOU_DATABASE_URL."""
    settings = Settings()
    _migrate(settings.database_url)
    console.print(f"[green]database at head[/]: {mask_url(settings.database_url)}")


@db_app.command("backup")
def db_backup(to: Path = typer.Argument(None, help="file to write (default ./var/backups/tuangou-<time>.<ext>)")) -> None:
    """A consistent backup while serving, with a .sha256 checksum and a .json manifest (rows, ledger sum)."""
    from datetime import UTC, datetime

    from tuangou.core import backup
    url = Settings().database_url
    if to is None:
        ext = "sqlite" if url.startswith("sqlite") else "dump"
        to = Path("var/backups") / f"tuangou-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.{ext}"
    with progress_bar(f"backing up {mask_url(url)}") as step:
        m = backup.backup(url, to, step)
    rows = sum(m.census.tables.values())
    console.print(f"[green]backup written[/]: {to} ({m.bytes} bytes, {rows} rows in {len(m.census.tables)} tables, "
                  f"ledger volume {m.census.ledger_volume_cents} cents) sha256 {m.sha256}", highlight=False, soft_wrap=True)


@db_app.command("restore")
def db_restore(source: Path = typer.Argument(..., help="a file written by `tuangou db backup`"),
               yes: bool = typer.Option(False, "--yes", help="replace the current database without asking")) -> None:
    """Replace TUANGOU_DATABASE_URL with a backup, after checking its checksum; then compare row counts
    and the ledger with the backup's manifest."""
    from tuangou.core import backup
    url = Settings().database_url
    backup.verify(source)
    if not yes and not typer.confirm(f"replace the database at {mask_url(url)} with {source.name}?"):
        fail("restore cancelled", code=1)
    with progress_bar(f"restoring {source.name}") as step:
        census = backup.restore(url, source, step)
    console.print(f"[green]restored[/]: {sum(census.tables.values())} rows in {len(census.tables)} tables match "
                  f"the manifest; ledger sum {census.ledger_sum_cents}", highlight=False)


@users_app.command("create")
def users_create(email: str = typer.Option(...), password: str = typer.Option(...),
                 role: Role = typer.Option(Role.OPS), name: str = typer.Option(""),
                 merchant_id: int | None = typer.Option(None)) -> None:
    """Create an account (the very first ops account comes from here)."""
    from tuangou.accounts import service
    from tuangou.core.db import Database, UnitOfWork
    from tuangou.core.registry import load_models
    load_models()
    db = Database.from_settings(Settings())
    user = service.create_user(UnitOfWork(db), None, email, password, role, name, merchant_id, "created from CLI")
    console.print(f"created {user.role} #{user.id} {user.email}")


@bench_app.command("flash-sale")
def bench_flash_sale(db: str = typer.Option("sqlite", help="sqlite or postgresql"), processes: int = 1,
                     buyers: int = 64, cap: int = 2000, seconds: float = 10.0, chaos: bool = False,
                     reserve: str = typer.Option("update", help="update (hot path) or for_update (baseline)"),
                     sqlite_synchronous: str = "NORMAL", noop_seconds: float = 4.0,
                     burst: int = typer.Option(0, help="B buyers connect, then all order at the same instant")) -> None:
    """Orders/s of a hot deal against the no-op ceiling; exits 1 on any oversell, duplicate or 5xx."""
    from tuangou.benchmarks import flash_sale, report
    with progress_phases() as step:
        result = flash_sale.run(flash_sale.FlashSaleOptions(
            db=db, processes=processes, buyers=buyers, cap=cap, seconds=seconds, chaos=chaos, reserve=reserve,
            sqlite_synchronous=sqlite_synchronous, noop_seconds=noop_seconds, burst=burst,
            postgres_url=report.postgres_url()), step)
    report.print_flash_sale(console, result)
    raise typer.Exit(1 if flash_sale.failed(result) else 0)


@bench_app.command("governance")
def bench_governance(merchants: int = 100, deals: int = 1000, db: str = "sqlite",
                     orders: int = typer.Option(0, help="orders spread over the deals (default one per deal), "
                                                        "e.g. 1000000"),
                     sizes: str = typer.Option("", help="comma-separated deal counts, e.g. 1000,10000,100000")) -> None:
    """Time one tick of every scheduled job (core.jobs.run_all) on a generated data set."""
    from tuangou.benchmarks import governance, report
    counts = [int(x) for x in sizes.split(",") if x.strip()] or [deals]
    with progress_phases() as step:
        rows = [governance.run(governance.GovernanceOptions(
            merchants=max(1, merchants * n // deals), deals=n, orders=orders * n // deals or None, db=db,
            postgres_url=report.postgres_url()), step) for n in counts]
    report.print_governance(console, rows)
    raise typer.Exit(1 if any(r["errors"] for r in rows) else 0)


@bench_app.command("tracking")
def bench_tracking(events: int = 20000, open_shipments: int = typer.Option(0, help="extra parcels with no events "
                                                                             "(the tick's load), e.g. 100000"),
                   batch: int = 2000, clients: int = 2, db: str = "sqlite", sqlite_synchronous: str = "NORMAL") -> None:
    """Carrier events/s through HTTP (signed bulk pushes), then the logistics tick until every flag is up to date."""
    from tuangou.benchmarks import report, tracking
    with progress_phases() as step:
        result = tracking.run(tracking.TrackingOptions(events=events, open_shipments=open_shipments, batch=batch,
                                                       clients=clients, db=db, postgres_url=report.postgres_url(),
                                                       sqlite_synchronous=sqlite_synchronous), step)
    for key in ("events_per_s", "ingest_s", "stored", "duplicates", "errors", "open_shipments", "tick_s",
                "flags_up_to_date_s", "deadline_tick_s", "deadline_flags", "server_cpu_ms_per_1000_events",
                "db_cpu_ms_per_1000_events", "loadavg"):
        console.print(f"{key:>20}: {result[key]}")
    print(tracking.as_json(result), flush=True)
    raise typer.Exit(1 if result["errors"] or result["stored"] != events else 0)


def _require_secret() -> None:
    """Production never runs on the public default key: anyone could sign an ops token with it."""
    problem = Settings().secret_problem()
    if problem:
        typer.echo(f"refusing to start: {problem}", err=True)
        raise typer.Exit(2)


@app.command()
def serve(host: str = "127.0.0.1", port: int = typer.Option(8000, envvar="TUANGOU_PORT"), workers: int = 1,
          with_worker: bool = typer.Option(False, help="run the scheduled worker in this process")) -> None:
    """Serve the API (uvicorn); JSON logs with a request id, an access line per request."""
    import socket

    import uvicorn
    _require_secret()

    from tuangou.core.observability import logging_config
    settings = Settings()
    probe = socket.socket()
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    finally:
        probe.close()
    if with_worker:
        os.environ["TUANGOU_RUN_WORKER_IN_PROCESS"] = "true"
    uvicorn.run("tuangou.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_config=logging_config(settings.log_format, access=settings.access_log), access_log=False,
                proxy_headers=True, forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"))


@app.command()
def worker(once: bool = typer.Option(False, help="run one tick and exit")) -> None:
    """Run the outbox relay and scheduled ticks until stopped."""
    from tuangou.core.clock import SystemClock
    from tuangou.core.db import Database
    from tuangou.core.observability import configure_logging
    from tuangou.core.registry import load_models
    from tuangou.orders.gateway import SandboxGateway
    from tuangou.worker import Worker, job_context
    _require_secret()
    settings = Settings()
    configure_logging(settings.log_format)
    load_models()
    w = Worker(job_context(settings, Database.from_settings(settings), SystemClock(), SandboxGateway(), {}))
    if once:
        console.print(w.tick())
        return
    w.loop(threading.Event())


@app.command()
def simulate(stores: int = 50, days: int = 2, seed: int = 1,
             governance: str = typer.Option("both", help="on, off or both"),
             db: str = typer.Option("sqlite", help="sqlite or postgresql (admin URL in TUANGOU_TEST_POSTGRES_URL)"),
             out: Path = typer.Option(Path("var/simulate"), help="where simulation.json and .html go"),
             config: Path | None = typer.Option(None, help="a TOML file merged over the default world and policies"),
             progress: bool = typer.Option(True, "--progress/--no-progress")) -> None:
    """A city's week through the real services, governance on and off; the last line is the JSON summary."""
    import json
    import os

    from rich.progress import Progress

    from tuangou.simulator import report as sim_report
    from tuangou.simulator import simulate as sim
    if governance not in ("on", "off", "both") or db not in ("sqlite", "postgresql"):
        raise typer.BadParameter("--governance is on|off|both and --db sqlite|postgresql")
    opts = sim.Options(stores=stores, days=days, seed=seed, governance=governance, db=db, out=out,
                       config_path=config, postgres_url=os.environ.get("TUANGOU_TEST_POSTGRES_URL"))
    with Progress(console=err, disable=not progress, transient=True) as bar:
        tasks: dict[str, object] = {}

        def step(mode: str, done: int, total: int) -> None:
            if mode not in tasks:
                tasks[mode] = bar.add_task(f"governance {mode}", total=total)
            bar.update(tasks[mode], completed=done)  # type: ignore[arg-type]
        result = sim.run(opts, step)
    console.print(sim_report.table(result))
    json_path, html_path = sim_report.write(result, out)
    console.print(f"wrote {json_path} and {html_path}")
    keys = ("harmed_buyers", "orders", "oversold_units", "p99_compensation_s", "median_compensation_s",
            "harmed_per_10k_orders", "disputes", "compensation_paid_cents", "recovered_share", "merchants_limited",
            "outcomes", "seconds", "cpu_seconds")
    line: dict[str, Any] = {k: result[k] for k in ("stores", "days", "seed", "db", "harm_prevented", "seconds", "peak_rss_mb")
            if k in result}
    line.update({m: {k: result[m][k] for k in keys} for m in ("on", "off") if m in result})
    print(json.dumps(line, sort_keys=True, default=str))


@app.command()
def demo(port: int = typer.Option(8000, envvar="TUANGOU_PORT"), serve_after: bool = typer.Option(True, "--serve/--no-serve")) -> None:
    """Migrate the embedded database, load demo data, print the accounts and serve."""
    from tuangou.demo import demo_secret, load_demo
    if "TUANGOU_SECRET_KEY" not in os.environ:  # a random key of this installation, kept under var/
        os.environ["TUANGOU_SECRET_KEY"] = demo_secret(Path("var"))
    # a person reads this terminal: text logs without a line per request, unless asked for
    os.environ.setdefault("TUANGOU_LOG_FORMAT", "text")
    os.environ.setdefault("TUANGOU_ACCESS_LOG", "false")
    settings = Settings()
    _migrate(settings.database_url)
    with progress_bar("loading demo data") as step:
        accounts = load_demo(settings, step)
    table = Table(title="demo accounts (password for all: demo-pass-1)")
    for col in ("role", "email", "what"):
        table.add_column(col)
    for row in accounts:
        table.add_row(*row)
    console.print(table)
    console.print(f"API on http://127.0.0.1:{port}  docs: http://127.0.0.1:{port}/docs")
    if serve_after:
        os.environ["TUANGOU_DEMO_MODE"] = "true"  # the sign-in page may show the demo accounts
        serve(port=port, with_worker=True)


if __name__ == "__main__":
    main()
