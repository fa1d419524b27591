"""Order participants: how capabilities above orders take part in placing and paying.

A participant is an object with a name and up to three parts, each optional:
- `snapshot_columns(deals)` / `order_columns(orders)`: correlated columns added to the one snapshot
  query placing (or paying) makes, so a participant learns what it needs without a query of its own;
- `wants_placing(snapshot, request)` / `wants_paid(order)`: pure, no I/O. False means the participant
  has nothing to do for this order and costs nothing (no statement);
- `on_placing(tx, placing)` / `on_paid(tx, order)`: inside the command's transaction, after the
  capacity hold (or the capture). It may raise a DomainError to refuse; the whole order rolls back.

The composition roots (`create_app`, the worker, the CLI) install the participants explicitly and
in a stated order through `tuangou.composition`; importing a module registers nothing. Placing or
paying before anything was installed is an error, never a silent skip.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement

from tuangou.catalog import rules as catalog_rules
from tuangou.core.db import InTransaction
from tuangou.core.participants import NotComposed
from tuangou.core.participants import Registry as CoreRegistry
from tuangou.orders import rules


@dataclass(frozen=True)
class Placing:
    """An order being placed, as participants see it (the order row exists, its units are held)."""

    order_id: int
    request: rules.OrderRequest
    snapshot: catalog_rules.DealSnapshot
    plan: rules.OrderPlan
    buckets_after: list[catalog_rules.BucketState]
    # what a participant decided for the order besides a discount: {"status": "held"} (risk review)
    outcome: dict[str, Any] = field(default_factory=dict)


class OrderParticipant:
    """Base with nothing to do: a participant overrides what it takes part in."""

    name = "participant"
    # Whether on_paid may move the order on (refund it, change its status): then the pay answer is read
    # back after commit instead of built from the snapshot. A participant that only records (a clock, a
    # count) says False and spares every payment it takes part in that read.
    moves_order_when_paid = True
    # Whether everything on_inserted / on_placing does rolls back with the order. A participant that also
    # acts outside the database (a Redis counter) says False: its orders are never placed in a group, whose
    # failure would run each member again and repeat that act (orders/placing.py, group commit).
    transactional = True

    def snapshot_columns(self, deals: Any) -> dict[str, ColumnElement[Any]]:
        return {}

    def wants_placing(self, snapshot: catalog_rules.DealSnapshot, request: rules.OrderRequest) -> bool:
        return False

    def on_inserted(self, tx: InTransaction, order_id: int, request: rules.OrderRequest,
                    snapshot: catalog_rules.DealSnapshot, outcome: dict[str, Any]) -> None:
        """Right after the order row is inserted, before its units are held: for work that must not lengthen
        the time the deal's bucket rows stay locked (every statement after the hold does, and on PostgreSQL
        that time is what bounds a hot deal's orders per second). May refuse with a DomainError; may note a
        decision in `outcome` ({"status": "held"}), which on_placing then sees as `placing.outcome`."""
        return None

    def on_placing(self, tx: InTransaction, placing: Placing) -> int:
        """Take part; returns a discount in cents off the order's amount (0 for none)."""
        return 0

    def order_columns(self, orders: Any) -> dict[str, ColumnElement[Any]]:
        return {}

    def wants_paid(self, order: rules.OrderSnapshot) -> bool:
        return False

    def on_paid(self, tx: InTransaction, order: rules.OrderSnapshot) -> None:
        return None

    def wants_refund(self, order: rules.OrderSnapshot) -> bool:
        """Vouchers of a paid order are being refunded."""
        return False

    def on_refund(self, tx: InTransaction, order: rules.OrderSnapshot, refunded_before: int,
                  refunded_now: int) -> int:
        """Take back what this participant put in; returns cents of the refund that are not the
        buyer's cash (a coupon's share goes back to the coupon, not to the buyer)."""
        return 0

    def wants_ended(self, order: rules.OrderSnapshot) -> bool:
        """An unpaid order ended (cancelled, expired): give back what on_placing took."""
        return False

    def on_ended(self, tx: InTransaction, order: rules.OrderSnapshot) -> None:
        return None


class Registry(CoreRegistry[OrderParticipant]):
    def snapshot_columns(self, deals: Any) -> dict[str, ColumnElement[Any]]:
        cols: dict[str, ColumnElement[Any]] = {}
        for p in self.items:
            cols.update({f"{p.name}.{k}": v for k, v in p.snapshot_columns(deals).items()})
        return cols

    def order_columns(self, orders: Any) -> dict[str, ColumnElement[Any]]:
        cols: dict[str, ColumnElement[Any]] = {}
        for p in self.items:
            cols.update({f"{p.name}.{k}": v for k, v in p.order_columns(orders).items()})
        return cols


registry = Registry("order")


def extra_of(values: dict[str, Any], participant: str) -> dict[str, Any]:
    """The snapshot columns one participant added, by their own names."""
    prefix = f"{participant}."
    return {k[len(prefix):]: v for k, v in values.items() if k.startswith(prefix)}


__all__ = ["NotComposed", "OrderParticipant", "Placing", "Registry", "extra_of", "registry"]
