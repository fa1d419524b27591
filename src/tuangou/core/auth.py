"""Roles, password hashing and stateless signed bearer tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from tuangou.core.errors import Forbidden, Unauthorized


class Role(StrEnum):
    BUYER = "buyer"  # buys deals and joins group-buys
    MERCHANT = "merchant"  # runs stores; sees only its own
    OPS = "ops"  # platform operations: audit, customer service, risk
    LEADER = "leader"  # group leader (团长) of community group-buys
    SUPPLIER = "supplier"  # supplies campaigns


@dataclass(frozen=True)
class Principal:
    user_id: int
    role: Role
    merchant_id: int | None = None

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            raise Forbidden(f"this action needs role {' or '.join(r.value for r in roles)}")

    def merchant_scope(self) -> int | None:
        """Whose rows this actor may list: a merchant its own (its id), ops everyone's (None)."""
        if self.role == Role.OPS:
            return None
        if self.role == Role.MERCHANT and self.merchant_id is not None:
            return self.merchant_id
        raise Forbidden("this list is for merchants and ops")

    def require_merchant(self, merchant_id: int) -> None:
        """Ops may act on any merchant; a merchant only on itself."""
        if self.role == Role.OPS:
            return
        if self.role != Role.MERCHANT or self.merchant_id != merchant_id:
            raise Forbidden("this belongs to another merchant")


_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        _, salt_hex, digest_hex = stored.split("$")
    except ValueError:
        return False
    digest = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt_hex), dklen=32, **_SCRYPT)
    return hmac.compare_digest(digest.hex(), digest_hex)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_token(principal: Principal, secret: str, now: datetime, ttl: timedelta) -> str:
    body = _b64(json.dumps({"u": principal.user_id, "r": principal.role.value, "m": principal.merchant_id,
                            "e": int((now + ttl).timestamp())}, separators=(",", ":")).encode())
    sig = _b64(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest())
    return f"{body}.{sig}"


def read_token(token: str, secret: str, now: datetime) -> Principal:
    try:
        body, sig = token.split(".")
        expected = _b64(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(sig, expected):
            raise Unauthorized("invalid token", code="invalid_token")
        data = json.loads(_unb64(body))
    except (ValueError, KeyError) as exc:
        raise Unauthorized("invalid token", code="invalid_token") from exc
    if data["e"] < now.timestamp():
        raise Unauthorized("token expired", code="token_expired")
    return Principal(user_id=int(data["u"]), role=Role(data["r"]), merchant_id=data.get("m"))
