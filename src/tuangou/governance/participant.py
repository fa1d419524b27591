"""Governance's participants: red-line and sold-out warnings on the order path (A4), and the circuit
breaker when a recomputed cap falls below what is sold (A5).

Red-line and sold-out warnings as an order participant (A4 while selling):

Pure arithmetic on the bucket counters the hold returned decides whether a line was crossed;
only then is anything written, once per (deal, bucket, kind, line) however many orders race."""

from __future__ import annotations

from tuangou.capacity import rules as capacity_rules
from tuangou.capacity import service as capacity
from tuangou.capacity.participants import CapacityParticipant
from tuangou.catalog import rules as catalog_rules
from tuangou.core.db import InTransaction
from tuangou.governance import service
from tuangou.orders import rules as order_rules
from tuangou.orders.participants import OrderParticipant, Placing


class RedLineWarning(OrderParticipant):
    name = "governance.red_line"

    def wants_placing(self, snapshot: catalog_rules.DealSnapshot, request: order_rules.OrderRequest) -> bool:
        return True

    def on_placing(self, tx: InTransaction, placing: Placing) -> int:
        pol: capacity_rules.GovernancePolicy | None = None
        qty = placing.plan.quantity
        for s in placing.buckets_after:
            if s.key == catalog_rules.TOTAL_BUCKET:
                continue
            after = s.sold + s.reserved
            pol = pol or capacity.cached_policy(tx)
            threshold = pol.low_stock_units if s.key == catalog_rules.STOCK_BUCKET else pol.warn_remaining
            line = capacity_rules.red_line_crossed(s.cap, after - qty, after, threshold)
            sold_out = after - qty < s.cap <= after
            if line is not None or sold_out:
                service.warn_crossing(tx, placing.snapshot.id, placing.snapshot.merchant_id,
                                      placing.snapshot.title, s, line, sold_out)
        return 0


class CircuitBreaker(CapacityParticipant):
    """A recomputed cap fell below what is sold: pause that date, move or refund the newest orders, compensate."""

    name = "governance.circuit_breaker"

    def on_cap_below_sold(self, tx: InTransaction, deal_id: int, key: str, cause: str) -> None:
        service.trip_circuit_breaker(tx, deal_id, key, cause)
