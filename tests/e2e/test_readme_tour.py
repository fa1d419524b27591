"""The README tour runs as written against `tuangou demo` on a fresh database."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.demo_server import running_demo

ROOT = Path(__file__).resolve().parents[2]


def tour_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"<!-- tour -->\s*```sh\n(.*?)```", text, flags=re.S)


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    with running_demo(tmp_path_factory.mktemp("demo")) as port:
        yield port


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
    # a booking binds its day: the breaker's moved buyer re-dates at once; another day's voucher is refused
    assert '"pre_agreed":true' in out and '"status":"applied","origin":"breaker"' in out
    assert '"code":"voucher_wrong_date"' in out
    assert '"code":"forbidden"' in out
    assert "null" not in re.findall(r'\{"id":(\w+),"status"', out)
    # compensation in kind: a free side dish served once, by its merchant only, its claim recovered in kind
    assert '"code":"item_voucher_wrong_merchant"' in out and '{"item":"free side dish","status":"used"}' in out
    assert '"code":"item_voucher_used"' in out and '"amount_cents":1500,"status":"recovered"' in out
    # the case report of the month so far shows the breaker's over-sale with real figures, never n/a or ¥0
    assert re.search(r"\(over-sold: [1-9]\d*, compensation 5\.00 yuan, safe sales [1-9]\d*\)", out), out
    # accountability: a drawn exam paper, the retake cool-down, a funded deposit a deduction takes from, and an
    # ops action without a reason refused
    assert '{"language":"en","questions":5}' in out and '"code":"exam_cooldown"' in out
    assert '{"status":"succeeded","replayed":true}' in out and '{"balance_cents":90000,"owed_cents":0}' in out
    assert '{"code":"reason_required"}' in out
    # a slotted deal under a disruption: tonight's one room stays with the first seating, the two over it move
    assert '{"kind":"other","max_units":1}' in out
    assert re.search(r'\[\{"key":"[\d-]+@18:00","cap":1,"sold":1\},\{"key":"[\d-]+@21:00","cap":0,"sold":0\}\]', out)
    assert re.search(r'\[(\{"bucket":"[\d-]+@(18|21):00","cap":[01],"sold":[12],"over":1\},?){2}\]', out)
    # campaigns: the group forms on the second payment, entry closes, one purchase list
    assert '"status":"formed","paid_count":2' in out and '"code":"campaign_closed"' in out
    assert '"quantity":2,"participants":2' in out
    # a tiered group: both paid the deal's price, the group formed at its tier, the difference refunded once
    assert '"status":"formed","price_cents":3900,"final_price_cents":2900' in out
    assert '{"tier_refund_cents":[1000]}' in out
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
