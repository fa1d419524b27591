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


# ---- phone messages -------------------------------------------------------------------------------

# what reaches a phone unless its owner chooses otherwise (seed 000: the red line, sold-out and the 08:00
# suggestion "on the merchant's phone"; disputes waiting for the merchant's response; a paused business line)
DEFAULT_PHONE_KINDS = ("red_line_warning", "sold_out", "stock_suggestion", "dispute_opened", "dispute_escalated",
                       "line_paused")
PHONE_CHANNELS = ("sms", "wechat", "http")


class PhoneStatus(StrEnum):
    PENDING = "pending"  # waiting for its next attempt
    SENT = "sent"  # the channel accepted it
    DEAD = "dead"  # gave up after the last attempt


def phone_text(title: str, body: str, limit: int = 280) -> str:
    """One short text for SMS-like channels: the title, then as much of the body as fits."""
    text = f"{title} {body}".strip() if body else title
    return text if len(text) <= limit else text[: limit - 1] + "…"


def phone_problem(channel: str, address: str, kinds: list[str]) -> str | None:
    if channel not in PHONE_CHANNELS:
        return f"channel must be one of {', '.join(PHONE_CHANNELS)}"
    if channel == "sms" and not (address.lstrip("+").isdigit() and 6 <= len(address.lstrip("+")) <= 15):
        return "an SMS address is a phone number, e.g. +8613800138000"
    if channel == "http" and not address.startswith(("http://", "https://")):
        return "an http address is an http(s) URL"
    if not address.strip():
        return "address is required"
    if any(not k or len(k) > 48 for k in kinds):
        return "kinds are notification kinds such as sold_out"
    return None
