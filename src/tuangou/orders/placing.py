"""Placing an order: snapshot, decide, apply (docs/adr/0010).

1. Snapshot: one Core query on the read engine for the deal, its store, the buckets the order
   will draw on and the participants' columns. No write transaction yet.
2. Decide: `rules.plan_order`, pure. A refusal it finds (not on sale, sold out as last seen, a
   bad date) is answered at once: a sell-out costs no write transaction.
3. Apply: one write transaction of Core statements: INSERT the order (ON CONFLICT on the
   buyer's idempotency key: a retry finds the first order), one guarded UPDATE per bucket (the
   cap stays in the WHERE, so a stale snapshot can never oversell), the per-buyer count when the
   deal has a limit, the participants that want this order. One commit. The order row is the
   outbox of its OrderPlaced event: the worker announces it (orders/announce.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, select, update

from tuangou.catalog import rules as catalog_rules
from tuangou.catalog import service as catalog
from tuangou.core.auth import Principal, Role
from tuangou.core.combining import ALONE, Combiner
from tuangou.core.db import InTransaction, UnitOfWork, retry_on_deadlock, table, upsert_add, upsertable_insert
from tuangou.core.errors import Conflict, DomainError, IdempotencyConflict
from tuangou.orders import rules, views
from tuangou.orders.models import BuyerDealCount, Order
from tuangou.orders.participants import Placing, registry

_orders = table(Order)
_o = _orders.c
# What this process saw of each deal (kind, time zone), to guess which buckets to read with the
# snapshot. A wrong guess (a store moved time zone) only costs the pre-check, never correctness.
_seen: dict[int, tuple[catalog_rules.DealKind, str]] = {}
REPLAY = "orders.replay_of"
# Statements built once and reused (their SQL stays compiled): per participant set, per dialect.
_snapshots: dict[int, tuple[Any, list[str]]] = {}
_inserts: dict[str, Any] = {}
_groups: Combiner[Any] = Combiner()
_DISCOUNT = update(_orders).where(_o.id == bindparam("oid")).values(amount_cents=bindparam("amount"),
                                                                    extra=bindparam("extra"))


def _snapshot_query() -> tuple[Any, list[str]]:
    built = _snapshots.get(registry.version)
    if built is None:
        # the buyer's earlier order under this key rides along: a retry is answered from it
        earlier = (select(_o.id).where(_o.buyer_id == bindparam("buyer_id"),
                                       _o.idempotency_key == bindparam("idem")).scalar_subquery())
        extra = {REPLAY: earlier, **registry.snapshot_columns(catalog.deal_columns())}
        built = _snapshots[registry.version] = (catalog.snapshot_query(extra), list(extra))
    return built


def _insert_order(dialect: str) -> Any:
    stmt = _inserts.get(dialect)
    if stmt is None:
        stmt = _inserts[dialect] = (upsertable_insert(dialect, _orders)
                                    .on_conflict_do_nothing(index_elements=["buyer_id", "idempotency_key"])
                                    .returning(_o.id))
    return stmt


def refuse(refusal: rules.Refusal) -> DomainError:
    return DomainError(refusal.message, code=refusal.code, status=refusal.status, **refusal.extra)


def place_order(uow: UnitOfWork, buyer: Principal, deal_id: int, quantity: int, idempotency_key: str, *,
                service_date: date | None = None, slot: str | None = None, ttl_minutes: int = 15,
                coupon_code: str | None = None,
                signals: rules.Signals = rules.NO_SIGNALS) -> tuple[views.OrderView, bool]:
    """Reserve `quantity` units of a deal for `buyer`; returns (order, replayed).

    Preconditions: buyer role. The same idempotency key returns the same order
    (replayed=True); the same key with another body raises idempotency_conflict.
    """
    buyer.require(Role.BUYER)
    problem = rules.request_problem(quantity, idempotency_key)
    if problem is not None:
        raise refuse(problem)
    req = rules.OrderRequest(buyer.user_id, deal_id, quantity, idempotency_key, service_date, slot,
                             coupon_code.strip().upper() if coupon_code else None, signals)
    participants = registry.items
    now = uow.clock.now()
    seen = _seen.get(deal_id)
    keys = rules.guess_bucket_keys(seen[0] if seen else None, seen[1] if seen else None, req, now)
    query, extra = _snapshot_query()
    with uow.db.read_engine.connect() as conn:
        snap = catalog.snapshot(conn, query, deal_id, keys, extra,
                                {"buyer_id": req.buyer_id, "idem": req.idempotency_key, **req.signal_params()})
    _seen[deal_id] = (snap.kind, snap.timezone)
    if snap.extra[REPLAY] is not None:
        replay = _replay_outside(uow, req)
        if replay is not None:
            return replay, True
    plan = rules.plan_order(snap, req, now, ttl_minutes)
    if isinstance(plan, rules.Refusal):
        raise refuse(plan)
    wanted = [p for p in participants if p.wants_placing(snap, req)]
    return _write(uow, _Placement(req, snap, plan, wanted))


@dataclass(frozen=True)
class _Placement:
    """An order decided and waiting for its write transaction (alone or in a group, core/combining.py)."""

    req: rules.OrderRequest
    snap: catalog_rules.DealSnapshot
    plan: rules.OrderPlan
    wanted: list[Any]


def _write(uow: UnitOfWork, placement: _Placement) -> tuple[views.OrderView, bool]:
    """Concurrent placements on the same buckets of a deal in this process share one transaction; a
    group that cannot run whole runs each placement alone, so every refusal is the order's own."""
    if not all(p.transactional for p in placement.wanted):
        return _apply(uow, placement)
    key = (id(uow.db), placement.snap.id, tuple(placement.plan.keys))  # one database's rows only
    outcome = _groups.submit(key, placement, lambda group: _apply_together(uow, group),
                             lambda alone: _apply(uow, alone))
    if outcome is ALONE:
        return _apply(uow, placement)
    return outcome  # type: ignore[no-any-return]


