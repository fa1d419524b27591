"""The walls between capabilities: another capability's models or api are off limits."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "tuangou"


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            names.extend(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
    return names


def test_no_capability_imports_another_capabilitys_models_or_api():
    offences = []
    for path in SRC.glob("*/*.py"):
        own = path.parent.name
        if own in ("core", "web"):
            continue
        for name in _imports(path):
            parts = name.split(".")
            if len(parts) >= 3 and parts[0] == "tuangou" and parts[1] not in (own, "core") \
                    and parts[2] in ("models", "api"):
                offences.append(f"{path.relative_to(SRC)} imports {name}")
    assert offences == []


def test_rules_modules_do_no_io():
    for path in SRC.glob("*/rules.py"):
        for name in _imports(path):
            assert not name.startswith(("sqlalchemy", "fastapi", "httpx", "redis", "tuangou.core.db")), (path, name)


def test_no_import_hides_inside_a_function_in_core_or_a_capability():
    # the CLI, the composition roots and the benchmarks (top-level modules, benchmarks/) may import lazily
    offences = []
    for path in SRC.glob("*/**/*.py"):
        if path.relative_to(SRC).parts[0] == "benchmarks":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                offences += [f"{path.relative_to(SRC)}:{sub.lineno}" for sub in ast.walk(node)
                             if isinstance(sub, ast.Import | ast.ImportFrom)]
    assert offences == []
