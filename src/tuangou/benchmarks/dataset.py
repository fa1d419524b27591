"""Benchmark databases: a fresh one per run, bulk-made buyers, and the checks read after a run.

Generated rows go in with multi-row INSERTs through `Base.metadata.tables` (the
benchmarks own no tables and import no capability's models): creating 10,000
buyers one scrypt sign-up at a time would take minutes, so every buyer shares
one pre-computed password hash and gets a token signed directly.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from tuangou.core.auth import Principal, Role, hash_password, issue_token
from tuangou.core.clock import SystemClock
from tuangou.core.db import Base, Database, scratch_postgres
from tuangou.core.registry import load_models

PASSWORD = "bench-pass-1"


def fresh_database(kind: str, postgres_url: str | None, workdir: Path) -> tuple[str, Callable[[], None]]:
    """A new empty database and a function that removes it."""
    if kind == "sqlite":
        workdir.mkdir(parents=True, exist_ok=True)
        path = workdir / f"bench-{uuid.uuid4().hex[:8]}.db"

        def remove() -> None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}", remove
    if not postgres_url:
        raise SystemExit("--db postgresql needs TUANGOU_BENCH_POSTGRES_URL or TUANGOU_TEST_POSTGRES_URL")
    return scratch_postgres(postgres_url, "tg_bench")


def table(name: str) -> Any:
    load_models()
    return Base.metadata.tables[name]


def insert_rows(db: Database, name: str, rows: list[dict[str, Any]], chunk: int = 2000) -> None:
    t = table(name)
    with db.engine.begin() as conn:
        for i in range(0, len(rows), chunk):
            conn.execute(t.insert(), rows[i:i + chunk])


Step = Callable[[str, int, int], None]  # (phase, done, total): a progress bar in the CLI


def _no_step(phase: str, done: int, total: int) -> None:
    return None


def stream_rows(db: Database, name: str, rows: Iterable[dict[str, Any]], total: int, step: Step | None = None,
                chunk: int = 10_000) -> int:
    """Insert many generated rows fast, in one transaction, below the ORM and SQLAlchemy's per-row work:
    COPY on PostgreSQL, the driver's executemany on SQLite, values rendered the way the column types
    would store them (aware datetimes as UTC, JSON as text).

    `rows` may be a generator (a million orders never sit in memory at once); `step` follows it.
    Generated data only (no NUL, tab or newline to guard against). Explicit ids move PostgreSQL's
    sequence past them, so later inserts by the services do not collide.
    """
    report, done = step or _no_step, 0
    report(name, 0, total)
    it = iter(rows)
    first = next(it, None)
    columns = list(first) if first is not None else []
    with db.engine.begin() as conn:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        postgres = conn.dialect.name == "postgresql"
        if not postgres:  # index pages of a million rows stay in memory (the default cache is 2 MB)
            cursor.execute("PRAGMA cache_size = -262144")
        batch: list[Any] = []

        def flush() -> None:
            if postgres:
                with cursor.copy(f"COPY {name} ({', '.join(columns)}) FROM STDIN") as copy:
                    copy.write("".join(batch))
            else:
                cursor.executemany(f"INSERT INTO {name} ({', '.join(columns)}) VALUES "
                                   f"({', '.join('?' for _ in columns)})", batch)
            batch.clear()
        for row in itertools.chain([first] if first is not None else [], it):
            if postgres:
                batch.append("\t".join([_copy_text(v) for v in row.values()]) + "\n")
            else:
                batch.append(tuple([_sqlite_value(v) for v in row.values()]))
            done += 1
            if len(batch) == chunk:
                flush()
                report(name, done, total)
        if batch:
            flush()
        if postgres and "id" in columns:
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                              f"(SELECT max(id) FROM {name}))"))
    report(name, done, max(total, done))
    return done


_COPY: dict[type, Callable[[Any], str]] = {
    type(None): lambda v: "\\N", bool: lambda v: "t" if v else "f", int: str, str: str,
    datetime: datetime.isoformat, date: date.isoformat,
    dict: lambda v: json.dumps(v).replace("\\", "\\\\"), list: lambda v: json.dumps(v).replace("\\", "\\\\")}
_SQLITE: dict[type, Callable[[Any], Any]] = {  # as SQLAlchemy's types store them there (UTCDateTime: naive UTC)
    datetime: lambda v: v.astimezone(UTC).replace(tzinfo=None).isoformat(" ", timespec="microseconds"),
    date: date.isoformat, dict: json.dumps, list: json.dumps}


def _copy_text(v: Any) -> str:
    """A value in COPY's text format."""
    return _COPY[type(v)](v)


def _sqlite_value(v: Any) -> Any:
    convert = _SQLITE.get(type(v))
    return v if convert is None else convert(v)


def make_buyers(db: Database, count: int, secret: str, tag: str) -> list[str]:
    """`count` buyer accounts in one transaction; returns one bearer token per buyer."""
    now = SystemClock().now()
    digest = hash_password(PASSWORD)
    users = table("users")
    insert_rows(db, "users", [{"email": f"buyer{i}.{tag}@bench.tuangou", "name": f"buyer{i}",
                               "password_hash": digest, "role": Role.BUYER.value, "merchant_id": None,
                               "active": True, "created_at": now} for i in range(count)])
    with db.engine.connect() as conn:
        ids = list(conn.scalars(select(users.c.id).where(users.c.email.like(f"%.{tag}@bench.tuangou"))
                                .order_by(users.c.id)))
    return [issue_token(Principal(uid, Role.BUYER), secret, now, timedelta(hours=6)) for uid in ids]


def sale_facts(db: Database, deal_id: int) -> dict[str, Any]:
    """What the database says after the sale: the counters and the orders behind them."""
    buckets, orders = table("capacity_buckets"), table("orders")
    with db.engine.connect() as conn:
        b = conn.execute(select(func.sum(buckets.c.cap), func.sum(buckets.c.sold), func.sum(buckets.c.reserved))
                         .where(buckets.c.deal_id == deal_id)).one()
        by_status: dict[str, int] = dict(conn.execute(select(orders.c.status, func.coalesce(func.sum(orders.c.quantity), 0))
                                      .where(orders.c.deal_id == deal_id).group_by(orders.c.status)).all())
        dup_keys = conn.scalar(select(func.count()).select_from(
            select(orders.c.buyer_id, orders.c.idempotency_key).where(orders.c.deal_id == deal_id)
            .group_by(orders.c.buyer_id, orders.c.idempotency_key).having(func.count() > 1).subquery()))
    return {"cap": int(b[0] or 0), "sold": int(b[1] or 0), "reserved": int(b[2] or 0),
            "paid_units": int(by_status.get("paid", 0)), "reserved_units": int(by_status.get("reserved", 0)),
            "duplicate_keys": int(dup_keys or 0)}
