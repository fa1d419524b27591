"""Risk signals of an order, normalised then hashed with a key (pure, no I/O).

Risk only ever needs to know whether two orders share a device, an address, a phone or a payment
account, so the order keeps an HMAC of each normalised value, not the value: a leaked table does not
give away phone numbers (a plain hash of an 11-digit number is reversed by trying them all).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import unicodedata

from tuangou.orders.rules import Signals

HASH_CHARS = 20
_PHONE_JUNK = re.compile(r"[\s\-().]")
_SPACES = re.compile(r"\s+")
_ADDRESS_JUNK = re.compile(r"[,，。.#、\-]")


def normalise_phone(raw: str) -> str:
    """+86 138-0013-8000, 8613800138000 and 13800138000 are one phone."""
    digits = _PHONE_JUNK.sub("", raw.strip())
    if digits.startswith("+"):
        digits = digits[1:]
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits


def normalise_address(raw: str) -> str:
    """Full-width/half-width, case, spacing and punctuation do not make another address."""
    text = unicodedata.normalize("NFKC", raw).lower()
    text = _ADDRESS_JUNK.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def normalise_device(raw: str) -> str:
    return raw.strip().lower()[:128]


def telling_ip(address: str) -> str | None:
    """The client address, unless it says nothing about the buyer (loopback, private, link-local: a
    proxy or the machine itself); those would make every order of a site one 'device'."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_unspecified:
        return None
    return ip.compressed


def digest(key: str, kind: str, value: str | None) -> str | None:
    """The keyed hash of one normalised value; None stays None (an empty value matches nothing)."""
    if not value:
        return None
    mac = hmac.new(key.encode(), f"{kind}:{value}".encode(), hashlib.sha256)
    return mac.hexdigest()[:HASH_CHARS]


def signals(key: str, *, device: str | None = None, ip: str | None = None, address: str | None = None,
            phone: str | None = None, payment_account: str | None = None) -> Signals:
    """Normalise and hash what a request says about where an order comes from."""
    return Signals(device=digest(key, "device", normalise_device(device) if device else None),
                   ip=digest(key, "ip", telling_ip(ip) if ip else None),
                   address=digest(key, "address", normalise_address(address) if address else None),
                   phone=digest(key, "phone", normalise_phone(phone) if phone else None),
                   payment=digest(key, "payment", payment_account))
