"""Carrier events in bulk: signed like our webhooks, stored once per (carrier, tracking number, event id),
folded into the shipments with min/max so that any order of arrival, from any number of sources and
writers, ends in the same state (docs/adr/0012).

One request is one transaction of a few set-based statements: an INSERT … ON CONFLICT DO NOTHING for
the events, one UPDATE folding them into the touched shipments and (PostgreSQL) deriving their state, so
each parcel row is written once (SQLite: a second UPDATE sets the state), and, when parcels were signed for, one grouped read and one executemany for their orders
(measured: cheaper on PostgreSQL than one UPDATE with correlated EXISTS, which hashed every parcel).
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Float,
    Integer,
    and_,
    bindparam,
    case,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from tuangou.core.db import UnitOfWork, UTCDateTime, retry_on_deadlock
from tuangou.core.errors import NotFound, Unauthorized, ValidationFailed
from tuangou.logistics import rules
from tuangou.logistics.models import Carrier, Shipment, ShippingOrder, TrackingEvent
from tuangou.logistics.policy import current_policy
from tuangou.notify import rules as signing

S = rules.ShipmentStatus
MAX_EVENTS = 10_000
DRIVEN = (S.AWAITING_SCAN, S.IN_TRANSIT, S.DELIVERED, S.EXCURSION)  # states the carrier's events decide
CHUNK = 500


@retry_on_deadlock
def ingest(uow: UnitOfWork, carrier_code: str, body: bytes, signature: str,
           events: list[rules.CarrierEvent]) -> dict[str, Any]:
    """Store a carrier's events (one or thousands) and bring its shipments up to date.

    Refused as a whole, changing nothing: a bad signature (401 bad_signature), an unknown carrier
    (404 unknown_carrier), an event in the future or malformed, or one event id with two different contents
    in the request (422 invalid_events), a tracking number
    no shipment of this carrier has (422 unknown_shipment). A duplicate is no error: it is counted
    and changes nothing, so a carrier may resend a whole batch.
    """
    if len(events) > MAX_EVENTS:
        raise ValidationFailed(f"at most {MAX_EVENTS} events per request", code="too_many_events")
    with uow:
        carrier = uow.session.get(Carrier, carrier_code.strip().lower())
        if carrier is None:
            raise NotFound(f"no carrier {carrier_code!r}", code="unknown_carrier")
        if not signing.verify(carrier.secret, signature, body, int(uow.now.timestamp())):
            raise Unauthorized("the X-Tuangou-Signature does not match this carrier's secret",
                               code="bad_signature")
        policy = current_policy(uow)
        problems = [p for p in (rules.event_problem(e, uow.now, policy) for e in events) if p]
        problems += rules.conflicting_events(events)
        if problems:
            raise ValidationFailed(problems[0], code="invalid_events", problems=problems[:20])
        numbers = sorted({e.tracking_number for e in events})
        shipments = _shipments(uow, carrier.code, numbers)
        unknown = [n for n in numbers if n not in shipments]
        if unknown:
            raise ValidationFailed(f"no {carrier.code} shipment has tracking number {unknown[0]}",
                                   code="unknown_shipment", tracking_numbers=unknown[:50])
        fresh = _store(uow, carrier.code, events)
        touched = _fold(uow, fresh, shipments)
        uow.commit()
        return {"received": len(events), "stored": len(fresh), "duplicates": len(events) - len(fresh),
                "shipments_updated": len(touched)}


def _shipments(uow: UnitOfWork, carrier: str, numbers: list[str]) -> dict[str, list[tuple[int, int, Any]]]:
    """Tracking number -> [(shipment id, order id, (min °C, max °C) or None)] of this carrier."""
    found: dict[str, list[tuple[int, int, Any]]] = defaultdict(list)
    for i in range(0, len(numbers), CHUNK):
        rows = uow.session.execute(select(Shipment.id, Shipment.order_id, Shipment.tracking_number,
                                          Shipment.temp_min_c, Shipment.temp_max_c).where(
            Shipment.carrier == carrier, Shipment.tracking_number.in_(numbers[i:i + CHUNK])))
        for sid, oid, number, low, high in rows:
            found[str(number)].append((sid, oid, (low, high) if low is not None and high is not None else None))
    return found


def _store(uow: UnitOfWork, carrier: str, events: list[rules.CarrierEvent]) -> list[rules.CarrierEvent]:
    """INSERT … ON CONFLICT DO NOTHING RETURNING, many rows per statement: the events stored now."""
    unique: dict[tuple[str, str], rules.CarrierEvent] = {}
    for e in events:
        unique.setdefault((e.tracking_number, e.event_id), e)
    rows: list[dict[str, Any]] = [{"carrier": carrier, "tracking_number": e.tracking_number, "event_id": e.event_id, "kind": e.kind.value,
             "occurred_at": e.occurred_at, "received_at": uow.now, "lat": e.lat, "lon": e.lon,
             "temperature_c": e.temperature_c, "location": e.location[:120], "detail": e.detail[:300]}
            for e in unique.values()]
    if not rows:
        return []
    if uow.session.get_bind().dialect.name == "postgresql":
        received = uow.now.isoformat()  # ISO strings made once here, not by a json.dumps callback per value
        for row in rows:
            row["occurred_at"], row["received_at"] = row["occurred_at"].isoformat(), received
        stored = uow.session.execute(PG_INSERT, {"rows": _json(rows)}).all()
    else:
        table: Any = TrackingEvent.__table__
        stmt = sqlite_insert(table).on_conflict_do_nothing(index_elements=["carrier", "tracking_number", "event_id"]) \
            .returning(table.c.tracking_number, table.c.event_id)
        stored = uow.session.execute(stmt, rows).all()
    return [unique[(n, i)] for n, i in stored]


# PostgreSQL: one statement reading the rows from one JSON parameter (jsonb_to_recordset), instead of a
# 12,000-placeholder VALUES list psycopg parses again for every request or arrays it escapes element by
# element in Python (measured: each took most of the time per batch).
PG_INSERT = text("""
INSERT INTO logistics_events (carrier, tracking_number, event_id, kind, occurred_at, received_at, lat, lon,
                              temperature_c, location, detail)
