"""Group-buy joins and payments as an order participant (B1-B4 on the order path).

Whether a deal carries a campaign, and whether an order is a campaign membership, ride in the
snapshots as correlated columns: an order of an ordinary deal costs campaigns no statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, select

from tuangou.campaigns import service
from tuangou.campaigns.models import Campaign, CampaignMember
from tuangou.catalog import rules as catalog_rules
from tuangou.core.db import InTransaction, table
from tuangou.orders import rules as order_rules
from tuangou.orders.participants import OrderParticipant, Placing, extra_of


@dataclass(frozen=True)
class _Joining:
    id: int
    buyer_id: int
    quantity: int


class CampaignJoin(OrderParticipant):
    name = "campaigns.join"

    def snapshot_columns(self, deals: Any) -> dict[str, ColumnElement[Any]]:
        c = table(Campaign).c
        return {"campaign_id": select(c.id).where(c.deal_id == deals.id).limit(1).scalar_subquery()}

    def wants_placing(self, snapshot: catalog_rules.DealSnapshot, request: order_rules.OrderRequest) -> bool:
        return extra_of(snapshot.extra, self.name).get("campaign_id") is not None

    def on_placing(self, tx: InTransaction, placing: Placing) -> int:
        service.join_for_order(tx, placing.snapshot.id, _Joining(placing.order_id, placing.request.buyer_id,
                                                                 placing.plan.quantity))
        return 0

    def order_columns(self, orders: Any) -> dict[str, ColumnElement[Any]]:
        m = table(CampaignMember).c
        return {"member_id": select(m.id).where(m.order_id == orders.id).limit(1).scalar_subquery()}

    def wants_paid(self, order: order_rules.OrderSnapshot) -> bool:
        return extra_of(order.participant, self.name).get("member_id") is not None

    def on_paid(self, tx: InTransaction, order: order_rules.OrderSnapshot) -> None:
        service.count_paid_member(tx, order.id)

