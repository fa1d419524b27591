"""Payment gateway port and the built-in sandbox.

The sandbox decides per call: the payment request names the outcome
(`succeed`, `fail`, `timeout`), or a test queues outcomes with `script()`.
A timeout still captures the money, as a real gateway may: reconciliation
asks `lookup()` later and finds it.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Protocol


class GatewayTimeout(Exception):
    """No answer; the charge may or may not have happened."""


@dataclass(frozen=True)
class GatewayResult:
    ok: bool
    reference: str
    message: str = ""


class PaymentGateway(Protocol):
    def charge(self, key: str, amount_cents: int, outcome: str | None = None) -> GatewayResult: ...

    def refund(self, key: str, charge_reference: str, amount_cents: int) -> GatewayResult: ...

    def lookup(self, key: str) -> GatewayResult | None: ...

    def account_fingerprint(self, payment_method: str) -> str: ...


class SandboxGateway:
    """In-memory gateway, idempotent by key like real ones."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._charges: dict[str, GatewayResult] = {}
        self._refunds: dict[str, GatewayResult] = {}
        self._script: deque[str] = deque()
        self.refund_calls = 0

    def script(self, *outcomes: str) -> None:
        """Queue outcomes ('succeed', 'fail', 'timeout') for the next charges or refunds."""
        with self._lock:
            self._script.extend(outcomes)

    def _next(self, asked: str | None) -> str:
        with self._lock:
            return self._script.popleft() if self._script else (asked or "succeed")

    def charge(self, key: str, amount_cents: int, outcome: str | None = None) -> GatewayResult:
        """Atomic per key, like a real gateway's merchant order number: concurrent charges with one
        key get one decision."""
        with self._lock:
            result = self._charges.get(key)
            timed_out = False
            if result is None:
                decided = self._script.popleft() if self._script else (outcome or "succeed")
                if decided == "fail":
                    result = GatewayResult(False, f"ch_{uuid.uuid4().hex[:12]}", "card declined (sandbox)")
                else:
                    result = GatewayResult(True, f"ch_{uuid.uuid4().hex[:12]}")
                self._charges[key] = result
                timed_out = decided == "timeout"
        if timed_out:
            raise GatewayTimeout("sandbox gateway did not answer")
        return result

    def refund(self, key: str, charge_reference: str, amount_cents: int) -> GatewayResult:
        with self._lock:
            self.refund_calls += 1
            if key in self._refunds:
                return self._refunds[key]
        decided = self._next(None)
        if decided == "timeout":
            raise GatewayTimeout("sandbox gateway did not answer")
        if decided == "fail":
            return GatewayResult(False, "", "refund refused (sandbox)")
        result = GatewayResult(True, f"re_{uuid.uuid4().hex[:12]}")
        with self._lock:
            self._refunds[key] = result
        return result

    def lookup(self, key: str) -> GatewayResult | None:
        with self._lock:
            return self._charges.get(key)

    def account_fingerprint(self, payment_method: str) -> str:
        """The same payer account behind any token of it (like a card fingerprint): the sandbox's tokens
        are `acct:<name>` or `acct:<name>:<anything>`, so two tokens of one account match."""
        parts = payment_method.strip().split(":")
        account = ":".join(parts[:2]) if parts[0] == "acct" and len(parts) > 1 else payment_method.strip()
        return hashlib.sha256(account.lower().encode()).hexdigest()[:24]
