"""A paused business line (B5 red level) takes no orders: an order participant.

The check reads this process's copy of the paused lines (at most a second old, no query while no
line is paused, the usual case); only when a line is paused is the deal's line looked up."""

from __future__ import annotations

from tuangou.catalog import rules as catalog_rules
from tuangou.catalog.participants import DealParticipant
from tuangou.core.db import InTransaction
from tuangou.monitoring import service
from tuangou.orders import rules as order_rules
from tuangou.orders.participants import OrderParticipant, Placing


class LinePause(OrderParticipant):
    name = "monitoring.line_pause"

    def wants_placing(self, snapshot: catalog_rules.DealSnapshot, request: order_rules.OrderRequest) -> bool:
        return True

    def on_placing(self, tx: InTransaction, placing: Placing) -> int:
        service.refuse_if_line_paused(tx, placing.snapshot.id)
        return 0


class LinePauseOnPublish(DealParticipant):
    """No new listings in a paused business line either."""

    name = "monitoring.line_pause_listings"

    def check_publish(self, tx: InTransaction, deal_id: int, merchant_id: int, large_promotion: bool) -> None:
        service.refuse_if_line_paused(tx, deal_id)
