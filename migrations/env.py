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
    step = config.attributes.get("progress")  # (done, total) per revision applied: the CLI's progress bar
    applied = []

    def one_more(**_: object) -> None:
        applied.append(1)
        step(len(applied), total)
    context.configure(connection=conn, target_metadata=Base.metadata, render_as_batch=True,
                      compare_type=True, on_version_apply=[one_more] if step else [])
    total = 0
    if step:
        current = context.get_context().get_current_heads()
        total = len(list(context.script.iterate_revisions("heads", current or "base")))
        step(0, total)
    with context.begin_transaction():
        context.run_migrations()


run()
