"""Alembic environment: the URL comes from the caller or TUANGOU_DATABASE_URL."""

from __future__ import annotations

from alembic import context

from tuangou.core.config import Settings
from tuangou.core.db import Base, Database
from tuangou.core.registry import load_models

load_models()
config = context.config
url = config.attributes.get("url") or Settings().database_url
database = Database(url)


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    with database.engine.connect() as conn:
        _migrate(conn)
        conn.commit()


def _migrate(conn: object) -> None:
    context.configure(connection=conn, target_metadata=Base.metadata, render_as_batch=True,
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


run()
