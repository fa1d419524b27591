"""Tracking-number verification (C3): suspected fake shipments are flagged with an explanation, ops review
each flag, and a confirmed one voids the shipment and records a `fake_shipment` violation."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import TextClause, bindparam, select, text, update

from tuangou.core.audit import record_audit
from tuangou.core.auth import Principal, Role
from tuangou.core.db import UnitOfWork, UTCDateTime, insert_ignore, retry_on_deadlock, upsertable_insert
from tuangou.core.errors import Conflict, NotFound, ValidationFailed
from tuangou.core.outbox import record_event
from tuangou.logistics import records, rules
from tuangou.logistics.models import Flag, Shipment, ShippingOrder, Warehouse
from tuangou.logistics.policy import current_policy
from tuangou.merchants import service as merchants
from tuangou.notify import service as notify

S = rules.ShipmentStatus
_PG_FLAGS = text("""
INSERT INTO logistics_flags (shipment_id, order_id, merchant_id, kind, explanation, evidence, status, created_at,
                             decided_at, decided_by, decision_reason)
SELECT shipment_id, order_id, merchant_id, kind, explanation, evidence::json, :status, :now, NULL, NULL, ''
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS x(shipment_id integer, order_id integer, merchant_id integer,
     kind text, explanation text, evidence jsonb)
ON CONFLICT (shipment_id, kind) DO NOTHING RETURNING id, shipment_id, kind, explanation""")


def raise_flag(uow: UnitOfWork, s: Shipment, kind: rules.FlagKind, explanation: str,
               evidence: dict[str, Any]) -> bool:
    """Inside an open unit of work: flag a shipment once per kind; ops are told. True if new."""
    new = insert_ignore(uow.session, Flag.__table__, {
        "shipment_id": s.id, "order_id": s.order_id, "merchant_id": s.merchant_id, "kind": kind.value,
        "explanation": explanation[:500], "evidence": evidence, "status": rules.FlagStatus.OPEN,
        "created_at": uow.now, "decided_at": None, "decided_by": None, "decision_reason": ""},
        ["shipment_id", "kind"])
    if new:
        record_event(uow.session, "ShipmentFlagged", {"shipment_id": s.id, "order_id": s.order_id,
                                                      "kind": kind.value}, uow.now, merchant_id=s.merchant_id)
        notify.notify_ops(uow, "shipment_flagged", f"Suspected fake shipment #{s.id} ({kind.value})", explanation,
                          {"shipment_id": s.id, "order_id": s.order_id})
    return bool(new)


def check_reuse(uow: UnitOfWork, s: Shipment) -> bool:
    """The same tracking number on another buyer's order is a parcel that cannot be in two places."""
    others = list(uow.session.execute(select(Shipment.id, Shipment.order_id).where(
        Shipment.carrier == s.carrier, Shipment.tracking_number == s.tracking_number, Shipment.id != s.id,
        Shipment.buyer_id != s.buyer_id, Shipment.status != S.VOIDED).limit(20)))
    if not others:
        return False
    return raise_flag(uow, s, rules.FlagKind.REUSED_NUMBER,
                      f"tracking number {s.tracking_number} of {s.carrier} is also used on unrelated order(s) "
                      f"{', '.join(str(o) for _, o in others)}",
                      {"other_shipments": [i for i, _ in others], "other_orders": [o for _, o in others]})


def check_first_scans(uow: UnitOfWork, batch: int = 5000, max_batches: int = 200) -> dict[str, int]:
    """Shipments whose first-scan time has come: no scan -> flag; a first scan far from the warehouse
    -> flag. Each shipment is checked once (scan_checked), so the tick stays cheap with many open
    parcels; batches of `batch`, one transaction of a few set-based statements each, until none is left."""
    counts = {"checked": 0, "flagged": 0}
    for _ in range(max_batches):
        done = _check_batch(uow, batch, counts)
        if done < batch:
            break
    return counts


