"""Capacity participants: who reacts when a recomputed cap falls below what is already sold.

Capacity only computes and applies caps; the circuit breaker (governance) takes part here.
Installed by the composition roots (tuangou/composition.py), never by importing a module.
"""

from __future__ import annotations

from tuangou.core.db import InTransaction
from tuangou.core.participants import Registry


class CapacityParticipant:
    name = "capacity-participant"

    def on_cap_below_sold(self, tx: InTransaction, deal_id: int, key: str, cause: str) -> None:
        return None


registry: Registry[CapacityParticipant] = Registry("capacity")
