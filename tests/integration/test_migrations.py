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
