"""A built wheel carries its migrations: `pip install` it, then `tuangou db upgrade` works anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_wheel_migrates_a_database_outside_the_source_tree(tmp_path: Path) -> None:
    # given a wheel built from the repository and installed into a plain directory
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(ROOT)],
                   check=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("tuangou-*.whl"))
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, timeout=300)
    run = tmp_path / "elsewhere"
    run.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUANGOU_")}
    env.update(PYTHONPATH=str(site), TUANGOU_DATABASE_URL=f"sqlite:///{run}/wheel.db", COLUMNS="200")

    # when its `tuangou db upgrade` runs from another directory
    where = subprocess.run([sys.executable, "-c", "import tuangou.core.migrate as m; print(m.script_location())"],
                           cwd=run, env=env, capture_output=True, text=True, check=True)
    upgraded = subprocess.run([sys.executable, "-c", "import sys; sys.argv = ['tuangou', 'db', 'upgrade'];"
                               "from tuangou.cli import main; main()"], cwd=run, env=env, capture_output=True,
                              text=True, timeout=300)

    # then it used the migrations inside the installed package and the database is at head
    assert where.stdout.strip() == str(site / "tuangou" / "_migrations")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "database at head" in upgraded.stdout
    assert (run / "wheel.db").exists()
