"""Capabilities are found, not listed: a folder with `api.py` adds routes,
`models.py` adds tables, `jobs.py` adds scheduled ticks."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import tuangou

CORE_MODELS = ("tuangou.core.outbox", "tuangou.core.audit", "tuangou.core.ledger", "tuangou.core.leases",
               "tuangou.core.policy")


def capabilities() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(tuangou.__path__) if m.ispkg and m.name not in
                  ("core", "web"))


def _modules(room: str) -> list[ModuleType]:
    found = []
    for cap in capabilities():
        name = f"tuangou.{cap}.{room}"
        try:
            found.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return found


def load_models() -> None:
    for name in CORE_MODELS:
        importlib.import_module(name)
    _modules("models")


def api_modules() -> list[ModuleType]:
    return _modules("api")


def job_modules() -> list[ModuleType]:
    return _modules("jobs")
