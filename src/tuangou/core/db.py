"""Engines, the declarative base and the unit of work.

SQLite runs in WAL mode and every writing transaction starts with
`BEGIN IMMEDIATE`, so two writers never deadlock on a lock upgrade; readers use
a second engine with deferred transactions so they never wait for writers.
PostgreSQL runs at READ COMMITTED: every counter change on the hot path is a
single conditional UPDATE, which PostgreSQL re-evaluates after a row lock wait.
"""

from __future__ import annotations

import functools
import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar, cast

from sqlalchemy import Connection, DateTime, Engine, MetaData, Table, create_engine, event, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.types import TypeDecorator

from tuangou.core.clock import Clock, SystemClock
from tuangou.core.config import Settings

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on both databases."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def normalise_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and use psycopg 3 for them."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


class NulInText(ValueError):
    """Text with a NUL character: PostgreSQL cannot store it, so SQLite refuses it too (the same answer)."""


def _has_nul(params: Any) -> bool:
    if isinstance(params, dict):
        return any(isinstance(v, str) and "\x00" in v for v in params.values())
    if isinstance(params, list | tuple):
        if params and isinstance(params[0], list | tuple | dict):
            return any(_has_nul(p) for p in params)
        return any(isinstance(v, str) and "\x00" in v for v in params)
    return False


