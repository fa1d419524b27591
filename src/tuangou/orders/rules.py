"""Pure order rules: states, transitions, voucher codes, refund arithmetic."""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

VOUCHER_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud at a counter
VOUCHER_LENGTH = 16  # 80 bits of entropy


class OrderStatus(StrEnum):
    RESERVED = "reserved"  # capacity held, waiting for payment until expires_at
    PAID = "paid"  # paid; vouchers issued
    EXPIRED = "expired"  # not paid in time; capacity returned
    CANCELLED = "cancelled"  # buyer gave up before paying; capacity returned
    REFUNDED = "refunded"  # every voucher refunded
    COMPLETED = "completed"  # every voucher redeemed or refunded, at least one redeemed


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


def settled_status(voucher_statuses: list[str]) -> OrderStatus | None:
    """The final status of a paid order once no voucher is still issued, else None."""
    if not voucher_statuses or VoucherStatus.ISSUED in voucher_statuses:
        return None
    if all(s == VoucherStatus.REFUNDED for s in voucher_statuses):
        return OrderStatus.REFUNDED
    return OrderStatus.COMPLETED
