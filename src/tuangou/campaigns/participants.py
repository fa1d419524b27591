"""How a higher capability takes part when a formed group-buy is called off: it compensates each
participant (disputes issues a coupon the platform pays first and books a recovery claim). Installed by
the composition roots (tuangou.composition); nothing registers by import."""

from __future__ import annotations

from typing import Any

from tuangou.core.db import InTransaction
from tuangou.core.participants import Registry


class CancellationParticipant:
    name = "campaign-cancellation-participant"

    def compensate(self, tx: InTransaction, *, buyer_id: int, amount_cents: int, reason: str, ref: str,
                   valid_days: int, liable_merchant_id: int) -> dict[str, Any] | None:
        """Give the buyer `amount_cents` on top of the refund, advanced by the platform and recovered
        from `liable_merchant_id`; once per `ref`. Returns what was given (None: nothing)."""
        return None


registry: Registry[CancellationParticipant] = Registry("campaign cancellation")
