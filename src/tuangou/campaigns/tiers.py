"""Price tiers that are charged (B1): members pay the deal's price when they join; the tier the group
reached when entry closed (campaigns.final_price_cents, frozen by close_entry) is the price in the end,
and the difference goes back to each earlier payer through the orders refund path.

Once per member and campaign: the member's `price_settled_at` moves by one conditional UPDATE, and the
refund itself is keyed `tier:{campaign}:{order}` (orders.reprice_in_uow books nothing the second time),
so a rerun or a worker killed between two members refunds nobody twice and leaves nobody out.
"""

from __future__ import annotations

from sqlalchemy import update

from tuangou.campaigns import rules
from tuangou.campaigns.models import Campaign, CampaignMember
from tuangou.campaigns.service import M, campaign_row, each_paid_member
from tuangou.core.db import InTransaction, UnitOfWork
from tuangou.core.money import yuan
from tuangou.core.outbox import record_event
from tuangou.notify import service as notify
from tuangou.orders import service as orders


def refund_key(campaign_id: int, order_id: int) -> str:
    return f"tier:{campaign_id}:{order_id}"


def refund_tier_differences(uow: UnitOfWork, batch: int = 500) -> int:
    """Each paid member of a group whose final tier is below what it paid gets the difference booked
    back, one transaction each; returns how many members were settled."""
    return each_paid_member(uow, [Campaign.final_price_cents.is_not(None), Campaign.status.notin_(rules.DEAD),
                                  CampaignMember.price_settled_at.is_(None)], settle_member_price, batch)


def settle_member_price(uow: InTransaction, member_id: int) -> bool:
    """Inside an open unit of work: bring one member down to the final tier; False if done before."""
    settled = uow.session.execute(update(CampaignMember).where(
        CampaignMember.id == member_id, CampaignMember.status == M.PAID,
        CampaignMember.price_settled_at.is_(None)).values(price_settled_at=uow.now)).rowcount  # type: ignore[attr-defined]
    if not settled:
        return False
    member = uow.session.get(CampaignMember, member_id)
    assert member is not None
    camp = campaign_row(uow, member.campaign_id)
    if camp.final_price_cents is None or camp.status in rules.DEAD:
        return True  # a group called off refunds everything instead
    reason = f"group-buy #{camp.id} formed at {yuan(camp.final_price_cents)} a unit: the difference is refunded"
    amount = orders.reprice_in_uow(uow, member.order_id, camp.final_price_cents,
                                   refund_key(camp.id, member.order_id), reason)
    if amount:
        record_event(uow.session, "CampaignTierRefunded", {"campaign_id": camp.id, "order_id": member.order_id,
                                                           "buyer_id": member.buyer_id, "amount_cents": amount,
                                                           "final_price_cents": camp.final_price_cents},
                     uow.now, merchant_id=camp.merchant_id)
        notify.notify_user(uow, member.buyer_id, "campaign_tier_refund",
                           f"{camp.title}: the group reached {yuan(camp.final_price_cents)}, {yuan(amount)} back",
                           reason, {"campaign_id": camp.id, "order_id": member.order_id, "amount_cents": amount})
    return True
