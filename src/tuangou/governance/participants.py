"""Over-sale participants: who compensates a buyer moved or refunded by the circuit breaker.

Governance decides that a buyer is owed a no-threshold coupon and how much; the coupon itself lives with
the disputes capability, which takes part here. Installed by the composition roots, never by import.
"""

from __future__ import annotations

from tuangou.core.db import InTransaction
from tuangou.core.participants import Registry


class OversaleParticipant:
    name = "oversale-participant"

    def compensate(self, tx: InTransaction, *, buyer_id: int, amount_cents: int, reason: str, ref: str,
                   valid_days: int, liable_merchant_id: int) -> None:
        """Give the buyer `amount_cents`, advanced by the platform and recovered from `liable_merchant_id`
        (the merchant that sold more than its store could serve, A7)."""
        return None


registry: Registry[OversaleParticipant] = Registry("over-sale")
