"""The README tour runs as written against `tuangou demo` on a fresh database."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tour_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"<!-- tour -->\s*```sh\n(.*?)```", text, flags=re.S)


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    port = _free_port()
    db = tmp_path_factory.mktemp("demo") / "demo.db"
    env = {**os.environ, "TUANGOU_DATABASE_URL": f"sqlite:///{db}", "TUANGOU_PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "tuangou.cli", "demo"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for _ in range(300):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise AssertionError(proc.stdout.read().decode() if proc.stdout else "demo exited")
            time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.skipif(shutil.which("jq") is None or shutil.which("curl") is None, reason="the tour needs curl and jq")
def test_readme_tour_runs_as_written(demo_server):
    # the simulator's block needs no server and takes a while: tests/e2e/test_simulate_tour.py runs it
    blocks = [b for b in tour_blocks() if "tuangou simulate" not in b]
    assert blocks, "README has no <!-- tour --> blocks"
    script = "set -euo pipefail\n" + "\n".join(blocks)
    result = subprocess.run(["bash", "-c", script], env={**os.environ, "TUANGOU_PORT": str(demo_server)},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr + result.stdout
    out = result.stdout
    assert '"status":"published"' in out
    assert '"code":"already_redeemed"' in out
    assert '"code":"forbidden"' in out
    assert "null" not in re.findall(r'\{"id":(\w+),"status"', out)
    # a slotted deal under a disruption: tonight's one room stays with the first seating, the two over it move
    assert '{"kind":"other","max_units":1}' in out
    assert re.search(r'\[\{"key":"[\d-]+@18:00","cap":1,"sold":1\},\{"key":"[\d-]+@21:00","cap":0,"sold":0\}\]', out)
    assert re.search(r'\[(\{"bucket":"[\d-]+@(18|21):00","cap":[01],"sold":[12],"over":1\},?){2}\]', out)
    # campaigns: the group forms on the second payment, entry closes, one purchase list
    assert '"status":"formed","paid_count":2' in out and '"code":"campaign_closed"' in out
    assert '"quantity":2,"participants":2' in out
    # monitoring: a yellow and a red (paused) line, resumed; the probes answer
    assert '"line":"beverage/Beijing","level":"yellow","paused":false' in out
    assert '"line":"bakery/Beijing","level":"red","paused":true' in out
    assert '{"category":"bakery","city":"Beijing","level":"red","paused":false}' in out
    assert '"status":"ready"' in out and "tuangou_paid_total" in out
    # logistics: duplicates counted, forged signature refused, a fake shipment confirmed, the SLA compensates,
    # a paused clock, a spoiled parcel replaced from the backup warehouse
    assert '"stored":0,"duplicates":3' in out and '"code":"bad_signature"' in out
    assert '"kind":"fake_shipment","points":10' in out and '"paused_minutes":1440,"paused_orders":1' in out
    assert '{"status":"cancelled","compensation_cents":1170}' in out
    assert '"status":"replaced"' in out and '"status":"label_pending"' in out and '"reason":"cold_chain"' in out
    # risk: a brushing ring held and confirmed (merchant penalised, fake sales gone), a compensation farmer
    # paused with its coupons revoked, a false positive released and paid
    assert '"status":"held"' in out and '"outcome":"brushing"' in out
    assert '{"kind":"brushing","points":30}' in out
    assert '"status":"confirmed","paused":[' in out and '"status":"revoked"' in out
    assert '"status":"released","outcome":"false_positive"' in out
    assert '{"decided":1,"false_positives":1,"false_positive_rate":1.0}' in out or '"false_positives":1' in out
    # and the merchant's performance rates, the SLA cancellation counted with the order behind it
    assert all(f'"metric":"{m}"' in out for m in ("late_shipment_rate", "pre_fulfilment_cancel_rate",
                                                  "valid_tracking_rate", "order_defect_rate"))
    assert re.search(r'"metric":"pre_fulfilment_cancel_rate","rate_bps":[1-9]\d*,"ok":false,"order_ids":\[\d', out)