_SKIP = (S.VOIDED, S.LABEL_PENDING, S.REROUTED)  # never counted, or waiting for a label: nothing to verify
_UNCHECKED = Shipment.scan_checked.is_(False)
_SKIP_SQL = ", ".join(f"'{s.value}'" for s in _SKIP)
# What the set-based statements need from each database: a stored UTC time as the text records.iso makes
# of it (datetime.isoformat: no fraction when it is zero), a JSON object, a random event id (UUID v4),
# and "id among the claimed ids" (one parameter: an array, or a JSON list on SQLite).
_SQL = {
    "postgresql": {
        "iso": "replace(to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), '.000000', '') || '+00:00'",
        "json": "json_build_object", "uuid": "gen_random_uuid()::text", "among": "= ANY(CAST(:ids AS integer[]))"},
    "sqlite": {  # SQLAlchemy stores 'YYYY-MM-DD HH:MM:SS.ffffff', UTC
        "iso": "replace(substr({c}, 1, 10) || 'T' || substr({c}, 12), '.000000', '') || '+00:00'",
        "json": "json_object",
        "uuid": "lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || "
                "substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + abs(random()) % 4, 1) || "
                "substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))",
        "among": "IN (SELECT value FROM json_each(:ids))"}}


def _statements(dialect: str) -> dict[str, TextClause]:
    """The no-first-scan flags, straight from the claimed parcels (the rule of `_first_scan_flag` in SQL: no scan
    by the deadline, or a first scan after it), the candidates for a far first scan, and the outbox events
    of new flags: no value per parcel crosses from Python."""
    q = _SQL[dialect]
    due, uploaded = q["iso"].format(c="s.scan_due_at"), q["iso"].format(c="s.labelled_at")
    now = bindparam("now", type_=UTCDateTime())
    return {
        "unscanned": text(f"""
INSERT INTO logistics_flags (shipment_id, order_id, merchant_id, kind, explanation, evidence, status, created_at,
                             decided_at, decided_by, decision_reason)
SELECT s.id, s.order_id, s.merchant_id, :kind,
       substr(s.carrier || ' ' || coalesce(s.tracking_number, '') || ': no carrier scan by ' || {due} ||
              ' (uploaded ' || coalesce({uploaded}, '?') || ')', 1, 500),
       {q['json']}('scan_due_at', {due}), :status, :now, NULL, NULL, ''
FROM logistics_shipments s
WHERE s.id {q['among']} AND s.status NOT IN ({_SKIP_SQL})
  AND (s.first_scan_at IS NULL OR s.first_scan_at > s.scan_due_at)
ON CONFLICT (shipment_id, kind) DO NOTHING RETURNING id, shipment_id, kind, explanation""").bindparams(now),
        "scanned": text(f"""
SELECT s.id, s.order_id, s.merchant_id, s.carrier, s.tracking_number, s.warehouse_id, s.first_scan_lat,
       s.first_scan_lon
FROM logistics_shipments s
WHERE s.id {q['among']} AND s.status NOT IN ({_SKIP_SQL}) AND s.warehouse_id IS NOT NULL
  AND s.first_scan_at IS NOT NULL AND (s.scan_due_at IS NULL OR s.first_scan_at <= s.scan_due_at)"""),
        "events": text(f"""
INSERT INTO outbox_events (event_id, type, merchant_id, payload, occurred_at, relayed_at)
SELECT {q['uuid']}, 'ShipmentFlagged', f.merchant_id,
       {q['json']}('shipment_id', f.shipment_id, 'order_id', f.order_id, 'kind', f.kind), :now, NULL
FROM logistics_flags f WHERE f.id {q['among']} ORDER BY f.id""").bindparams(now)}


_STATEMENTS = {dialect: _statements(dialect) for dialect in _SQL}


def _ids(dialect: str, ids: list[int]) -> Any:
    return ids if dialect == "postgresql" else json.dumps(ids, separators=(",", ":"))


def _claim(uow: UnitOfWork, ready: Any, order: Any, batch: int) -> list[int]:
    """Mark up to `batch` unchecked parcels checked, in one conditional UPDATE; their ids. What one
    transaction claimed no other can (the guard is re-read after the row lock; on PostgreSQL a second
    worker skips the locked rows and claims the next ones instead of waiting)."""
    pick = select(Shipment.id).where(_UNCHECKED, ready).order_by(order).limit(batch).with_for_update(skip_locked=True)
    return list(uow.conn.scalars(update(Shipment).where(Shipment.id.in_(pick), _UNCHECKED)
                                 .values(scan_checked=True).returning(Shipment.id)))


