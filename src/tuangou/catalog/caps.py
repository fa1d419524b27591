"""Setting bucket caps from outside the hot path (capacity plans, governance decisions, merchants' edits).

Each runs inside the caller's unit of work: the missing bucket is made, the cap moved with one guarded
UPDATE, a `CapacityChanged` event recorded and recovered buckets reopened.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import and_, bindparam, insert, select, update

from tuangou.catalog import rules
from tuangou.catalog.counters import reopen_recovered
from tuangou.catalog.models import CapacityBucket, Deal
from tuangou.core.db import InTransaction, insert_ignore, table, upsertable_insert
from tuangou.core.errors import Conflict, NotFound, ValidationFailed
from tuangou.core.outbox import OutboxEvent, event_row, record_event


def apply_cap(uow: InTransaction, deal_id: int, key: str, cap: int, *, allow_below_sold: bool) -> dict[str, Any]:
    """Inside an open unit of work: set a bucket's cap, creating the bucket if needed.

    Returns the bucket's counters after the change, with `over` = units sold or held
    beyond the new cap (0 unless allow_below_sold).
    """
    deal = uow.session.get(Deal, deal_id)
    if deal is None:
        raise NotFound(f"deal {deal_id} not found")
    if key not in (rules.STOCK_BUCKET, rules.TOTAL_BUCKET):
        try:
            date.fromisoformat(key.split("@", 1)[0])
        except ValueError as exc:
            raise ValidationFailed(f"bucket key {key!r} is not a date, date@slot, 'total' or 'stock'") from exc
    insert_ignore(uow.session, CapacityBucket.__table__, {
        "deal_id": deal_id, "key": key, "cap": cap, "sold": 0, "reserved": 0,
        "open": deal.status == rules.DealStatus.PUBLISHED}, ["deal_id", "key"])
    cond = and_(CapacityBucket.deal_id == deal_id, CapacityBucket.key == key)
    if not allow_below_sold:
        cond = and_(cond, CapacityBucket.sold + CapacityBucket.reserved <= cap)
    changed = uow.session.execute(update(CapacityBucket).where(cond).values(cap=cap)).rowcount  # type: ignore[attr-defined]
    bucket = uow.session.scalar(select(CapacityBucket).where(CapacityBucket.deal_id == deal_id,
                                                             CapacityBucket.key == key)
                                .execution_options(populate_existing=True))
    assert bucket is not None
    if not changed:
        raise Conflict(f"{bucket.sold + bucket.reserved} units are already sold or held on {key}; "
                       f"the cap cannot go below that here", code="cap_below_sold",
                       sold=bucket.sold, reserved=bucket.reserved)
    record_event(uow.session, "CapacityChanged", {"deal_id": deal_id, "key": key, "cap": cap}, uow.now,
                 merchant_id=deal.merchant_id)
    reopen_recovered(uow, deal_id, [key])
    return {"key": key, "cap": bucket.cap, "sold": bucket.sold, "reserved": bucket.reserved,
            "over": max(0, bucket.sold + bucket.reserved - bucket.cap)}


def apply_caps(uow: InTransaction, deal_id: int, caps: dict[str, int]) -> list[dict[str, Any]]:
    """Inside an open unit of work: `apply_cap(..., allow_below_sold=True)` for several date (or stock) buckets
    of one deal in a few statements (missing buckets made, caps set, counters read back once)."""
    if not caps:
        return []
    deal = uow.session.get(Deal, deal_id)
    if deal is None:
        raise NotFound(f"deal {deal_id} not found")
    for key in caps:
        if key != rules.STOCK_BUCKET:
            date.fromisoformat(key.split("@", 1)[0])  # only date and stock buckets come here (capacity's plans)
    t = table(CapacityBucket)
    of_deal = and_(t.c.deal_id == deal_id, t.c.key.in_(list(caps)))
    existing = set(uow.session.scalars(select(t.c.key).where(of_deal)))
    made: set[str] = set()
    if len(existing) < len(caps):  # missing buckets are made with their cap at once
        stmt = upsertable_insert(uow.session.get_bind().dialect.name, t).values([
            {"deal_id": deal_id, "key": k, "cap": c, "sold": 0, "reserved": 0,
             "open": deal.status == rules.DealStatus.PUBLISHED} for k, c in caps.items() if k not in existing])
        made = set(uow.session.scalars(stmt.on_conflict_do_nothing(index_elements=["deal_id", "key"])
                                       .returning(t.c.key)))
    move = [{"d": deal_id, "k": k, "c": c} for k, c in caps.items() if k not in made]  # incl. a racing order's
    if move:
        uow.session.execute(update(t).where(t.c.deal_id == bindparam("d"), t.c.key == bindparam("k"))
                            .values(cap=bindparam("c")), move)
    rows = {r.key: r for r in uow.session.execute(select(t.c.key, t.c.cap, t.c.sold, t.c.reserved).where(of_deal))}
    uow.session.execute(insert(table(OutboxEvent)), [event_row(
        "CapacityChanged", {"deal_id": deal_id, "key": k, "cap": c}, uow.now, merchant_id=deal.merchant_id)
        for k, c in caps.items()])
    reopen_recovered(uow, deal_id, list(caps))
    return [{"key": k, "cap": rows[k].cap, "sold": rows[k].sold, "reserved": rows[k].reserved,
             "over": max(0, rows[k].sold + rows[k].reserved - rows[k].cap)} for k in caps]
