"""The CLI speaks plainly: one line and a non-zero exit for expected errors, tracebacks only with --debug."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TUANGOU_")}
    base["TUANGOU_DATABASE_URL"] = f"sqlite:///{tmp_path}/cli.db"
    return subprocess.run([sys.executable, "-m", "tuangou.cli", *args], capture_output=True, text=True,
                          cwd=tmp_path, env={**base, "COLUMNS": "200", **env}, timeout=120)


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_a_misspelled_variable_is_refused_with_a_hint(tmp_path: Path) -> None:
    r = _run(tmp_path, "db", "upgrade", TUANGOU_DATABSE_URL="postgresql://x")
    assert r.returncode == 2
    assert "did you mean TUANGOU_DATABASE_URL" in _one_error_line(r)
    assert not (tmp_path / "cli.db").exists()


def test_an_invalid_time_zone_is_refused_at_start(tmp_path: Path) -> None:
    r = _run(tmp_path, "db", "upgrade", TUANGOU_DEFAULT_TIMEZONE="Mars/Olympus")
    assert r.returncode == 2 and "TUANGOU_DEFAULT_TIMEZONE" in _one_error_line(r)


@pytest.mark.parametrize(("name", "value"), [("TUANGOU_RATE_LIMIT", "lots"), ("TUANGOU_WORKER_INTERVAL_SECONDS", "-1"),
                                            ("TUANGOU_DATABASE_URL", "mysql://x/y"), ("TUANGOU_REDIS_URL", "localhost"),
                                            ("TUANGOU_TRUSTED_PROXIES", "the load balancer"),
                                            ("TUANGOU_PLATFORM_COMMISSION_BPS", "20000")])
def test_an_invalid_value_is_refused_at_start_with_its_name(tmp_path: Path, name: str, value: str) -> None:
    # given a setting that would only fail later (or never), when any command starts
    r = _run(tmp_path, "db", "upgrade", **{name: value})
    # then it stops before touching the database, naming the variable
    assert r.returncode == 2 and f"invalid {name}:" in _one_error_line(r)
    assert not (tmp_path / "cli.db").exists()


def test_an_unreachable_database_is_one_line_with_the_password_masked(tmp_path: Path) -> None:
    r = _run(tmp_path, "db", "upgrade", TUANGOU_DATABASE_URL="postgresql://tg:hunter2@127.0.0.1:9/x")
    line = _one_error_line(r)
    assert r.returncode == 1 and "database error" in line and "***" in line
    assert "hunter2" not in r.stderr + r.stdout


def test_bad_input_is_one_line_and_debug_shows_the_traceback(tmp_path: Path) -> None:
    assert _run(tmp_path, "db", "upgrade").returncode == 0
    args = ("users", "create", "--email", "ops@x.example", "--password", "short")
    r = _run(tmp_path, *args)
    assert r.returncode == 1 and "8 characters" in _one_error_line(r)
    r = _run(tmp_path, "--debug", *args)
    assert r.returncode == 1 and "Traceback" in r.stderr


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    import socket
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = _run(tmp_path, "serve", "--port", str(port), TUANGOU_SECRET_KEY="k" * 48)
    assert r.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in _one_error_line(r)
