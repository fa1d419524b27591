"""The first-scan check flags in set-based batches: each parcel once, explained, announced once."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import event, select

from tests.integration.logistics_support import carrier, goods_deal, later, ship
from tuangou.core.db import UnitOfWork
from tuangou.core.outbox import OutboxEvent
from tuangou.logistics import flags
from tuangou.logistics.models import Flag, Shipment
from tuangou.notify.models import Notification


def _unscanned_parcels(stage: Any, n: int) -> None:
    _, merchant = stage.merchant()
    deal = goods_deal(stage, merchant)
    carrier(stage)
    for i in range(n):
        if i % 5 == 0:  # a few orders per buyer: many more would look like abuse to the risk checks
            buyer = stage.buyer()
        later(stage, microseconds=123457 * (i % 2))  # deadlines with and without a fraction of a second
        assert ship(stage, merchant, stage.paid_order(buyer, deal)["id"], f"SB{i + 1:010d}").status_code == 201


def _values(parameters: Any, many: bool) -> int:
    if not parameters:
        return 0
    if many and isinstance(parameters[0], list | tuple | dict):
        return sum(len(p) for p in parameters)
    return len(parameters)


def test_the_check_binds_no_value_per_parcel(any_stage):
    stage = any_stage
    # given 30 parcels nobody scanned, a day later
    _unscanned_parcels(stage, 30)
    later(stage, hours=25)
    bound: list[tuple[int, str]] = []

    def watch(conn, cursor, statement, parameters, context, many):
        bound.append((_values(parameters, many), statement[:120]))
    # when the first scans are checked
    event.listen(stage.db.engine, "before_cursor_execute", watch)
    try:
        result = flags.check_first_scans(UnitOfWork(stage.db, stage.clock))
    finally:
        event.remove(stage.db.engine, "before_cursor_execute", watch)
    # then every parcel is flagged by statements that carry no value per parcel: a batch of 5,000 costs
    # the database the same statements as a batch of 30, and Python nothing per parcel
    assert result == {"checked": 30, "flagged": 30}
    assert [b for b in bound if b[0] > 12] == []


def test_two_workers_and_a_rerun_flag_explain_and_announce_each_parcel_once(any_stage):
    stage = any_stage
    # given 9 parcels nobody scanned, a day later
    _unscanned_parcels(stage, 9)
    later(stage, hours=25)
    barrier = threading.Barrier(2)
    results: list[dict[str, int]] = []

    def worker():
        barrier.wait()
        results.append(flags.check_first_scans(UnitOfWork(stage.db, stage.clock), batch=4))
    # when two workers check at once, in batches of 4, and the tick runs again
    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert stage.tick("logistics")["logistics"]["scans"] == {"checked": 0, "flagged": 0}
    # then each parcel has one flag, explained with its own times
    assert len(results) == 2 and sum(r["flagged"] for r in results) == 9
    with UnitOfWork(stage.db, readonly=True) as uow:
        parcels = {s.id: s for s in uow.session.scalars(select(Shipment))}
        raised = list(uow.session.scalars(select(Flag)))
        told = [e.payload for e in uow.session.scalars(select(OutboxEvent).where(
            OutboxEvent.type == "ShipmentFlagged"))]
        digests = [n.data for n in uow.session.scalars(select(Notification).where(
            Notification.kind == "shipment_flagged"))]
    assert sorted(f.shipment_id for f in raised) == sorted(parcels)
    fractions = {parcels[f.shipment_id].scan_due_at.microsecond for f in raised}
    assert 0 in fractions and len(fractions) > 1
    for f in raised:
        s = parcels[f.shipment_id]
        assert (f.kind, f.status, f.order_id, f.merchant_id) == ("no_first_scan", "open", s.order_id, s.merchant_id)
        assert f.explanation == (f"sandbox {s.tracking_number}: no carrier scan by {s.scan_due_at.isoformat()} "
                                 f"(uploaded {s.labelled_at.isoformat()})")
        assert f.evidence == {"scan_due_at": s.scan_due_at.isoformat()}
    # one event each, and the ops digests name each parcel once
    assert sorted(told, key=lambda p: p["shipment_id"]) == sorted(
        ({"shipment_id": s.id, "order_id": s.order_id, "kind": "no_first_scan"} for s in parcels.values()),
        key=lambda p: p["shipment_id"])
    named = [i for d in digests for i in d["shipment_ids"]]
    assert sorted(named) == sorted(parcels) and sum(d["count"] for d in digests) == 9
