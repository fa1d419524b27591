"""Pure order rules: states, transitions, voucher codes, refund arithmetic, and the decisions of the
hot path (`plan_order`, `plan_payment`, `plan_capture`): a snapshot in, a plan or a refusal out."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import IntEnum, StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from tuangou.catalog import rules as catalog_rules

VOUCHER_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud at a counter
VOUCHER_LENGTH = 16  # 80 bits of entropy


class OrderStatus(StrEnum):
    RESERVED = "reserved"  # capacity held, waiting for payment until expires_at
    PAID = "paid"  # paid; vouchers issued
    EXPIRED = "expired"  # not paid in time; capacity returned
    CANCELLED = "cancelled"  # buyer gave up before paying; capacity returned
    REFUNDED = "refunded"  # every voucher refunded
    COMPLETED = "completed"  # every voucher redeemed or refunded, at least one redeemed
    HELD = "held"  # held for a risk review: capacity kept, not payable, never expires until ops decide


# An order in one of these may still be paid: its OrderPaid may still be owed.
MAY_BE_PAID = frozenset({OrderStatus.RESERVED.value, OrderStatus.HELD.value})


class Announced(IntEnum):
    """How much of an order's hot-path life its row has announced as outbox events."""

    NOTHING = 0  # just placed: OrderPlaced is still to be written
    PLACED = 1  # OrderPlaced written; OrderPaid follows once it is paid
    ALL = 2  # every hot-path event written (paid, or ended without payment)


def announcements(announced: int, status: str, paid: bool) -> tuple[list[str], Announced]:
    """The events still owed for an order row, in order, and how announced it is afterwards."""
    if announced == Announced.ALL:
        return [], Announced.ALL
    owed = ["OrderPlaced"] if announced == Announced.NOTHING else []
    if paid:
        return owed + ["OrderPaid"], Announced.ALL
    return owed, Announced.PLACED if status in MAY_BE_PAID else Announced.ALL


class PaymentStatus(StrEnum):
    PENDING = "pending"  # sent to the gateway, no answer yet
    SUCCEEDED = "succeeded"  # money captured
    FAILED = "failed"  # declined; nothing captured
    UNKNOWN = "unknown"  # the gateway timed out; reconciliation will ask again


class VoucherStatus(StrEnum):
    ISSUED = "issued"  # valid, may be redeemed or refunded
    REDEEMED = "redeemed"  # used in the store (核销)
    REFUNDED = "refunded"  # money returned; cannot be used


class RefundStatus(StrEnum):
    PENDING = "pending"  # owed to the buyer; the worker sends it to the gateway until it succeeds
    SUCCEEDED = "succeeded"  # the gateway returned the money


def new_voucher_code() -> str:
    return "".join(secrets.choice(VOUCHER_ALPHABET) for _ in range(VOUCHER_LENGTH))


def qr_payload(code: str) -> str:
    return f"tuangou://voucher/{code}"


