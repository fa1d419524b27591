"""A smoke run of `tuangou bench tracking`: tiny numbers, correctness only (not speed)."""

from __future__ import annotations

import pytest

from tests.conftest import PG_URL
from tests.integration.test_bench_smoke import _bench


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not PG_URL, reason="TUANGOU_TEST_POSTGRES_URL not set"))])
def test_bulk_events_through_http_are_stored_once_and_the_tick_goes_idle(tmp_path, db):
    # given 100 open parcels, when 600 events are pushed in signed batches of 150 by two clients
    code, r = _bench(tmp_path, "tracking", "--events", "600", "--batch", "150", "--open-shipments", "100",
                     "--db", db)
    # then every event is stored once, and the tick checks each scanned parcel once, then goes idle
    assert (r["errors"], r["stored"], r["duplicates"]) == (0, 600, 0), r
    assert r["scans_checked"] == r["parcels_with_events"] and r["idle_tick"], r
    assert r["events_per_s"] > 0 and code == 0
