"""Pure webhook rules: signatures, backoff, matching."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from enum import StrEnum


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for its next attempt
    DELIVERED = "delivered"  # the receiver answered 2xx
    DEAD = "dead"  # gave up after the last attempt; ops can replay


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`X-Tuangou-Signature: t=<unix>,v1=<hex>`; receivers recompute HMAC-SHA256 of `t.body`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, now_ts: int, tolerance_s: int = 300) -> bool:
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        ts = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs(now_ts - ts) > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret, ts, body), header)


def backoff(attempts: int, base_s: int = 2, ceiling_s: int = 3600) -> timedelta:
    """2 s, 4 s, 8 s … one hour at most."""
    return timedelta(seconds=min(ceiling_s, base_s ** max(1, attempts)))


def wants(event_types: list[str], event_type: str) -> bool:
    return "*" in event_types or event_type in event_types
