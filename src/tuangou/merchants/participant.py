"""Merchant standing on the order path and on the listings (A8, A9).

`IntakeCap` is the merchant intake cap as an order participant (A8 traffic limits on the order path).
It counts orders that stand: a reservation takes a unit (one guarded upsert) and records which order took
it; when the reservation ends unpaid (expired, cancelled) the unit comes back (docs/adr/0017).

The merchant's standing and the accountability policy ride in the placing snapshot as two
correlated columns, so deciding whether the cap applies costs no query; a merchant without a
cap (the default while not limited) costs no statement at all.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, bindparam, delete, insert, select, update

from tuangou.catalog import rules as catalog_rules
from tuangou.catalog.participants import DealParticipant
from tuangou.core.clock import local_date
from tuangou.core.db import InTransaction, table, upsert_add
from tuangou.core.errors import Conflict
from tuangou.core.policy import PolicyRecord
from tuangou.merchants import deposits, rules, service
from tuangou.merchants.models import IntakeCounter, IntakeHold, MerchantStanding
from tuangou.orders import rules as order_rules
from tuangou.orders.participants import OrderParticipant, Placing, extra_of

POLICY = "accountability"


class IntakeCap(OrderParticipant):
    name = "merchants.intake"

    def __init__(self) -> None:
        self._parsed: tuple[Any, rules.AccountabilityPolicy] = (None, rules.AccountabilityPolicy())

    def _policy(self, raw: Any) -> rules.AccountabilityPolicy:
        if raw != self._parsed[0]:  # parse only when the stored policy changed
            self._parsed = (raw, rules.AccountabilityPolicy.from_dict(raw) if raw is not None
                            else rules.AccountabilityPolicy())
        return self._parsed[1]

    def snapshot_columns(self, deals: Any) -> dict[str, ColumnElement[Any]]:
        standing = table(MerchantStanding).c
        return {"limited": select(standing.limited).where(standing.merchant_id == deals.merchant_id)
                .scalar_subquery(),
                "lift_at": select(standing.lift_at).where(standing.merchant_id == deals.merchant_id)
                .scalar_subquery(),
                "policy": select(table(PolicyRecord).c.data).where(table(PolicyRecord).c.name == POLICY)
                .scalar_subquery()}

    def cap(self, snapshot: catalog_rules.DealSnapshot, now: Any) -> int | None:
        seen = extra_of(snapshot.extra, self.name)
        lift_at = seen.get("lift_at")
        if isinstance(lift_at, str):  # a scalar subquery loses the column type on SQLite
            lift_at = _parse_time(lift_at)
        limited = bool(seen.get("limited")) and rules.is_limited(True, lift_at, now)
        return rules.daily_intake_cap(limited, self._policy(seen.get("policy")))

    def wants_placing(self, snapshot: catalog_rules.DealSnapshot, request: order_rules.OrderRequest) -> bool:
        return True  # the cap depends on `now`; on_placing returns at once when there is none

    def on_placing(self, tx: InTransaction, placing: Placing) -> int:
        cap = self.cap(placing.snapshot, tx.now)
        if cap is None:
            return 0
        refused = Conflict(f"this merchant may take at most {cap} orders a day for now", code="intake_limit",
                           cap=cap)
        if cap <= 0:
            raise refused
        snap = placing.snapshot
        day = local_date(tx.now, snap.timezone)
        if not upsert_add(tx.conn, table(IntakeCounter), {"merchant_id": snap.merchant_id, "day": day,
                          "orders": 1}, ["merchant_id", "day"], "orders", cap):
            raise refused
        # which order holds the unit: the release below gives back exactly what was taken
        tx.conn.execute(_HOLD, {"order_id": placing.order_id, "merchant_id": snap.merchant_id, "day": day})
        return 0

    def wants_ended(self, order: order_rules.OrderSnapshot) -> bool:
        return True  # whether it took a unit is in merchant_intake_holds; one keyed DELETE finds out

    def on_ended(self, tx: InTransaction, order: order_rules.OrderSnapshot) -> None:
        """An unpaid order ended: its unit returns. The DELETE .. RETURNING is the guard, so processing
        the same end twice (a retried tick, two workers) returns the unit once."""
        released = tx.conn.execute(_RELEASE, {"order_id": order.id}).first()
        if released is not None:
            tx.conn.execute(_GIVE_BACK, {"m": released.merchant_id, "d": released.day})


_holds, _counters = table(IntakeHold), table(IntakeCounter)
_HOLD = insert(_holds)
_RELEASE = delete(_holds).where(_holds.c.order_id == bindparam("order_id")).returning(_holds.c.merchant_id,
                                                                                       _holds.c.day)
_GIVE_BACK = update(_counters).where(_counters.c.merchant_id == bindparam("m"),
                                     _counters.c.day == bindparam("d"),
                                     _counters.c.orders > 0).values(orders=_counters.c.orders - 1)


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class StandingOnDeals(DealParticipant):
    """Suspended merchants (and promotion bans) cannot publish, nor can a merchant whose deposit is below
    the category's minimum (C7); listings follow merchant scores (A8)."""

    name = "merchants.standing"

    def check_publish(self, tx: InTransaction, deal_id: int, merchant_id: int, large_promotion: bool) -> None:
        service.check_may_publish(tx, merchant_id, large_promotion)
        deposits.check_deposit(tx, deal_id, merchant_id)

    def rank(self, tx: InTransaction, deals: list[tuple[int, int, str]]) -> list[int] | None:
        return service.rank_deals(tx, deals)
