"""Benchmark databases: a fresh one per run, bulk-made buyers, and the checks read after a run.

Generated rows go in with multi-row INSERTs through `Base.metadata.tables` (the
benchmarks own no tables and import no capability's models): creating 10,000
buyers one scrypt sign-up at a time would take minutes, so every buyer shares
one pre-computed password hash and gets a token signed directly.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

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