SELECT carrier, tracking_number, event_id, kind, occurred_at, received_at, lat, lon, temperature_c, location, detail
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS x(carrier text, tracking_number text, event_id text, kind text,
     occurred_at timestamptz, received_at timestamptz, lat float8, lon float8, temperature_c float8, location text,
     detail text)
ON CONFLICT (carrier, tracking_number, event_id) DO NOTHING RETURNING tracking_number, event_id""")
_NEW_FS = "LEAST(t.first_scan_at, v.b_fs)"
_NEW_DLV = "LEAST(t.delivered_at, v.b_dlv)"
_NEW_EXC = "LEAST(t.excursion_at, v.b_exc)"
_DRIVEN = ", ".join(f"'{s.value}'" for s in DRIVEN)
# One UPDATE folds the batch and derives the tracking state from the folded times (SET sees the old row,
# so the state repeats the new values' expressions): every parcel row is written once per request.
PG_FOLD = text(f"""
UPDATE logistics_shipments AS t SET
  first_scan_at = {_NEW_FS},
  first_scan_lat = CASE WHEN v.b_fs IS NOT NULL AND (t.first_scan_at IS NULL OR t.first_scan_at > v.b_fs)
                        THEN v.b_lat ELSE t.first_scan_lat END,
  first_scan_lon = CASE WHEN v.b_fs IS NOT NULL AND (t.first_scan_at IS NULL OR t.first_scan_at > v.b_fs)
                        THEN v.b_lon ELSE t.first_scan_lon END,
  last_event_at = GREATEST(t.last_event_at, v.b_last),
  delivered_at = {_NEW_DLV},
  excursion_at = {_NEW_EXC},
  exception_at = GREATEST(t.exception_at, v.b_ex),
  status = CASE WHEN t.status NOT IN ({_DRIVEN}) THEN t.status
                WHEN {_NEW_EXC} IS NOT NULL AND ({_NEW_DLV} IS NULL OR {_NEW_EXC} <= {_NEW_DLV})
                THEN '{S.EXCURSION.value}'
                WHEN {_NEW_DLV} IS NOT NULL THEN '{S.DELIVERED.value}'
                WHEN {_NEW_FS} IS NOT NULL THEN '{S.IN_TRANSIT.value}'
                ELSE '{S.AWAITING_SCAN.value}' END
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS v(b_id integer, b_fs timestamptz, b_lat float8, b_lon float8,
     b_last timestamptz, b_dlv timestamptz, b_exc timestamptz, b_ex timestamptz)
