"""Deal participants: how capabilities above catalog take part in publishing and listing deals.

- `check_publish`: before a deal goes on sale; may refuse (a suspended merchant, a paused business line).
- `on_published`: inside the publishing transaction, after the buckets are open (capacity caps, audits).
- `rank`: the order in which deals are listed; the first participant that ranks decides (merchant scores).
Installed by the composition roots (tuangou/composition.py), never by importing a module.
"""

from __future__ import annotations

from tuangou.core.db import InTransaction
from tuangou.core.participants import Registry


class DealParticipant:
    name = "deal-participant"

    def check_publish(self, tx: InTransaction, deal_id: int, merchant_id: int, large_promotion: bool) -> None:
        return None

    def on_published(self, tx: InTransaction, deal_id: int) -> None:
        return None

    def rank(self, tx: InTransaction, deals: list[tuple[int, int, str]]) -> list[int] | None:
        """Deal ids of (deal_id, merchant_id, category) in listing order, or None to leave it to others."""
        return None


registry: Registry[DealParticipant] = Registry("deal")
