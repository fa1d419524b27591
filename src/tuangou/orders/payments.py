"""Paying an order: snapshot, charge, one write transaction (docs/adr/0010).

The gateway key of a payment is derived from the order and its current attempt
(`rules.payment_key`), not from the client: every request paying the same order sends
the same key, and the gateway, idempotent by key like real ones (商户订单号), charges at
most once. Only a recorded decline opens the next attempt. So any number of concurrent
pays, with any client keys, capture one charge; no row is written before the charge,
and a process that dies between the charge and its commit is covered by the expiry job,
which asks the gateway about the current key before it ends a reservation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from tuangou.catalog import service as catalog
from tuangou.core import ledger
from tuangou.core.auth import Principal
from tuangou.core.combining import ALONE, Combiner
from tuangou.core.db import InTransaction, UnitOfWork, insert_ignore, retry_on_deadlock, table
from tuangou.core.errors import Conflict, DomainError, Forbidden, NotFound
from tuangou.orders import refunds, rules, views
from tuangou.orders.gateway import GatewayResult, GatewayTimeout, PaymentGateway
from tuangou.orders.models import Order, Payment, Voucher
from tuangou.orders.participants import registry

_orders = table(Order)
_o = _orders.c
_SNAPSHOT_COLS = [_o.id, _o.buyer_id, _o.deal_id, _o.merchant_id, _o.store_id, _o.quantity, _o.unit_price_cents,
                  _o.amount_cents, _o.status, _o.expires_at, _o.buckets, _o.pay_attempt, _o.extra, _o.service_date,
                  _o.slot, _o.created_at]


_snapshots: dict[int, tuple[Any, list[str]]] = {}
_CAPTURE = (update(_orders).where(_o.id == bindparam("oid"), _o.status == rules.OrderStatus.RESERVED.value)
            .values(status=rules.OrderStatus.PAID.value, paid_at=bindparam("now"), extra=bindparam("extra"))
            .returning(_o.id))
_VOUCHERS = insert(table(Voucher))


def _snapshot_query() -> tuple[Any, list[str]]:
    built = _snapshots.get(registry.version)
    if built is None:
        extra = registry.order_columns(_o)
        q = select(*_SNAPSHOT_COLS, *[c.label(f"x_{n}") for n, c in extra.items()]).where(_o.id == bindparam("oid"))
        built = _snapshots[registry.version] = (q, list(extra))
    return built


def snapshot_from_row(r: Any, extra: list[str]) -> rules.OrderSnapshot:
    """An order snapshot from a row of `_SNAPSHOT_COLS` (and the participants' `extra` columns)."""
    return rules.OrderSnapshot(r.id, r.buyer_id, r.deal_id, r.merchant_id, r.store_id, r.quantity,
                               r.unit_price_cents, r.amount_cents, r.status, r.expires_at, list(r.buckets or []),
                               r.pay_attempt, dict(r.extra or {}), {n: r._mapping[f"x_{n}"] for n in extra},
                               r.service_date, r.slot, r.created_at)


def _snapshot(conn: Any, order_id: int) -> rules.OrderSnapshot:
    q, extra = _snapshot_query()
    r = conn.execute(q, {"oid": order_id}).first()
    if r is None:
        raise NotFound(f"order {order_id} not found")
    return snapshot_from_row(r, extra)


def pay_order(uow: UnitOfWork, buyer: Principal, order_id: int, client_key: str, gateway: PaymentGateway,
              outcome: str | None = None) -> tuple[views.OrderView, dict[str, Any]]:
    """Charge a reserved order; no database lock is held while the gateway thinks.

    Preconditions: the buyer owns the order. Paying a paid order answers with it (replayed);
    `client_key` is accepted for the API's Idempotency-Key but the gateway key never depends on it.
    """
    registry.items  # noqa: B018 - fail loudly before charging when nothing was composed
    with uow.db.read_engine.connect() as conn:
        snap = _snapshot(conn, order_id)
    if not views.visible(buyer, snap.buyer_id, snap.merchant_id):
        raise Forbidden("this order belongs to another account")
    step = rules.plan_payment(snap, uow.clock.now())
    if isinstance(step, rules.Refusal):
        raise Conflict(step.message, code=step.code)
    if step == rules.PayStep.ALREADY_PAID:
        _raise_refused(order_id, snap.extra)
        return _read_view(uow, order_id), {"status": rules.PaymentStatus.SUCCEEDED.value, "replayed": True}
    if step == rules.PayStep.EXPIRE:
        _expire_one(uow, order_id)
        raise Conflict("the reservation expired before payment", code="reservation_expired")
    key = rules.payment_key(order_id, snap.pay_attempt)
    try:
        result: GatewayResult | None = gateway.charge(key, snap.amount_cents, outcome)
    except GatewayTimeout:
        result = None
    payment = record_charge(uow, snap, key, result)
    if payment["status"] == rules.PaymentStatus.SUCCEEDED and payment.get("vouchers") is not None:
        order = views.OrderView(snap.id, snap.buyer_id, snap.deal_id, snap.merchant_id, snap.store_id,
                                snap.quantity, snap.unit_price_cents, snap.amount_cents,
                                snap.service_date.isoformat() if snap.service_date else None, snap.slot,
                                rules.OrderStatus.PAID.value, snap.expires_at.isoformat(),
                                snap.created_at.isoformat() if snap.created_at else "", payment["paid_at"],
                                payment.pop("vouchers"))
        return order, payment
    payment.pop("vouchers", None)
    return _read_view(uow, order_id), payment


def _read_view(uow: UnitOfWork, order_id: int) -> views.OrderView:
    reader = UnitOfWork(uow.db, uow.clock, readonly=True)
    with reader:
        order = reader.session.get(Order, order_id)
        assert order is not None
        _raise_refused(order_id, order.extra or {})
        return views.view(reader, order)


def _raise_refused(order_id: int, extra: dict[str, Any]) -> None:
    """A participant gave the payment back (refunds.refuse_payment): the payer hears why, with a stable code."""
    refusal = extra.get("refused")
    if refusal:
        raise Conflict(refusal["message"], code=refusal["code"], order_id=order_id,
                       refunded_cents=refusal["refunded_cents"])


@retry_on_deadlock
def _expire_one(uow: UnitOfWork, order_id: int) -> None:
    with uow:
        order = uow.session.get(Order, order_id)
        if order is not None and views.end_reservation(uow, order, rules.OrderStatus.EXPIRED):
            uow.commit()


@dataclass(frozen=True)
class _Charge:
    """A captured charge waiting for its write transaction (alone or in a group, core/combining.py)."""

    snap: rules.OrderSnapshot
    key: str
    reference: str


_pays: Combiner[_Charge] = Combiner()


class _Apart(Exception):
    """A group member whose order moved on (paid already, reservation ended): the group runs apart."""


def record_charge(uow: UnitOfWork, snap: rules.OrderSnapshot, key: str, result: GatewayResult | None
                  ) -> dict[str, Any]:
    """Record the gateway's answer for `key` in one transaction (None = no answer). Idempotent per key.

    Concurrent captures of one deal's buckets in this process share one transaction and one move of their
    units from reserved to sold (group commit, as placing does); a group that cannot run whole runs apart."""
    if result is None or not result.ok or not snap.buckets:
        return _record_alone(uow, snap, key, result)
    outcome = _pays.submit((id(uow.db), snap.deal_id, tuple(snap.buckets)), _Charge(snap, key, result.reference),
                           lambda group: _capture_together(uow, group),
                           lambda alone: _record_alone(uow, alone.snap, alone.key, result))
    if outcome is ALONE:
        return _record_alone(uow, snap, key, result)
    return outcome  # type: ignore[no-any-return]


@retry_on_deadlock
def _capture_together(uow: UnitOfWork, group: list[_Charge]) -> list[Any]:
    """Capture every charge of `group` (same deal, same buckets) in one transaction: each order paid with
    its vouchers, then one confirm of their units, then each order's participants."""
    first = group[0].snap
    try:
        with uow:
            codes = []
            for charge in group:
                issued = _capture_rows(uow, charge.snap, charge.key, charge.reference)
                if issued is None:
                    raise _Apart
                codes.append(issued)
            catalog.confirm_held(uow, first.deal_id, first.buckets, sum(c.snap.quantity for c in group))
            answers = [_succeeded(uow, charge, _paid(uow, charge.snap, issued))
                       for charge, issued in zip(group, codes, strict=True)]
            uow.commit()
        return answers
    except (DomainError, _Apart):
        return [ALONE] * len(group)


def _succeeded(tx: InTransaction, charge: _Charge, done: Captured | None) -> dict[str, Any]:
    snap = charge.snap
    return {"status": rules.PaymentStatus.SUCCEEDED.value, "amount_cents": snap.amount_cents, "key": charge.key,
            "message": "", "gateway_ref": charge.reference, "paid_at": tx.now.isoformat(),
            "vouchers": [views.voucher_view(c, rules.VoucherStatus.ISSUED) for c in done.codes]
            if done is not None and done.answer_from_snapshot else None}


@retry_on_deadlock
def _record_alone(uow: UnitOfWork, snap: rules.OrderSnapshot, key: str, result: GatewayResult | None
                  ) -> dict[str, Any]:
    with uow:
        if result is None:
            _note_attempt(uow, snap, key, rules.PaymentStatus.UNKNOWN, "", "gateway timeout")
            uow.commit()
            return {"status": rules.PaymentStatus.UNKNOWN.value, "amount_cents": snap.amount_cents, "key": key,
                    "message": "gateway timeout; we will ask the gateway again", "gateway_ref": ""}
        if not result.ok:
            uow.conn.execute(update(_orders).where(_o.id == snap.id, _o.status == rules.OrderStatus.RESERVED.value,
                                                   _o.pay_attempt == snap.pay_attempt)
                             .values(pay_attempt=_o.pay_attempt + 1))
            _note_attempt(uow, snap, key, rules.PaymentStatus.FAILED, result.reference, result.message)
            uow.commit()
            return {"status": rules.PaymentStatus.FAILED.value, "amount_cents": snap.amount_cents, "key": key,
                    "message": result.message, "gateway_ref": result.reference}
        done = capture(uow, snap, key, result.reference)
        if done is None:  # an earlier request (or reconciliation) took this path first: keep the record straight
            _note_attempt(uow, snap, key, rules.PaymentStatus.SUCCEEDED, result.reference, "")
        uow.commit()
        return _succeeded(uow, _Charge(snap, key, result.reference), done)


def _note_attempt(tx: InTransaction, snap: rules.OrderSnapshot, key: str, status: rules.PaymentStatus,
                  ref: str, message: str) -> None:
    """Attempts that did not capture are kept (reconciliation asks the gateway about unknown ones)."""
    if not insert_ignore(tx.conn, table(Payment), {
            "order_id": snap.id, "key": key, "client_key": key, "amount_cents": snap.amount_cents,
            "status": status.value, "gateway_ref": ref, "message": message[:200], "created_at": tx.now,
            "decided_at": tx.now if status != rules.PaymentStatus.UNKNOWN else None}, ["key"]):
        tx.conn.execute(update(table(Payment)).where(
            Payment.key == key, Payment.status.in_((rules.PaymentStatus.PENDING, rules.PaymentStatus.UNKNOWN)))
            .values(status=status.value, gateway_ref=ref, message=message[:200],
                    decided_at=tx.now if status != rules.PaymentStatus.UNKNOWN else None))


@dataclass(frozen=True)
class Captured:
    codes: list[str]
    answer_from_snapshot: bool


def capture(tx: InTransaction, snap: rules.OrderSnapshot, key: str, charge_ref: str) -> Captured | None:
    """Inside an open unit of work: the money for `key` was captured. The reserved order becomes paid
    with its vouchers; returns their codes. None when the order had moved on: if this very charge
    paid it already nothing happens, otherwise (the reservation ended) the money is owed back."""
    codes = _capture_rows(tx, snap, key, charge_ref)
    if codes is None:
        order = tx.session.get(Order, snap.id)
        assert order is not None
        if (order.extra or {}).get("charge_ref") != charge_ref and refunds.owe_refund(
                tx, order, snap.amount_cents, f"late:{charge_ref}", charge_ref,
                "payment arrived after the reservation ended"):
            # the money came in and goes straight back out: booked once per charge however many see it
            ledger.post(tx.session, "payment", [(ledger.EXTERNAL_BUYERS, -snap.amount_cents),
                                                (ledger.ESCROW, snap.amount_cents)], tx.now, ref=f"order:{snap.id}")
        return None
    # the bucket is the row every buyer of the deal waits on: touched last, so it stays locked for one
    # statement and the commit rather than for the whole transaction (docs/adr/0010)
    catalog.confirm_held(tx, snap.deal_id, snap.buckets, snap.quantity)
    return _paid(tx, snap, codes)


def _capture_rows(tx: InTransaction, snap: rules.OrderSnapshot, key: str, charge_ref: str) -> list[str] | None:
    """The order paid, its vouchers issued, the money booked; None (and nothing written) when the order is no
    longer reserved."""
    conn, now = tx.conn, tx.now
    paid = conn.execute(_CAPTURE, {"oid": snap.id, "now": now,
                                   "extra": {**snap.extra, "charge_ref": charge_ref, "payment_key": key}}).first()
    if paid is None:
        return None
    codes = rules.plan_capture(snap).voucher_codes
    conn.execute(_VOUCHERS, [
        {"code": c, "order_id": snap.id, "deal_id": snap.deal_id, "merchant_id": snap.merchant_id,
         "buyer_id": snap.buyer_id, "price_cents": snap.unit_price_cents, "status": rules.VoucherStatus.ISSUED.value,
         "issued_at": now, "redeemed_at": None, "redeemed_by": None, "refunded_at": None} for c in codes])
    ledger.post_rows(conn, "payment", [(ledger.EXTERNAL_BUYERS, -snap.amount_cents),
                                       (ledger.ESCROW, snap.amount_cents)], now, ref=f"order:{snap.id}")
    return codes


def _paid(tx: InTransaction, snap: rules.OrderSnapshot, codes: list[str]) -> Captured:
    """After the units moved to sold: the participants of a paid order."""
    # OrderPaid and the buyer's receipt are announced from the order row by the worker (orders/announce.py)
    wanted = [p for p in registry.items if p.wants_paid(snap)]
    for p in wanted:
        p.on_paid(tx, snap)
    # a participant may have moved the order on (a group-buy that closed refunds a late payment):
    # then the answer is read back rather than built from the snapshot
    return Captured(codes, answer_from_snapshot=not any(p.moves_order_when_paid for p in wanted))


# ---- reconciliation: answers that never came -------------------------------------------------------

def reconcile_payments(uow: UnitOfWork, gateway: PaymentGateway, older_than_s: int = 60) -> int:
    """Ask the gateway about attempts left unknown (a timeout): capture, or open the next attempt."""
    with uow:
        rows = list(uow.session.execute(select(Payment.id, Payment.key, Payment.order_id).where(
            Payment.status.in_((rules.PaymentStatus.UNKNOWN, rules.PaymentStatus.PENDING)),
            Payment.created_at <= uow.now - timedelta(seconds=older_than_s)).limit(200)))
    for _pid, key, order_id in rows:
        found = gateway.lookup(key)
        with uow.db.read_engine.connect() as conn:
            snap = _snapshot(conn, order_id)
        record_charge(uow, snap, key, found if found is not None
                      else GatewayResult(False, "", "never reached the gateway"))
    return len(rows)