WHERE t.id = v.b_id""")  # GREATEST/LEAST ignore NULLs in PostgreSQL


def _json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v),
                      separators=(",", ":"))


def _later(col: Any, new: Any) -> Any:
    return case((new.is_(None), col), (or_(col.is_(None), col < new), new), else_=col)


def _earlier(col: Any, new: Any) -> Any:
    return case((new.is_(None), col), (or_(col.is_(None), col > new), new), else_=col)


def _fold(uow: UnitOfWork, fresh: list[rules.CarrierEvent],
          shipments: dict[str, list[tuple[int, int, Any]]]) -> set[int]:
    by_number: dict[str, list[rules.CarrierEvent]] = defaultdict(list)
    for e in fresh:
        by_number[e.tracking_number].append(e)
    params: list[dict[str, Any]] = []
    orders: set[int] = set()
    for number, evs in by_number.items():
        for sid, oid, temp in shipments[number]:
            d = rules.fold_events(evs, temp)
            params.append({"b_id": sid, "b_fs": d.first_scan_at, "b_lat": d.first_scan_lat, "b_lon": d.first_scan_lon,
                           "b_last": d.last_event_at, "b_dlv": d.delivered_at, "b_exc": d.excursion_at,
                           "b_ex": d.exception_at})
            if d.delivered_at is not None:
                orders.add(oid)
    if not params:
        return set()
    params.sort(key=lambda p: p["b_id"])  # rows in one order: concurrent pushes lock parcels alike
    t: Any = Shipment.__table__
    if uow.session.get_bind().dialect.name == "postgresql":
        uow.session.execute(PG_FOLD, {"rows": _json(params)})
    else:
        # SQLite: the fold, then the state in a second UPDATE (measured: repeating the folded values'
        # expressions in one statement binds each datetime four times and cost 20 % more CPU per event)
        when = UTCDateTime()
        fs = bindparam("b_fs", type_=when)
        first_is_new = and_(fs.is_not(None), or_(t.c.first_scan_at.is_(None), t.c.first_scan_at > fs))
        stmt = update(t).where(t.c.id == bindparam("b_id", type_=Integer)).values(
            first_scan_at=_earlier(t.c.first_scan_at, fs),
            first_scan_lat=case((first_is_new, bindparam("b_lat", type_=Float)), else_=t.c.first_scan_lat),
            first_scan_lon=case((first_is_new, bindparam("b_lon", type_=Float)), else_=t.c.first_scan_lon),
            last_event_at=_later(t.c.last_event_at, bindparam("b_last", type_=when)),
            delivered_at=_earlier(t.c.delivered_at, bindparam("b_dlv", type_=when)),
            excursion_at=_earlier(t.c.excursion_at, bindparam("b_exc", type_=when)),
            exception_at=_later(t.c.exception_at, bindparam("b_ex", type_=when)))
        uow.session.connection().execute(stmt, params)
        ids = sorted({p["b_id"] for p in params})
        status = case((and_(t.c.excursion_at.is_not(None), or_(t.c.delivered_at.is_(None),
                                                                 t.c.excursion_at <= t.c.delivered_at)),
                       S.EXCURSION.value),
                      (t.c.delivered_at.is_not(None), S.DELIVERED.value),
                      (t.c.first_scan_at.is_not(None), S.IN_TRANSIT.value), else_=S.AWAITING_SCAN.value)
        for i in range(0, len(ids), CHUNK):
            uow.session.execute(update(t).where(t.c.id.in_(ids[i:i + CHUNK]), t.c.status.in_(DRIVEN))
                                .values(status=status))
    _deliver_orders(uow, sorted(orders))
    return {p["b_id"] for p in params}


def _deliver_orders(uow: UnitOfWork, order_ids: list[int]) -> None:
    """An order is delivered when every unit shipped and no parcel of it is still on its way; its
    delivery time is the last parcel's signature. One grouped read, then one executemany."""
    s: Any = Shipment.__table__
    on_way = func.sum(case((s.c.status.in_((S.LABEL_PENDING, S.AWAITING_SCAN, S.IN_TRANSIT, S.EXCURSION)), 1),
                           else_=0))
    done = []
    for i in range(0, len(order_ids), CHUNK):
        rows = uow.session.execute(select(s.c.order_id, func.max(s.c.delivered_at), on_way).where(
            s.c.order_id.in_(order_ids[i:i + CHUNK]), s.c.status != S.VOIDED).group_by(s.c.order_id))
        done += [{"b_order": o, "b_at": at} for o, at, waiting in rows if not waiting and at is not None]
    if done:
        r: Any = ShippingOrder.__table__
        uow.session.connection().execute(
            update(r).where(r.c.order_id == bindparam("b_order", type_=Integer),
                            r.c.status == rules.OrderShipping.SHIPPED)
            .values(status=rules.OrderShipping.DELIVERED.value, delivered_at=bindparam("b_at", type_=UTCDateTime())),
            done)
