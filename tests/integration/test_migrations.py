"""Migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tests.conftest import PG_URL, _fresh_postgres
from tuangou.core.db import Base, Database
from tuangou.core.migrate import upgrade


def _diff(url: str) -> list[object]:
    upgrade(url)
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), Base.metadata))
    finally:
        db.dispose()


def test_sqlite_migrations_match_models(tmp_path):
    assert _diff(f"sqlite:///{tmp_path}/m.db") == []


def test_postgres_migrations_match_models():
    if not PG_URL:
        import pytest
        pytest.skip("TUANGOU_TEST_POSTGRES_URL not set")
    url, drop = _fresh_postgres()
    try:
        assert _diff(url) == []
    finally:
        drop()


def _policies_after_0960(url, stored):
    """Migrate to 0900, store `stored` policies, migrate to 0960; the policies as they are then."""
    import json

    from alembic import command
    from sqlalchemy import create_engine, text

    from tuangou.core.migrate import alembic_config
    command.upgrade(alembic_config(url), "0900")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for name, data in stored.items():
                conn.execute(text("INSERT INTO policies (name, data, updated_at) VALUES (:n, :d, :t)"),
                             {"n": name, "d": json.dumps(data), "t": "2026-11-01 00:00:00"})
        command.upgrade(alembic_config(url), "0960")
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT name, data FROM policies")).all()
        return {n: json.loads(d) if isinstance(d, str) else d for n, d in rows}
    finally:
        engine.dispose()


def _database_urls(tmp_path, name):
    """A fresh SQLite file, and a fresh PostgreSQL database when one is configured."""
    yield f"sqlite:///{tmp_path}/{name}.db", lambda: None
    if PG_URL:
        yield _fresh_postgres()


def test_0960_moves_a_stored_safe_sales_override_to_the_one_owner(tmp_path):
    for url, drop in _database_urls(tmp_path, "a"):
        try:
            _moves_the_override(url)
        finally:
            drop()


def test_0960_keeps_a_ratio_governance_already_stores(tmp_path):
    for url, drop in _database_urls(tmp_path, "b"):
        try:
            _keeps_governance_ratio(url)
        finally:
            drop()


def _moves_the_override(url):
    # given ops had set the accountability policy's safe sales to 70% and governance kept the seed ratio
    after = _policies_after_0960(url, {
        "accountability": {"safe_sales_percent": 70, "clean_days": 9}})
    # then governance owns 0.7 and the accountability policy no longer has its own copy
    assert after["governance"] == {"safe_sales_ratio": 0.7}
    assert after["accountability"] == {"clean_days": 9}


def _keeps_governance_ratio(url):
    after = _policies_after_0960(url, {
        "accountability": {"safe_sales_percent": 70}, "governance": {"safe_sales_ratio": 0.6, "warn_remaining": 5}})
    assert after["governance"] == {"safe_sales_ratio": 0.6, "warn_remaining": 5}
    assert after["accountability"] == {}