@retry_on_deadlock
def _check_batch(uow: UnitOfWork, batch: int, counts: dict[str, int]) -> int:
    with uow:
        due = _claim(uow, Shipment.scan_due_at <= uow.now, Shipment.scan_due_at, batch)
        scanned = _claim(uow, Shipment.first_scan_at.is_not(None), Shipment.first_scan_at, batch)
        claimed = due + scanned
        dialect = uow.conn.dialect.name
        sql, ids = _STATEMENTS[dialect], _ids(dialect, claimed)
        new: list[Any] = []
        if claimed:
            new = list(uow.conn.execute(sql["unscanned"], {
                "ids": ids, "kind": rules.FlagKind.NO_FIRST_SCAN.value, "status": rules.FlagStatus.OPEN.value,
                "now": uow.now}))
            far = list(uow.conn.execute(sql["scanned"], {"ids": ids}))
            if far:
                new += _raise_far_flags(uow, far)
        _announce(uow, new)
        uow.commit()
        counts["checked"] += len(claimed)  # counted once committed: a retried batch is not counted twice
        counts["flagged"] += len(new)
        return max(len(due), len(scanned))


def _raise_far_flags(uow: UnitOfWork, scanned: list[Any]) -> list[Any]:
    """Inside an open unit of work: the parcels first scanned too far from their warehouse (the distance
    is a rule: Python, for the few scanned parcels with a known warehouse), flagged once per (shipment,
    kind) in one INSERT … ON CONFLICT DO NOTHING RETURNING (PostgreSQL: one `jsonb_to_recordset` parameter)."""
    policy = current_policy(uow)
    homes = {r.warehouse_id for r in scanned}
    places = {w.id: (w.lat, w.lon) for w in uow.conn.execute(
        select(Warehouse.id, Warehouse.lat, Warehouse.lon).where(Warehouse.id.in_(homes)))}
    found = [f for f in (_far_flag(r, places, policy) for r in scanned) if f]
    if not found:
        return []
    if uow.conn.dialect.name == "postgresql":
        # one JSON parameter read by jsonb_to_recordset: psycopg re-parses a VALUES list of thousands of
        # placeholders on every call (measured: most of the tick's time), as for carrier events
        return list(uow.conn.execute(_PG_FLAGS, {
            "rows": json.dumps(found, separators=(",", ":")), "status": rules.FlagStatus.OPEN.value, "now": uow.now}))
    t: Any = Flag.__table__
    stmt = upsertable_insert(uow.conn.dialect.name, t).on_conflict_do_nothing(
        index_elements=["shipment_id", "kind"]).returning(t.c.id, t.c.shipment_id, t.c.kind, t.c.explanation)
    return list(uow.conn.execute(stmt, [{**f, "status": rules.FlagStatus.OPEN.value, "created_at": uow.now,
                                         "decided_at": None, "decided_by": None, "decision_reason": ""}
                                        for f in found]))


def _far_flag(r: Any, places: dict[int, tuple[float | None, float | None]], policy: rules.LogisticsPolicy
              ) -> dict[str, Any] | None:
    """The far-first-scan flag one scanned parcel deserves, as a row (None: nothing suspicious)."""
    home = places.get(r.warehouse_id)
    scan = (r.first_scan_lat, r.first_scan_lon) if r.first_scan_lat is not None else None
    km = rules.far_first_scan(home if home and home[0] is not None else None,  # type: ignore[arg-type]
                              scan, policy)
    if km is None:
        return None
    return {"shipment_id": r.id, "order_id": r.order_id, "merchant_id": r.merchant_id,
            "kind": rules.FlagKind.FAR_FIRST_SCAN.value,
            "explanation": f"{r.carrier} {r.tracking_number}: first scan {km} km from the ship-from warehouse "
                           f"(more than {policy.far_first_scan_km} km)"[:500],
            "evidence": {"km": km, "warehouse_id": r.warehouse_id}}


def _announce(uow: UnitOfWork, new: list[Any]) -> None:
    """Inside an open unit of work: the new flags' outbox events in one INSERT … SELECT and one digest per
    ops account (not one notice per parcel: a carrier's bad day can flag thousands)."""
    if not new:
        return
    dialect = uow.conn.dialect.name
    uow.conn.execute(_STATEMENTS[dialect]["events"], {"ids": _ids(dialect, [f.id for f in new]), "now": uow.now})
    first = new[0]
    title = (f"Suspected fake shipment #{first.shipment_id} ({first.kind})" if len(new) == 1
             else f"{len(new)} suspected fake shipments to review")
    notify.notify_ops(uow, "shipment_flagged", title, first.explanation if len(new) == 1 else
                      "; ".join(f.explanation for f in new[:5]) + (" …" if len(new) > 5 else ""),
                      {"shipment_ids": [f.shipment_id for f in new[:200]], "count": len(new)})