def _values(placement: _Placement, now: datetime) -> dict[str, Any]:
    req, snap, plan = placement.req, placement.snap, placement.plan
    return {"buyer_id": req.buyer_id, "deal_id": snap.id, "merchant_id": snap.merchant_id,
            "store_id": snap.store_id, "quantity": plan.quantity, "unit_price_cents": plan.unit_price_cents,
            "amount_cents": plan.amount_cents, "service_date": plan.service_date, "slot": plan.slot,
            "buckets": plan.keys, "status": rules.OrderStatus.RESERVED.value,
            "idempotency_key": req.idempotency_key, "fingerprint": plan.fingerprint,
            "expires_at": plan.expires_at, "created_at": now, "extra": {}, "pay_attempt": 0,
            "announced": rules.Announced.NOTHING, **req.signals.columns()}


def _inserted(uow: InTransaction, placement: _Placement, order_id: int) -> dict[str, Any]:
    outcome: dict[str, Any] = {}
    for p in placement.wanted:
        p.on_inserted(uow, order_id, placement.req, placement.snap, outcome)
    return outcome


@retry_on_deadlock
def _apply(uow: UnitOfWork, placement: _Placement) -> tuple[views.OrderView, bool]:
    req, snap, plan = placement.req, placement.snap, placement.plan
    with uow:
        conn = uow.conn
        order_id = conn.execute(_insert_order(conn.dialect.name), _values(placement, uow.now)).scalar()
        if order_id is None:  # this buyer used the key before (or a concurrent retry won): answer with that order
            replay = _replay(uow, req)
            assert replay is not None
            return replay, True
        outcome = _inserted(uow, placement, order_id)
        after = catalog.hold(uow, snap, plan.keys, plan.quantity)
        view = _finish(uow, placement, order_id, outcome, after)
        uow.commit()
    return view, False


class _Apart(Exception):
    """A group member that must run alone (its key was used before): the group runs apart."""


@retry_on_deadlock
def _apply_together(uow: UnitOfWork, group: list[_Placement]) -> list[Any]:
    """Place every order of `group` (same deal, same buckets) in one transaction: the orders, then one
    guarded hold of their sum, then each order's own statements, each seeing the buckets as if the orders
    had been held one after the other. Anything refused: nothing is written, every member runs alone."""
    first = group[0]
    try:
        with uow:
            conn = uow.conn
            insert = _insert_order(conn.dialect.name)
            placed = []
            for placement in group:
                order_id = conn.execute(insert, _values(placement, uow.now)).scalar()
                if order_id is None:
                    raise _Apart
                placed.append((order_id, _inserted(uow, placement, order_id)))
            later = sum(p.plan.quantity for p in group)
            after = catalog.hold(uow, first.snap, first.plan.keys, later)
            answers = []
            for placement, (order_id, outcome) in zip(group, placed, strict=True):
                later -= placement.plan.quantity
                seen = [replace(s, reserved=s.reserved - later) for s in after]
                answers.append((_finish(uow, placement, order_id, outcome, seen), False))
            uow.commit()
        return answers
    except (DomainError, _Apart):
        return [ALONE] * len(group)


def _finish(uow: InTransaction, placement: _Placement, order_id: int, outcome: dict[str, Any],
            after: list[catalog_rules.BucketState]) -> views.OrderView:
    """What follows the hold: the per-buyer count, the participants, the discount; the answer."""
    req, snap, plan = placement.req, placement.snap, placement.plan
    conn = uow.conn
    if plan.per_buyer_limit is not None and not upsert_add(
            conn, table(BuyerDealCount), {"deal_id": snap.id, "buyer_id": req.buyer_id, "qty": plan.quantity},
            ["deal_id", "buyer_id"], "qty", plan.per_buyer_limit):
        raise Conflict(f"at most {plan.per_buyer_limit} per buyer", code="per_buyer_limit")
    amount = plan.amount_cents
    status = outcome.get("status", rules.OrderStatus.RESERVED.value)
    if placement.wanted:
        placing = Placing(order_id, req, snap, plan, after, outcome)
        discount = sum(p.on_placing(uow, placing) for p in placement.wanted)
        if discount:
            amount -= discount
            conn.execute(_DISCOUNT, {"oid": order_id, "amount": amount, "extra": {
                "coupon_code": req.coupon_code, "coupon_discount_cents": discount}})
    now = uow.now
    return views.OrderView(order_id, req.buyer_id, snap.id, snap.merchant_id, snap.store_id, plan.quantity,
                           plan.unit_price_cents, amount,
                           plan.service_date.isoformat() if plan.service_date else None, plan.slot,
                           status, plan.expires_at.isoformat(), now.isoformat(), None)


def _replay(uow: InTransaction, req: rules.OrderRequest) -> views.OrderView | None:
    existing = uow.session.scalar(select(Order).where(Order.buyer_id == req.buyer_id,
                                                      Order.idempotency_key == req.idempotency_key))
    if existing is None:
        return None
    if existing.fingerprint != req.fingerprint():
        raise IdempotencyConflict("this Idempotency-Key was used for a different order")
    return views.view(uow, existing)


def _replay_outside(uow: UnitOfWork, req: rules.OrderRequest) -> views.OrderView | None:
    reader = UnitOfWork(uow.db, uow.clock, readonly=True)
    with reader:
        return _replay(reader, req)
