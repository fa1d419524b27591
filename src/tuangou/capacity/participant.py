"""Capacity takes part in publishing: a large promotion needs an approved audit, and the new deal's
caps follow its store's capacity (A1-A3). Installed by the composition roots, never by import."""

from __future__ import annotations

from tuangou.capacity import service
from tuangou.catalog.participants import DealParticipant
from tuangou.core.db import InTransaction


class CapacityOnPublish(DealParticipant):
    name = "capacity.on_publish"

    def on_published(self, tx: InTransaction, deal_id: int) -> None:
        service.on_publish(tx, deal_id)
