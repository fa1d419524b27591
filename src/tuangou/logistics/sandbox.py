"""The sandbox carrier: realistic event streams for the demo and tests, pushed through the same signed
ingest as a real carrier's (the body is signed with the carrier's own secret)."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from typing import Any

from tuangou.core.auth import Principal, Role
from tuangou.core.db import UnitOfWork
from tuangou.core.errors import Conflict, NotFound, ValidationFailed
from tuangou.logistics import records, rules, tracking
from tuangou.logistics.models import Carrier, Shipment, Warehouse
from tuangou.notify import rules as signing

SCENARIOS = ("normal", "cold_excursion", "far_first_scan", "stuck")
HUBS = [("Beijing sorting centre", 39.90, 116.40), ("Langfang hub", 39.52, 116.70), ("Tianjin hub", 39.13, 117.20)]


def stream(number: str, start: datetime, scenario: str, *, home: tuple[float, float] | None = None,
           temp_range: tuple[float, float] | None = None, seed: int = 0) -> list[rules.CarrierEvent]:
    """A parcel's life: pick-up scan near the warehouse, hubs, positions and (cold chain) temperatures,
    then delivery. `cold_excursion` warms up on the way; `far_first_scan` is first scanned 1,000 km away;
    `stuck` is scanned once and never moves."""
    rnd = random.Random(f"{number}:{seed}")
    lat, lon = home or (HUBS[0][1], HUBS[0][2])
    if scenario == "far_first_scan":
        lat, lon = lat + 9.0, lon + 3.0
    low, high = temp_range or (2.0, 8.0)
    out: list[rules.CarrierEvent] = []
    t = start + timedelta(minutes=rnd.randint(20, 90))

    def add(kind: rules.EventKind, **kw: Any) -> None:
        out.append(rules.CarrierEvent(event_id=f"{number}-{len(out) + 1}", tracking_number=number, kind=kind,
                                      occurred_at=t, **kw))
    add(rules.EventKind.SCAN, lat=lat, lon=lon, location="picked up")
    if scenario == "stuck":
        return out
    for i, (hub, hlat, hlon) in enumerate(HUBS[1:], start=1):
        t += timedelta(minutes=rnd.randint(40, 120))
        add(rules.EventKind.POSITION, lat=round(hlat + rnd.uniform(-0.05, 0.05), 5),
            lon=round(hlon + rnd.uniform(-0.05, 0.05), 5), location=f"on the way to {hub}")
        if temp_range is not None:
            warm = scenario == "cold_excursion" and i == 2
            add(rules.EventKind.TEMPERATURE, temperature_c=round(high + 6.5 if warm else rnd.uniform(low, high), 1),
                location=hub)
        t += timedelta(minutes=rnd.randint(10, 30))
        add(rules.EventKind.SCAN, lat=hlat, lon=hlon, location=hub)
    t += timedelta(minutes=rnd.randint(60, 180))
    add(rules.EventKind.DELIVERED, location="signed for")
    return out


def body_of(events: list[rules.CarrierEvent]) -> bytes:
    return json.dumps({"events": [{"event_id": e.event_id, "tracking_number": e.tracking_number, "kind": e.kind.value,
                                   "occurred_at": e.occurred_at.isoformat(), "lat": e.lat, "lon": e.lon,
                                   "temperature_c": e.temperature_c, "location": e.location, "detail": e.detail}
                                  for e in events]}, separators=(",", ":")).encode()


def simulate(uow: UnitOfWork, actor: Principal, shipment_id: int, scenario: str) -> dict[str, Any]:
    """Ops (or the merchant, for its own parcel) make the sandbox carrier push a parcel's events now."""
    actor.require(Role.OPS, Role.MERCHANT)
    if scenario not in SCENARIOS:
        raise ValidationFailed(f"scenario must be one of {', '.join(SCENARIOS)}", code="invalid_scenario")
    with uow:
        s = uow.session.get(Shipment, shipment_id)
        if s is None or not records.may_see(actor, s.merchant_id):
            raise NotFound(f"shipment {shipment_id} not found")
        if not s.carrier.startswith("sandbox") or s.tracking_number is None:
            raise Conflict("only labelled parcels of a sandbox carrier can be simulated", code="not_sandbox")
        carrier = uow.session.get(Carrier, s.carrier)
        w = uow.session.get(Warehouse, s.warehouse_id) if s.warehouse_id is not None else None
        home = (w.lat, w.lon) if w is not None and w.lat is not None and w.lon is not None else None
        temp = (s.temp_min_c, s.temp_max_c) if s.temp_min_c is not None and s.temp_max_c is not None else None
        events = stream(s.tracking_number, uow.now - timedelta(hours=8), scenario, home=home, temp_range=temp)
        events = [e for e in events if e.occurred_at <= uow.now]
        secret, number, code = (carrier.secret if carrier else ""), s.tracking_number, s.carrier
    body = body_of(events)
    ts = int(uow.clock.now().timestamp())
    result = tracking.ingest(uow, code, body, signing.signature(secret, ts, body), events)
    return {"shipment_id": shipment_id, "tracking_number": number, "scenario": scenario, **result}