def request_fingerprint(body: dict[str, Any]) -> str:
    """Same key with a different body is a client bug we refuse (`idempotency_conflict`)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:32]


def reservation_expiry(now: datetime, ttl_minutes: int) -> datetime:
    return now + timedelta(minutes=ttl_minutes)


def refund_backoff(attempts: int, base_seconds: int = 5, ceiling_seconds: int = 3600) -> timedelta:
    """Exponential backoff for a refund the gateway refused: 5 s, 10 s, 20 s … at most an hour."""
    return timedelta(seconds=min(ceiling_seconds, base_seconds * 2 ** max(0, attempts - 1)))


def coupon_share(discount: int, quantity: int, refunded_before: int, refunded_now: int) -> int:
    """The part of an order's coupon discount that belongs to `refunded_now` vouchers.

    Cumulative, so successive partial refunds add up to exactly `discount` once all are refunded.
    """
    if quantity <= 0:
        return 0
    after = refunded_before + refunded_now
    return discount * after // quantity - discount * refunded_before // quantity


def repricing(voucher_prices: list[int], new_unit_cents: int) -> int:
    """Cents owed back when unredeemed vouchers bought at `voucher_prices` end up costing `new_unit_cents`
    each (a group-buy's final tier): only ever down, never a charge."""
    return sum(max(0, p - new_unit_cents) for p in voucher_prices)


def settled_status(voucher_statuses: list[str]) -> OrderStatus | None:
    """The final status of a paid order once no voucher is still issued, else None."""
    if not voucher_statuses or VoucherStatus.ISSUED in voucher_statuses:
        return None
    if all(s == VoucherStatus.REFUNDED for s in voucher_statuses):
        return OrderStatus.REFUNDED
    return OrderStatus.COMPLETED


# ---- the hot path's decisions ---------------------------------------------------------------------

MAX_QUANTITY = 1000


@dataclass(frozen=True)
class Refusal:
    """A stable code and words for the buyer; the command changes nothing."""

    code: str
    message: str
    status: int = 409
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Signals:
    """Where an order came from, as keyed hashes (orders/signals.py): matched by risk, never shown.

    Not part of the request's fingerprint: a retry from another network is the same order."""

    device: str | None = None
    ip: str | None = None
    address: str | None = None
    phone: str | None = None
    payment: str | None = None

    def columns(self) -> dict[str, str | None]:
        """The order row's signal columns."""
        return {"device_h": self.device, "ip_h": self.ip, "address_h": self.address, "phone_h": self.phone,
                "payment_h": self.payment}


NO_SIGNALS = Signals()


@dataclass(frozen=True)
class OrderRequest:
    buyer_id: int
    deal_id: int
    quantity: int
    idempotency_key: str
    service_date: date | None = None
    slot: str | None = None
    coupon_code: str | None = None
    signals: Signals = NO_SIGNALS

    def signal_params(self) -> dict[str, Any]:
        """Bind parameters participants' snapshot columns may use (`sig_device`, `sig_buyer` …)."""
        return {"sig_buyer": self.buyer_id, **{f"sig_{k[:-2]}": v for k, v in self.signals.columns().items()}}

    def fingerprint(self) -> str:
        body: dict[str, Any] = {"deal": self.deal_id, "q": self.quantity, "d": self.service_date, "s": self.slot}
        if self.coupon_code:
            body["c"] = self.coupon_code
        return request_fingerprint(body)


@dataclass(frozen=True)
class OrderPlan:
    """What placing will write: the order row's values and the buckets to hold, in lock order."""

    keys: list[str]
    service_date: date | None
    slot: str | None
    quantity: int
    unit_price_cents: int
    amount_cents: int
    fingerprint: str
    expires_at: datetime
    per_buyer_limit: int | None


def request_problem(quantity: int, idempotency_key: str) -> Refusal | None:
    """Input that no deal could accept (checked before any read)."""
    if not 0 < quantity <= MAX_QUANTITY:
        return Refusal("validation_error", f"quantity must be between 1 and {MAX_QUANTITY}", 422)
    if not idempotency_key or len(idempotency_key) > 128:
        return Refusal("idempotency_key_required", "an Idempotency-Key header (1-128 characters) is required", 422)
    return None


def guess_bucket_keys(kind: catalog_rules.DealKind | None, timezone: str | None, req: OrderRequest,
                      now: datetime) -> list[str]:
    """The buckets to read with the snapshot, from what was seen of the deal before (may be wrong:
    a wrong guess only costs the pre-check, never correctness)."""
    if kind == catalog_rules.DealKind.GOODS:
        return [catalog_rules.STOCK_BUCKET, catalog_rules.TOTAL_BUCKET]
    day = req.service_date or now.astimezone(ZoneInfo(timezone or "Asia/Shanghai")).date()
    return [catalog_rules.date_bucket(day, req.slot), catalog_rules.TOTAL_BUCKET]


def service_day(snap: catalog_rules.DealSnapshot, req: OrderRequest, now: datetime) -> date | None | Refusal:
    if snap.kind == catalog_rules.DealKind.GOODS:
        if req.service_date is not None or req.slot is not None:
            return Refusal("validation_error", "goods deals take no service_date or slot", 422)
        return None
    zone = ZoneInfo(snap.timezone)
    today = now.astimezone(zone).date()
    day = req.service_date or today
    problem = catalog_rules.service_date_problem(day, today, snap.valid_from.astimezone(zone).date(),
                                                 snap.valid_until.astimezone(zone).date())
    if problem:
        return Refusal("invalid_service_date", problem, 422)
    if snap.slots and req.slot not in snap.slots:
        return Refusal("invalid_slot", f"slot must be one of {', '.join(sorted(snap.slots))}", 422)
    if not snap.slots and req.slot is not None:
        return Refusal("invalid_slot", "this deal has no time slots", 422)
    return day


def plan_order(snap: catalog_rules.DealSnapshot, req: OrderRequest, now: datetime,
               ttl_minutes: int) -> OrderPlan | Refusal:
    """Decide an order from a snapshot: a plan to apply, or the refusal a buyer sees.

    A refusal from the buckets seen in the snapshot (sold out, not open) costs no write
    transaction; a plan is still checked by the guarded UPDATEs when applied."""
    if snap.status != catalog_rules.DealStatus.PUBLISHED:
        return Refusal("not_on_sale", f"deal {snap.id} is not on sale")
    if snap.per_buyer_limit is not None and req.quantity > snap.per_buyer_limit:
        return Refusal("per_buyer_limit", f"at most {snap.per_buyer_limit} per buyer")
    day = service_day(snap, req, now)
    if isinstance(day, Refusal):
        return day
    keys = catalog_rules.buckets_for_order(snap.kind, day, req.slot, snap.has_total_cap)
    for key in keys:
        state = snap.buckets.get(key)
        why = catalog_rules.availability_refusal(state, req.quantity) if state is not None else None
        if why is not None:
            code, message, remaining = why
            extra = {"remaining": remaining} if code != "not_on_sale" else {}
            return Refusal(code, f"deal {snap.id}: {message}", 409, extra)
    return OrderPlan(keys, day, req.slot, req.quantity, snap.price_cents, snap.price_cents * req.quantity,
                     req.fingerprint(), reservation_expiry(now, ttl_minutes), snap.per_buyer_limit)


@dataclass(frozen=True)
class OrderSnapshot:
    """An order as paying reads it in one query, with the columns order participants added."""

    id: int
    buyer_id: int
    deal_id: int
    merchant_id: int
    store_id: int
    quantity: int
    unit_price_cents: int
    amount_cents: int
    status: str
    expires_at: datetime
    buckets: list[str]
    pay_attempt: int
    extra: dict[str, Any]
    participant: dict[str, Any]
    service_date: date | None = None
    slot: str | None = None
    created_at: datetime | None = None


def payment_key(order_id: int, attempt: int) -> str:
    """The gateway's idempotency key (商户订单号) for one attempt to pay an order.

    Every request paying the same attempt sends the same key, so the gateway charges
    at most once whatever the clients' own keys; only a recorded decline opens the next attempt.
    """
    return f"ord{order_id}-{attempt}"


class PayStep(StrEnum):
    CHARGE = "charge"  # ask the gateway (again: same key, same answer)
    ALREADY_PAID = "already_paid"  # answer with the order as it is
    EXPIRE = "expire"  # the reservation ran out before payment: end it, refuse


def plan_payment(order: OrderSnapshot, now: datetime) -> PayStep | Refusal:
    if order.status == OrderStatus.PAID or (order.status in (OrderStatus.COMPLETED, OrderStatus.REFUNDED)
                                            and order.extra.get("charge_ref")):
        return PayStep.ALREADY_PAID
    if order.status != OrderStatus.RESERVED:
        return Refusal("not_payable", f"order is {order.status}; it cannot be paid")
    if order.expires_at <= now:
        return PayStep.EXPIRE
    return PayStep.CHARGE


@dataclass(frozen=True)
class CapturePlan:
    voucher_codes: list[str]


def plan_capture(order: OrderSnapshot) -> CapturePlan:
    """What a captured payment writes besides the ledger posting: one voucher per unit. Its OrderPaid
    event is announced from the order row afterwards (`announcements`)."""
    return CapturePlan([new_voucher_code() for _ in range(order.quantity)])


def placed_event(order_id: int, deal_id: int, quantity: int, buyer_id: int) -> dict[str, Any]:
    return {"order_id": order_id, "deal_id": deal_id, "quantity": quantity, "buyer_id": buyer_id}


def paid_event(order_id: int, amount_cents: int, deal_id: int, quantity: int) -> dict[str, Any]:
    return {"order_id": order_id, "amount_cents": amount_cents, "deal_id": deal_id, "vouchers": quantity}


# ---- re-dating a booked order (预约改期) ----------------------------------------------------------------

class RedateStatus(StrEnum):
    OFFERED = "offered"  # agreed in advance (breaker, dispute): the buyer's pick inside the window applies at once
    PROPOSED = "proposed"  # the buyer asked for a date; the merchant (or ops) approves or rejects
    APPLIED = "applied"  # the order and its unused vouchers moved, and their capacity units with them
    REJECTED = "rejected"  # the merchant said no; the order keeps its date
    WITHDRAWN = "withdrawn"  # replaced by a newer offer or proposal before it was used


class RedateOrigin(StrEnum):
    BUYER = "buyer"  # the buyer asked (needs the merchant's approval)
    BREAKER = "breaker"  # the circuit breaker moved the order off a date that lost capacity
    DISPUTE = "dispute"  # a medium-tier dispute: the buyer rebooks within the tier's days


@dataclass(frozen=True)
class RedateCase:
    """A requested change of date, with what decides it."""

    order_status: str
    issued: int  # the order's unused vouchers: what moves
    redeemed: int
    from_date: date | None
    from_slot: str | None
    to_date: date
    to_slot: str | None
    today: date  # store-local
    window_first: date
    window_last: date
    slots: frozenset[str]


def redate_window(today: date, days: int, last_valid: date) -> tuple[date, date]:
    """The dates a buyer may move a booking to without an offer: today .. today + days, within validity."""
    return today, min(today + timedelta(days=days), last_valid)


def redate_problem(case: RedateCase) -> Refusal | None:
    """Why this re-dating cannot happen (a stable code), or None. Room on the target date is not judged
    here: the guarded UPDATE that moves the unit decides it (`no_room`)."""
    if case.redeemed:  # a used voucher was served on its day: the order's date is history, it stays
        return Refusal("voucher_already_redeemed", "a voucher of this order is already used", 409)
    if case.issued == 0:
        return Refusal("not_redatable", "the order has no unused voucher", 409)
    if case.order_status != OrderStatus.PAID or case.from_date is None:
        return Refusal("not_redatable", f"a {case.order_status} order without a service date keeps its terms", 409)
    if case.slots and case.to_slot not in case.slots:
        return Refusal("invalid_slot", f"slot must be one of {', '.join(sorted(case.slots))}", 422)
    if not case.slots and case.to_slot is not None:
        return Refusal("invalid_slot", "this deal has no time slots", 422)
    if (case.to_date, case.to_slot) == (case.from_date, case.from_slot):
        return Refusal("same_date", "the order is already booked for that date", 422)
    if not (max(case.today, case.window_first) <= case.to_date <= case.window_last):
        return Refusal("outside_window", f"the new date must be between {max(case.today, case.window_first)} "
                       f"and {case.window_last}", 422, {"window_first": case.window_first.isoformat(),
                                                         "window_last": case.window_last.isoformat()})
    return None
