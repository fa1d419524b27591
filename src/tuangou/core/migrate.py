"""Run Alembic migrations programmatically (CLI, demo, tests).

The migrations ship inside the wheel (`tuangou/_migrations`, see pyproject's force-include); a source
checkout uses the repository's `migrations/` folder.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

ROOT = Path(__file__).resolve().parents[3]
PACKAGED = Path(__file__).resolve().parents[1] / "_migrations"


def script_location() -> Path:
    return PACKAGED if (PACKAGED / "env.py").exists() else ROOT / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location()))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["url"] = url
    return cfg


@cache
def heads() -> frozenset[str]:
    """The revisions a database at head carries."""
    return frozenset(ScriptDirectory.from_config(alembic_config("")).get_heads())


def upgrade(url: str, step: Callable[[int, int], None] | None = None) -> None:
    """Migrate to head; `step(done, total)` after each revision (a progress bar in the CLI)."""
    cfg = alembic_config(url)
    cfg.attributes["progress"] = step
    command.upgrade(cfg, "heads")