def _sqlite_engine(url: str, synchronous: str, immediate: bool) -> Engine:
    path = url.split("///", 1)[1] if "///" in url else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 60},
                           pool_size=32, max_overflow=32)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "before_cursor_execute")
    def _refuse_nul(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        # whatever path text took (JSON, forms, multipart fields, jobs), the databases agree on NUL
        if parameters and _has_nul(parameters):
            raise NulInText("NUL characters are not accepted")

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def scratch_postgres(admin_url: str, prefix: str) -> tuple[str, Callable[[], None]]:
    """A new, empty PostgreSQL database next to `admin_url` (benchmarks, the simulator, tests);
    returns its URL and a function that drops it."""
    admin_url = normalise_url(admin_url)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return f"{admin_url.rpartition('/')[0]}/{name}", drop


class Database:
    """A write engine and a read engine (the same one on PostgreSQL)."""

    def __init__(self, url: str, *, sqlite_synchronous: str = "FULL", pool_size: int = 20) -> None:
        self.url = normalise_url(url)
        self.dialect = self.url.split(":", 1)[0].split("+", 1)[0]
        if self.dialect == "sqlite":
            self.engine = _sqlite_engine(self.url, sqlite_synchronous, immediate=True)
            self.read_engine = _sqlite_engine(self.url, sqlite_synchronous, immediate=False)
            # SQLite has one writer at a time. Threads of this process queue here, in order, instead
            # of in SQLite's busy handler, which sleeps 1…100 ms per retry and starves the unlucky
            # (flash-sale p99 went from 1.5 s to ms; docs/adr/0008). Other processes still meet
            # BEGIN IMMEDIATE + busy_timeout, so correctness never rests on this lock.
            self.write_lock: threading.RLock | None = threading.RLock()
        else:
            # No pre-ping: it is a round trip on every checkout, two per order. A connection broken by a
            # database restart fails its request once and the pool replaces it (docs/adr/0010).
            self.engine = create_engine(self.url, pool_size=pool_size, max_overflow=pool_size,
                                        pool_recycle=3600)
            self.read_engine = self.engine
            self.write_lock = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        pool = int(os.environ.get("TUANGOU_DB_POOL_SIZE", "20"))
        return cls(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous, pool_size=pool)

    def dispose(self) -> None:
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()


class UnitOfWork:
    """One transaction. Services enter it, do their work and call `commit()` once.

    Leaving without commit rolls everything back, so a refused command changes
    nothing. Callbacks registered with `after_commit` run only once the data is
    durable (side effects never precede the commit).
    """

    def __init__(self, db: Database, clock: Clock | None = None, *, readonly: bool = False) -> None:
        self.db = db
        self.clock: Clock = clock or SystemClock()
        self.readonly = readonly
        self._after: list[Callable[[], None]] = []
        self._lock: threading.RLock | None = None

    def __enter__(self) -> UnitOfWork:
        self._engine = self.db.read_engine if self.readonly else self.db.engine
        self._lock = None if self.readonly else self.db.write_lock
        if self._lock is not None:
            self._lock.acquire()
        # Connection and ORM session are made on first use: the hot path runs Core statements on the
        # connection and never pays for a session (docs/adr/0010); back-office code gets one bound to
        # the same transaction.
        self._conn: Connection | None = None
        self._session: Session | None = None
        self.now = self.clock.now()
        self._after = []
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if self._session is not None:
                self._session.close()
            if self._conn is not None:
                self._conn.close()  # rolls back whatever was not committed
        finally:
            self._session = self._conn = None
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    def after_commit(self, fn: Callable[[], None]) -> None:
        self._after.append(fn)

    @property
    def conn(self) -> Connection:
        """The transaction's connection, for Core statements (no ORM flush on the hot path)."""
        if self._conn is None:
            self._conn = self._engine.connect()
        return self._conn

    @property
    def session(self) -> Session:
        """An ORM session in this unit of work's transaction (made on first use)."""
        if self._session is None:
            self._session = Session(bind=self.conn, expire_on_commit=False, autoflush=True)
        return self._session

    def flush(self) -> None:
        if self._session is not None:
            self._session.flush()

    def commit(self) -> None:
        if self._session is not None:
            self._session.commit()  # flushes; the connection's own transaction is committed next
        if self._conn is not None and self._conn.in_transaction():
            self._conn.commit()
        callbacks, self._after = self._after, []
        for fn in callbacks:
            fn()

    def rollback(self) -> None:
        if self._session is not None:
            self._session.rollback()
        if self._conn is not None and self._conn.in_transaction():
            self._conn.rollback()
        self._after = []


def table(model: type[Base]) -> Table:
    """A model's table, typed as one (Core statements on the hot path)."""
    return cast(Table, model.__table__)


class InTransaction(Protocol):
    """A unit of work that is already open. Helpers typed with it run inside a command's
    transaction and cannot commit: only the command that opened it does (mypy checks this)."""

    db: Database
    clock: Clock
    now: datetime

    @property
    def session(self) -> Session: ...

    @property
    def conn(self) -> Connection: ...

    def after_commit(self, fn: Callable[[], None]) -> None: ...


def upsertable_insert(dialect_name: str, table: Any) -> Any:
    """An INSERT that knows ON CONFLICT, for the database at hand."""
    return pg_insert(table) if dialect_name == "postgresql" else sqlite_insert(table)


def insert_ignore(session: Session | Connection, table: Any, values: dict[str, Any], conflict: list[str]) -> int:
    """INSERT … ON CONFLICT DO NOTHING on either database; returns rows inserted."""
    stmt = upsertable_insert(session.get_bind().dialect.name if isinstance(session, Session)
                             else session.dialect.name, table)
    stmt = stmt.values(**values).on_conflict_do_nothing(index_elements=conflict)
    # RETURNING, not rowcount: psycopg reports rowcount -1 for these statements
    return len(session.execute(stmt.returning(*[getattr(table.c, c) for c in conflict])).all())


def upsert_add(session: Session | Connection, table: Any, values: dict[str, Any], conflict: list[str], column: str,
               limit: int | None) -> bool:
    """Insert `values`, or add values[column] to the existing row, unless that passes `limit`.

    One statement, so two concurrent callers can never both slip under the limit.
    """
    stmt = upsertable_insert(session.get_bind().dialect.name if isinstance(session, Session)
                             else session.dialect.name, table).values(**values)
    col = getattr(table.c, column)
    new_value = col + getattr(stmt.excluded, column)
    where = None if limit is None else new_value <= limit
    stmt = stmt.on_conflict_do_update(index_elements=conflict, set_={column: new_value}, where=where)
    return session.execute(stmt.returning(col)).first() is not None


RETRYABLE_SQLSTATES = ("40P01", "40001")  # deadlock detected, serialization failure (PostgreSQL)

_F = TypeVar("_F", bound=Callable[..., Any])


def retry_on_deadlock(fn: _F) -> _F:
    """Run a whole unit of work again when PostgreSQL picked it as a deadlock victim.

    Locks are taken in a fixed order on the hot path, but governance (a cap falling
    under what is sold) must lock a bucket before it can find the orders to move,
    while payment locks the order first. PostgreSQL breaks such a cycle by aborting
    one transaction, which rolled back whole; every service so wrapped is made of
    conditional statements, so running it again is safe.
    """
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        for attempt in range(6):
            try:
                return fn(*args, **kwargs)
            except OperationalError as exc:
                if getattr(exc.orig, "sqlstate", None) not in RETRYABLE_SQLSTATES or attempt == 5:
                    raise
                time.sleep(random.uniform(0.005, 0.02) * (attempt + 1))
        raise AssertionError("unreachable")
    return run  # type: ignore[return-value]


LOCK_WAIT_MS = 200  # how long a cursor's horizon waits for the inserts in flight before it tries next tick


def committed_max_id(db: Database, table: Any) -> int | None:
    """The highest id of `table` below which every row is committed (or never will be), so a cursor that
    reads up to it never skips a row a slower transaction commits later. Row times cannot tell that when a
    writer backdates them (orders announce events at the time they happened).

    PostgreSQL hands out ids before commit: a SHARE lock waits for the transactions inserting into the
    table right now (new inserts queue behind it for that moment), then max(id) is read and the lock let
    go at once. SQLite commits one writer at a time, in id order: max(id) is enough. None: an insert kept
    the lock longer than LOCK_WAIT_MS; the caller tries again at its next tick.
    """
    engine = db.engine if db.engine.dialect.name == "postgresql" else db.read_engine
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_WAIT_MS}ms'")
                conn.exec_driver_sql(f'LOCK TABLE "{table.name}" IN SHARE MODE')
            found = conn.execute(text(f'SELECT max(id) FROM "{table.name}"')).scalar()
            return int(found or 0)
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) == "55P03":  # lock_not_available
            return None
        raise