def _flag_view(f: Flag) -> dict[str, Any]:
    return {"id": f.id, "shipment_id": f.shipment_id, "order_id": f.order_id, "merchant_id": f.merchant_id,
            "kind": f.kind, "explanation": f.explanation, "evidence": f.evidence, "status": f.status,
            "created_at": records.iso(f.created_at), "decided_at": records.iso(f.decided_at),
            "decision_reason": f.decision_reason}


def list_flags(uow: UnitOfWork, actor: Principal, *, status: str | None = None, merchant_id: int | None = None,
               cursor: int | None = None, limit: int = 50) -> list[dict[str, Any]]:
    actor.require(Role.OPS, Role.MERCHANT)
    with uow:
        q = select(Flag).order_by(Flag.id.desc()).limit(limit)
        if actor.role == Role.MERCHANT:
            q = q.where(Flag.merchant_id == actor.merchant_id)
        elif merchant_id is not None:
            q = q.where(Flag.merchant_id == merchant_id)
        if status:
            q = q.where(Flag.status == status)
        if cursor:
            q = q.where(Flag.id < cursor)
        return [_flag_view(f) for f in uow.session.scalars(q)]


@retry_on_deadlock
def review_flag(uow: UnitOfWork, actor: Principal, flag_id: int, *, confirm: bool, reason: str) -> dict[str, Any]:
    """Ops decide a flag. Confirmed: the shipment is void (its units are due again, so the SLA
    cancels and compensates if the deadline has passed), a `fake_shipment` violation (once per
    shipment) and an inbox notice to the merchant."""
    actor.require(Role.OPS)
    if not reason.strip():
        raise ValidationFailed("a reason is required", code="reason_required")
    with uow:
        flag = uow.session.get(Flag, flag_id)
        if flag is None:
            raise NotFound(f"flag {flag_id} not found")
        status = rules.FlagStatus.CONFIRMED if confirm else rules.FlagStatus.DISMISSED
        if not uow.session.execute(update(Flag).where(Flag.id == flag.id, Flag.status == rules.FlagStatus.OPEN)
                                   .values(status=status, decided_at=uow.now, decided_by=actor.user_id,
                                           decision_reason=reason[:500])).rowcount:  # type: ignore[attr-defined]
            raise Conflict(f"flag is {flag.status}; it was decided already", code="flag_decided")
        uow.session.refresh(flag)
        if confirm:
            _confirm_fake(uow, flag, reason)
        record_audit(uow.session, actor_id=actor.user_id, actor_role="ops",
                     action="confirm_fake_shipment" if confirm else "dismiss_shipment_flag",
                     target=f"shipment:{flag.shipment_id}", reason=reason, now=uow.now, details={"flag_id": flag.id})
        uow.commit()
        return _flag_view(flag)


def _confirm_fake(uow: UnitOfWork, flag: Flag, reason: str) -> None:
    s = uow.session.get(Shipment, flag.shipment_id)
    assert s is not None
    if uow.session.execute(update(Shipment).where(Shipment.id == s.id, Shipment.status.in_(
            (S.AWAITING_SCAN, S.IN_TRANSIT, S.DELIVERED))).values(status=S.VOIDED)).rowcount:  # type: ignore[attr-defined]
        records.give_back_units(uow, s.order_id, s.units)
    uow.session.execute(update(ShippingOrder).where(ShippingOrder.order_id == s.order_id).values(defect=True))
    record = uow.session.get(ShippingOrder, s.order_id)
    category = record.category if record is not None else "other"
    merchants.record_violation(uow, merchant_id=s.merchant_id, category=category, kind="fake_shipment",
                               ref=f"shipment:{s.id}", reason=f"fake shipment confirmed: {flag.explanation}"[:500],
                               deal_id=s.deal_id, details={"order_id": s.order_id, "flag_id": flag.id})
    notify.notify_merchant(uow, s.merchant_id, "fake_shipment", f"Shipment #{s.id} confirmed as fake",
                           f"{flag.explanation}. Ops: {reason}. Ship the order for real before its deadline.",
                           {"shipment_id": s.id, "order_id": s.order_id}, severity="warning")
    notify.notify_user(uow, s.buyer_id, "shipment_voided", f"Order #{s.order_id}: that tracking number was not real",
                       "The platform is following up; if the goods do not ship in time you are refunded and "
                       "compensated automatically.", {"order_id": s.order_id})
    record_event(uow.session, "FakeShipmentConfirmed", {"shipment_id": s.id, "order_id": s.order_id}, uow.now,
                 merchant_id=s.merchant_id)
