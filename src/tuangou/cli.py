"""`tuangou` command line: serve, worker, db, users, demo, bench."""

from __future__ import annotations

import logging
import threading

import typer
from rich.console import Console
from rich.table import Table

from tuangou.core.auth import Role
from tuangou.core.config import Settings

app = typer.Typer(help="tuangou: group-buying with over-selling governance", no_args_is_help=True)
db_app = typer.Typer(help="database schema")
users_app = typer.Typer(help="accounts")
bench_app = typer.Typer(help="benchmarks")
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(bench_app, name="bench")
console = Console()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration to TUANGOU_DATABASE_URL."""
    from tuangou.core.migrate import upgrade
    settings = Settings()
    upgrade(settings.database_url)
    console.print(f"[green]database at head[/]: {settings.database_url}")


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
                     sqlite_synchronous: str = "NORMAL", noop_seconds: float = 4.0) -> None:
    """Orders/s of a hot deal against the no-op ceiling; exits 1 on any oversell, duplicate or 5xx."""
    from tuangou.benchmarks import flash_sale, report
    result = flash_sale.run(flash_sale.FlashSaleOptions(
        db=db, processes=processes, buyers=buyers, cap=cap, seconds=seconds, chaos=chaos, reserve=reserve,
        sqlite_synchronous=sqlite_synchronous, noop_seconds=noop_seconds,
        postgres_url=report.postgres_url()))
    report.print_flash_sale(console, result)
    raise typer.Exit(1 if flash_sale.failed(result) else 0)


@bench_app.command("governance")
def bench_governance(merchants: int = 100, deals: int = 1000, db: str = "sqlite",
                     sizes: str = typer.Option("", help="comma-separated deal counts, e.g. 1000,10000,100000")) -> None:
    """Time one tick of every scheduled job (core.jobs.run_all) on a generated data set."""
    from tuangou.benchmarks import governance, report
    counts = [int(x) for x in sizes.split(",") if x.strip()] or [deals]
    rows = [governance.run(governance.GovernanceOptions(merchants=max(1, merchants * n // deals), deals=n, db=db,
                                                        postgres_url=report.postgres_url())) for n in counts]
    report.print_governance(console, rows)
    raise typer.Exit(1 if any(r["errors"] for r in rows) else 0)


def _require_secret() -> None:
    """Production never runs on the public default key: anyone could sign an ops token with it."""
    problem = Settings().secret_problem()
    if problem:
        typer.echo(f"refusing to start: {problem}", err=True)
        raise typer.Exit(2)


@app.command()
def serve(host: str = "127.0.0.1", port: int = typer.Option(8000, envvar="TUANGOU_PORT"), workers: int = 1,
          with_worker: bool = typer.Option(False, help="run the scheduled worker in this process")) -> None:
    """Serve the API (uvicorn)."""
    import os

    import uvicorn
    _require_secret()
    if with_worker:
        os.environ["TUANGOU_RUN_WORKER_IN_PROCESS"] = "true"
    uvicorn.run("tuangou.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level="warning", access_log=False)


@app.command()
def worker(once: bool = typer.Option(False, help="run one tick and exit")) -> None:
    """Run the outbox relay and scheduled ticks until stopped."""
    from tuangou.core.clock import SystemClock
    from tuangou.core.db import Database
    from tuangou.core.registry import load_models
    from tuangou.orders.gateway import SandboxGateway
    from tuangou.worker import Worker, job_context
    logging.basicConfig(level=logging.INFO)
    _require_secret()
    load_models()
    settings = Settings()
    w = Worker(job_context(settings, Database.from_settings(settings), SystemClock(), SandboxGateway(), {}))
    if once:
        console.print(w.tick())
        return
    w.loop(threading.Event())


@app.command()
def demo(port: int = typer.Option(8000, envvar="TUANGOU_PORT"), serve_after: bool = typer.Option(True, "--serve/--no-serve")) -> None:
    """Migrate the embedded database, load demo data, print the accounts and serve."""
    import os
    from pathlib import Path

    from tuangou.core.migrate import upgrade
    from tuangou.demo import demo_secret, load_demo
    if "TUANGOU_SECRET_KEY" not in os.environ:  # a random key of this installation, kept under var/
        os.environ["TUANGOU_SECRET_KEY"] = demo_secret(Path("var"))
    settings = Settings()
    upgrade(settings.database_url)
    accounts = load_demo(settings)
    table = Table(title="demo accounts (password for all: demo-pass-1)")
    for col in ("role", "email", "what"):
        table.add_column(col)
    for row in accounts:
        table.add_row(*row)
    console.print(table)
    console.print(f"API on http://127.0.0.1:{port}  docs: http://127.0.0.1:{port}/docs")
    if serve_after:
        serve(port=port, with_worker=True)


if __name__ == "__main__":
    app()
