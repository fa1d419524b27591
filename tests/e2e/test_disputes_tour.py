"""The disputes tour in the README runs on its own against a fresh `tuangou demo` and shows what it promises."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.e2e.test_readme_tour import demo_server, tour_blocks  # noqa: F401  (fixture)


@pytest.mark.skipif(shutil.which("jq") is None or shutil.which("curl") is None, reason="the tour needs curl and jq")
def test_disputes_tour_runs_on_its_own(demo_server):  # noqa: F811
    block = next(b for b in tour_blocks() if "stack-request" in b)
    result = subprocess.run(["bash", "-c", "set -euo pipefail\n" + block],
                            env={**os.environ, "TUANGOU_PORT": str(demo_server)},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr + result.stdout
    out = result.stdout
    assert '"status":"confirmed","tier":"severe"' in out and '"coupons":[3000]' in out
    assert '"status":"refunded"' in out
    assert '"amount_cents":3000,"status":"open"' in out and '"merchant_balance_cents":-3000' in out
    assert '"status":"approved"' in out
    assert '"amount_cents":2800' in out and '"code":"coupon_unavailable"' in out
    assert '"respond_within_minutes":60' in out
    assert '"status":"resolved"' in out
