"""`tuangou db backup` / `db restore`: SQLite through its online backup API, PostgreSQL through
pg_dump / pg_restore; a SHA-256 checksum and a manifest (row counts, ledger sum) beside each backup.

A backup is consistent while the API serves: SQLite's backup API copies a snapshot page by page, and
pg_dump reads one repeatable-read snapshot. A restore checks the checksum first and the row counts and
ledger totals of the restored database against the manifest after.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from sqlalchemy import create_engine, inspect, text

from tuangou.core.db import normalise_url

Progress = Callable[[int, int], None]  # (done, total) in the backend's own units (pages, steps)


class BackupError(Exception):
    """An expected failure (missing tool, bad checksum, mismatch after restore): one line for the user."""


@dataclass(frozen=True)
class Census:
    tables: dict[str, int]  # table -> rows
    ledger_sum_cents: int  # always 0 in a sound double-entry ledger
    ledger_volume_cents: int  # sum of the positive legs: what moved

    def differences(self, other: Census) -> list[str]:
        diffs = [f"{t}: {self.tables.get(t)} rows expected, {other.tables.get(t)} found"
                 for t in sorted(set(self.tables) | set(other.tables)) if self.tables.get(t) != other.tables.get(t)]
        if (self.ledger_sum_cents, self.ledger_volume_cents) != (other.ledger_sum_cents, other.ledger_volume_cents):
            diffs.append(f"ledger sum/volume {self.ledger_sum_cents}/{self.ledger_volume_cents} expected, "
                         f"{other.ledger_sum_cents}/{other.ledger_volume_cents} found")
        return diffs


@dataclass(frozen=True)
class Manifest:
    file: str
    sha256: str
    bytes: int
    dialect: str
    created_at: str
    census: Census


def _dialect(url: str) -> str:
    return normalise_url(url).split(":", 1)[0].split("+", 1)[0]


def _sqlite_path(url: str) -> Path:
    path = normalise_url(url).split(":///", 1)[1]
    return Path(path)


def _libpq(url: str) -> str:
    """The URL pg_dump understands (no SQLAlchemy driver suffix, no password: that goes in PGPASSWORD,
    so it never shows in the process list)."""
    scheme, rest = normalise_url(url).split("://", 1)
    creds, at, host = rest.rpartition("@")
    if at and ":" in creds:
        rest = f"{creds.split(':', 1)[0]}@{host}"
    return f"postgresql://{rest}" if scheme.startswith("postgresql") else url


def _password_env(url: str) -> dict[str, str]:
    creds, at, _ = normalise_url(url).split("://", 1)[-1].rpartition("@")
    if not at or ":" not in creds:
        return dict(os.environ)
    return {**os.environ, "PGPASSWORD": unquote(creds.split(":", 1)[1])}


def census(url: str) -> Census:
    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as conn:
            names = sorted(inspect(conn).get_table_names())
            tables = {n: int(conn.execute(text(f'SELECT COUNT(*) FROM "{n}"')).scalar_one()) for n in names}
            total = volume = 0
            if "ledger_lines" in names:
                total, volume = conn.execute(text(
                    "SELECT COALESCE(SUM(amount_cents), 0), "
                    "COALESCE(SUM(CASE WHEN amount_cents > 0 THEN amount_cents ELSE 0 END), 0) FROM ledger_lines")).one()
            return Census(tables, int(total), int(volume))
    finally:
        engine.dispose()


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def manifest_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def backup(url: str, dest: Path, progress: Progress | None = None) -> Manifest:
    """Write a consistent copy of the database at `url` to `dest`, then its checksum and manifest."""
    dialect = _dialect(url)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".partial")
    tmp.unlink(missing_ok=True)
    if dialect == "sqlite":
        _sqlite_copy(_sqlite_path(url), tmp, progress)
    elif dialect == "postgresql":
        _run([_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={tmp}", _libpq(url)], progress,
             _password_env(url))
    else:
        raise BackupError(f"cannot back up a {dialect} database")
    counted = census(url) if dialect == "postgresql" else census(f"sqlite:///{tmp}")
    os.replace(tmp, dest)
    m = Manifest(dest.name, sha256_of(dest), dest.stat().st_size, dialect,
                 datetime.now(UTC).isoformat(timespec="seconds"), counted)
    manifest_path(dest).write_text(json.dumps(asdict(m), indent=2) + "\n")
    dest.with_name(dest.name + ".sha256").write_text(f"{m.sha256}  {dest.name}\n")
    return m


def read_manifest(path: Path) -> Manifest:
    try:
        data: dict[str, Any] = json.loads(manifest_path(path).read_text())
        return Manifest(**{**data, "census": Census(**data["census"])})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BackupError(f"no readable manifest {manifest_path(path).name} beside {path}") from exc


def verify(path: Path) -> Manifest:
    """The backup's manifest, after checking the file against its checksum."""
    if not path.exists():
        raise BackupError(f"no backup at {path}")
    m = read_manifest(path)
    actual = sha256_of(path)
    if actual != m.sha256:
        raise BackupError(f"checksum mismatch for {path.name}: expected {m.sha256[:12]}…, got {actual[:12]}…")
    return m


def restore(url: str, src: Path, progress: Progress | None = None) -> Census:
    """Replace the database at `url` with the backup `src`; returns its census, equal to the manifest's."""
    m = verify(src)
    dialect = _dialect(url)
    if dialect != m.dialect:
        raise BackupError(f"{src.name} is a {m.dialect} backup; the target is {dialect}")
    if dialect == "sqlite":
        target = _sqlite_path(url)
        target.parent.mkdir(parents=True, exist_ok=True)
        _sqlite_copy(src, target, progress)
    else:
        _run([_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction",
              f"--dbname={_libpq(url)}", str(src)], progress, _password_env(url))
    after = census(url)
    diffs = m.census.differences(after)
    if diffs:
        raise BackupError("restored database differs from the backup: " + "; ".join(diffs[:3]))
    return after


def _sqlite_copy(src: Path, dest: Path, progress: Progress | None) -> None:
    if not src.exists():
        raise BackupError(f"no SQLite database at {src}")
    source = sqlite3.connect(src)
    target = sqlite3.connect(dest)
    try:
        def step(_status: int, remaining: int, total: int) -> None:
            if progress is not None:
                progress(total - remaining, total)
        source.backup(target, pages=256, progress=step)
    finally:
        target.close()
        source.close()


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} not found: install the PostgreSQL client tools (Debian: postgresql-client)")
    return found


def _run(cmd: list[str], progress: Progress | None, env: dict[str, str]) -> None:
    if progress is not None:
        progress(0, 1)
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout or "failed").strip().splitlines()
        raise BackupError(f"{Path(cmd[0]).name}: {lines[-1] if lines else 'failed'}")
    if progress is not None:
        progress(1, 1)
