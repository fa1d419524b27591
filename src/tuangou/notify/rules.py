"""Pure webhook rules: signatures, backoff, matching."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from datetime import timedelta
from enum import StrEnum
from urllib.parse import urlsplit


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


# Cloud metadata services that are not in a private range on every provider.
METADATA_ADDRESSES = frozenset({"169.254.169.254", "fd00:ec2::254", "100.100.100.200"})


def _address_refused(text: str) -> bool:
    try:
        ip = ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip) in METADATA_ADDRESSES or not ip.is_global or ip.is_multicast


def _allowed(host: str, addresses: list[str], allow: tuple[str, ...]) -> bool:
    """Allow-listed by host name, or every resolved address inside an allow-listed network."""
    names = {a.lower().rstrip(".") for a in allow if not any(c in a for c in "/:") and not a[:1].isdigit()}
    if host in names:
        return True
    nets = []
    for entry in allow:
        try:
            nets.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            continue
    if not nets or not addresses:
        return False
    try:
        return all(any(ipaddress.ip_address(a.split("%")[0]) in n for n in nets) for a in addresses)
    except ValueError:
        return False


def url_refusal(url: str, addresses: list[str], allow: tuple[str, ...] = ()) -> str | None:
    """Why a webhook may not be sent to `url` resolving to `addresses`, or None.

    https only; no private, loopback, link-local, multicast or metadata address; unless the host or all its
    addresses are on the operator's allow-list (on-premise receivers), which also permits plain http.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "url is not a valid URL"
    host = (parts.hostname or "").lower().rstrip(".")
    if parts.scheme not in ("http", "https") or not host:
        return "url must be an absolute http(s) URL"
    if parts.username is not None or parts.password is not None:
        return "url may not carry credentials"
    if port == 0:
        return "url has an invalid port"
    try:
        literal = [str(ipaddress.ip_address(host))]
    except ValueError:
        literal = []
    addresses = literal or addresses
    if _allowed(host, addresses, allow):
        return None
    if parts.scheme != "https":
        return "url must use https (plain http only for allow-listed receivers)"
    refused = [a for a in addresses if _address_refused(a)]
    if refused or host == "localhost" or host.endswith((".localhost", ".internal", ".local")):
        return "url points at a private, loopback, link-local or metadata address"
    return None
