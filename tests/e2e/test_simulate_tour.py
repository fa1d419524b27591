"""The simulator's README block runs as written: a 50-store, 2-day city, governance on and off.

It needs no server, so the main tour (against `tuangou demo`) skips it and it runs here: once as written,
then governance off alone with the same seed, whose numbers must be the same (determinism)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_readme_tour import tour_blocks

VOLATILE = ("seconds", "cpu_seconds")


def _run(script: str, tmp_path: Path) -> tuple[str, dict]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    result = subprocess.run(["bash", "-c", "set -euo pipefail\n" + script], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout, json.loads(result.stdout.strip().splitlines()[-1])


def _steady(numbers: dict) -> dict:
    return {k: v for k, v in numbers.items() if k not in VOLATILE}


@pytest.mark.slow
@pytest.mark.timeout(1800)  # ~40 s of CPU; a shared 2-core machine can stretch that a lot
def test_simulate_tour_block_shows_governance_protects_buyers_and_is_deterministic(tmp_path):
    block = next(b for b in tour_blocks() if "tuangou simulate" in b)
    assert "--stores 50 --days 2 --governance both" in block
    out, line = _run(block, tmp_path)
    on, off = line["on"], line["off"]
    # the table and the files
    assert "governance on" in out and "governance off" in out and "buyers harmed" in out
    assert (tmp_path / "var/simulate/simulation.json").exists()
    assert "<svg" in (tmp_path / "var/simulate/simulation.html").read_text()
    # harmed-buyer accounting: the harmed are exactly the three harmed classes
    for r in (on, off):
        harmed = r["outcomes"]["compensated"] + r["outcomes"]["refunded"] + r["outcomes"]["harmed_without_remedy"]
        assert r["harmed_buyers"] == harmed and r["oversold_units"] >= r["harmed_buyers"]
    # governance on harms fewer buyers and compensates sooner
    assert on["harmed_buyers"] < off["harmed_buyers"]
    assert on["p99_compensation_s"] < off["p99_compensation_s"]
    # and what the platform advanced (dispute remedies, the breaker's coupons) is booked against the merchants
    assert on["recovered_share"] is None or on["recovered_share"] >= 0.99
    # determinism: the same seed, governance off alone, gives the same numbers
    again = next(ln for ln in block.splitlines() if "tuangou simulate" in ln).replace(
        "--governance both", "--governance off").replace("var/simulate", "var/again")
    _, line2 = _run(again, tmp_path)
    assert _steady(line2["off"]) == _steady(off)
