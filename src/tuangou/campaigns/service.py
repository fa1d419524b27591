"""Group-buy campaigns (成团): joining through the orders hot path, threshold, deadline, purchase lists.

A campaign sells through one goods deal: joining is placing (and then paying) an order of that deal,
and the orders capability calls back here inside its own transactions (the campaigns order
participant, campaigns/participant.py, installed by the composition roots). Every counter and state change is a conditional UPDATE; failures refund through
orders.refund_in_uow, whose refund job retries each refund until the gateway pays it.
Lock order everywhere: member row, then campaign row, then stock pool.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, select, update
from sqlalchemy.exc import IntegrityError

from tuangou.accounts import service as accounts
from tuangou.campaigns import pools, rules
from tuangou.campaigns.models import Campaign, CampaignMember, PurchaseList
from tuangou.catalog import rules as catalog_rules
from tuangou.catalog import service as catalog
from tuangou.core import ledger
from tuangou.core import policy as core_policy
from tuangou.core.auth import Principal, Role
from tuangou.core.db import InTransaction, UnitOfWork, insert_ignore, table
from tuangou.core.errors import Conflict, NotFound, ValidationFailed
from tuangou.core.outbox import record_event
from tuangou.notify import service as notify
from tuangou.orders import service as orders

S = rules.CampaignStatus
M = rules.MemberStatus


def leader_account(leader_id: int) -> str:
    return f"leader:{leader_id}"


# ---- policy -------------------------------------------------------------------------------------

POLICY_NAME = "campaigns"


def policy(uow: InTransaction) -> rules.CampaignPolicy:
    """Inside an open unit of work: the campaign policy ops set, or the seed defaults."""
    stored = core_policy.load(uow.session, POLICY_NAME)
    return rules.CampaignPolicy.from_dict(stored) if stored is not None else rules.CampaignPolicy()


def get_policy(uow: UnitOfWork) -> dict[str, Any]:
    with uow:
        return policy(uow).as_dict()


def set_policy(uow: UnitOfWork, actor: Principal, changes: dict[str, Any], reason: str) -> dict[str, Any]:
    actor.require(Role.OPS)
    if not reason.strip():
        raise ValidationFailed("a reason is required", code="reason_required")
    with uow:
        new = rules.CampaignPolicy.from_dict({**policy(uow).as_dict(), **changes})
        problems = rules.policy_problems(new)
        if problems:
            raise ValidationFailed("; ".join(problems))
        core_policy.store(uow, actor, POLICY_NAME, new.as_dict(), reason, changes, action="set_campaign_policy",
                          target="campaign_policy:default")
        uow.commit()
        return new.as_dict()


# ---- creating -----------------------------------------------------------------------------------

def create_campaign(uow: UnitOfWork, actor: Principal, *, deal_id: int, threshold: int, max_size: int,
                    deadline: datetime, delivery_at: datetime, pickup_point: str, leader_id: int | None = None,
                    supplier_id: int | None = None, close_on_threshold: bool = True,
                    logistics_prep_hours: int | None = None, cold_chain: bool = False,
                    pool_id: int | None = None, leader_commission_cents: int | None = None,
                    price_tiers: list[tuple[int, int]] | None = None) -> dict[str, Any]:
    """A merchant opens a group-buy on one of its goods deals."""
    actor.require(Role.MERCHANT, Role.OPS)
    with uow:
        ctx = catalog.deal_context(uow, deal_id)
        actor.require_merchant(ctx.merchant_id)
        pol = policy(uow)
        cutoff = rules.order_cutoff(delivery_at, pol.logistics_prep_hours if logistics_prep_hours is None
                                    else logistics_prep_hours)
        problems = rules.campaign_terms_problems(threshold, max_size, uow.now, deadline, delivery_at, cutoff)
        problems += rules.tiers_problems(price_tiers or [], ctx.price_cents, max_size)
        if ctx.kind != catalog_rules.DealKind.GOODS:
            problems.append("a campaign sells a goods deal")
        if leader_id is not None and leader_id not in accounts.user_ids_with_role(uow, Role.LEADER):
            problems.append(f"user {leader_id} is not a group leader")
        if supplier_id is not None and supplier_id not in accounts.user_ids_with_role(uow, Role.SUPPLIER):
            problems.append(f"user {supplier_id} is not a supplier")
        if problems:
            raise ValidationFailed("; ".join(problems))
        if pool_id is not None:
            pools.own_pool(uow, Principal(actor.user_id, Role.MERCHANT, ctx.merchant_id), pool_id)
        # a group-buy is a promotion and a listing: promotion bans, listing suspensions and deposits apply (C7)
        catalog.check_may_list(uow, deal_id, ctx.merchant_id, large_promotion=True)
        camp = Campaign(merchant_id=ctx.merchant_id, deal_id=deal_id, title=ctx.title,
                        pickup_point=pickup_point.strip(), leader_id=leader_id, supplier_id=supplier_id,
                        pool_id=pool_id, threshold=threshold, max_size=max_size,
                        close_on_threshold=close_on_threshold, price_tiers=[list(t) for t in price_tiers or []],
                        leader_commission_cents=(pol.leader_commission_cents if leader_commission_cents is None
                                                 else leader_commission_cents) if leader_id else 0,
                        deadline=deadline, delivery_at=delivery_at, cutoff_at=cutoff, cold_chain=cold_chain,
                        status=S.OPEN, joined_count=0, paid_count=0, created_at=uow.now)
        uow.session.add(camp)
        try:
            uow.session.flush()
        except IntegrityError as exc:
            raise Conflict(f"deal {deal_id} already backs a campaign", code="deal_in_campaign") from exc
        record_event(uow.session, "CampaignOpened", {"campaign_id": camp.id, "deal_id": deal_id,
                                                     "threshold": threshold, "max_size": max_size},
                     uow.now, merchant_id=camp.merchant_id)
        if leader_id:
            notify.notify_user(uow, leader_id, "campaign_led", f"You lead group-buy #{camp.id}: {camp.title}",
                               f"Pick-up point: {camp.pickup_point}", {"campaign_id": camp.id})
        uow.commit()
        return view(uow, camp)


# ---- joining: called by orders inside the placing transaction --------------------------------------

def join_campaign(uow: UnitOfWork, buyer: Principal, campaign_id: int, quantity: int, idempotency_key: str,
                  ttl_minutes: int = 15) -> tuple[dict[str, Any], bool]:
    """A buyer joins: an order of the campaign's deal is reserved; pay it with POST /orders/{id}/pay."""
    with uow:
        camp = campaign_row(uow, campaign_id)
        deal_id = camp.deal_id
    order, replayed = orders.place_order(uow, buyer, deal_id, quantity, idempotency_key, ttl_minutes=ttl_minutes)
    with uow:
        return {"order": order.__dict__, "campaign": view(uow, campaign_row(uow, campaign_id))}, replayed


def join_for_order(uow: InTransaction, deal_id: int, order: Any) -> None:
    """Inside the placing unit of work (the campaigns order participant): the order joins the deal's
    group-buy, atomically never past its maximum, or is refused with the reason."""
    camp = uow.session.scalar(select(Campaign).where(Campaign.deal_id == deal_id))
    if camp is None:
        return
    _claim_membership(uow, camp, order)
    moved = uow.session.execute(
        update(Campaign).where(Campaign.id == camp.id,
                               Campaign.status.in_(rules.joinable_statuses(camp.close_on_threshold)),
                               Campaign.entry_closed_at.is_(None),
                               Campaign.joined_count + 1 <= Campaign.max_size,
                               Campaign.deadline > uow.now, Campaign.cutoff_at > uow.now)
        .values(joined_count=Campaign.joined_count + 1,
                status=case((Campaign.status == S.OPEN, S.COLLECTING.value), else_=Campaign.status))
    ).rowcount  # type: ignore[attr-defined]
    if not moved:
        uow.session.refresh(camp)
        why = rules.join_refusal(camp.status, uow.now, camp.deadline, camp.cutoff_at, camp.joined_count,
                                 camp.max_size, camp.close_on_threshold, camp.entry_closed_at is not None)
        code, message = why or ("campaign_closed", "entry is closed")
        raise Conflict(message, code=code)
    if camp.pool_id is not None:
        pools.draw(uow, camp.pool_id, order.quantity, policy(uow))
    record_event(uow.session, "CampaignJoined", {"campaign_id": camp.id, "order_id": order.id,
                                                 "buyer_id": order.buyer_id}, uow.now, merchant_id=camp.merchant_id)


def _claim_membership(uow: InTransaction, camp: Campaign, order: Any) -> None:
    """One membership per buyer and campaign: insert-if-absent, or take over a lapsed one atomically."""
    values = {"campaign_id": camp.id, "buyer_id": order.buyer_id, "order_id": order.id,
              "quantity": order.quantity, "status": M.RESERVED.value, "joined_at": uow.now}
    if insert_ignore(uow.session, CampaignMember.__table__, values, ["campaign_id", "buyer_id"]):
        return
    member = uow.session.scalar(select(CampaignMember).where(CampaignMember.campaign_id == camp.id,
                                                             CampaignMember.buyer_id == order.buyer_id))
    assert member is not None
    if member.status == M.RESERVED and orders.order_facts(uow, member.order_id)["status"] in ("expired",
                                                                                              "cancelled"):
        lapse_member(uow, member.id)
    taken = uow.session.execute(update(CampaignMember).where(CampaignMember.id == member.id,
                                                             CampaignMember.status == M.LAPSED)
                                .values(order_id=order.id, quantity=order.quantity, status=M.RESERVED,
                                        joined_at=uow.now, paid_at=None, ended_at=None)).rowcount  # type: ignore[attr-defined]
    if not taken:
        raise Conflict("you have already joined this group-buy", code="already_joined")


def lapse_member(uow: InTransaction, member_id: int, was: M = M.RESERVED) -> bool:
    """Inside an open unit of work: a join ended (unpaid, or refunded by the buyer); its place
    (and pool units) go back."""
    member = uow.session.get(CampaignMember, member_id)
    assert member is not None
    moved = uow.session.execute(update(CampaignMember).where(CampaignMember.id == member_id,
                                                             CampaignMember.status == was)
                                .values(status=M.LAPSED, ended_at=uow.now)).rowcount  # type: ignore[attr-defined]
    if not moved:
        return False
    paid_delta = 1 if was == M.PAID else 0
    uow.session.execute(update(Campaign).where(Campaign.id == member.campaign_id)
                        .values(joined_count=Campaign.joined_count - 1, paid_count=Campaign.paid_count - paid_delta))
    camp = uow.session.get(Campaign, member.campaign_id)
    assert camp is not None
    if camp.pool_id is not None:
        pools.give_back(uow, camp.pool_id, member.quantity, policy(uow))
    return True


# ---- paying: called by orders inside the capturing transaction -------------------------------------

def count_paid_member(uow: InTransaction, order_id: int) -> None:
    """Inside the paying unit of work (the campaigns order participant): a member paid; the group
    forms at its threshold, closes when full, or refunds a payment that came too late."""
    member = uow.session.scalar(select(CampaignMember).where(CampaignMember.order_id == order_id))
    if member is None:
        return
    camp = uow.session.scalar(select(Campaign).where(Campaign.id == member.campaign_id).with_for_update()
                              .execution_options(populate_existing=True))
    assert camp is not None
    if camp.status in rules.DEAD or camp.entry_closed_at is not None:
        why = {S.FAILED: "the group-buy failed", S.REFUNDED: "the group-buy failed",
               S.CANCELLED: "the group-buy was called off"}.get(S(camp.status), "the group closed before your payment")
        refunded = refund_member_cents(uow, camp, member.id, why, expect=M.RESERVED)
        if refunded is not None:  # the money goes straight back, and the payer is told why (409)
            orders.refuse_payment(uow, order_id, "campaign_entry_closed",
                                  f"group-buy #{camp.id}: entry closed before this payment ({why}); "
                                  "it is refunded", refunded)
        return
    paid = uow.session.execute(update(CampaignMember).where(CampaignMember.id == member.id,
                                                            CampaignMember.status == M.RESERVED)
                               .values(status=M.PAID, paid_at=uow.now)).rowcount  # type: ignore[attr-defined]
    if not paid:
        return
    uow.session.execute(update(Campaign).where(Campaign.id == camp.id).values(paid_count=Campaign.paid_count + 1))
    formed = uow.session.execute(update(Campaign).where(
        Campaign.id == camp.id, Campaign.status.in_(rules.JOINABLE), Campaign.paid_count >= Campaign.threshold,
        Campaign.deadline > uow.now).values(status=S.FORMED, formed_at=uow.now)).rowcount  # type: ignore[attr-defined]
    uow.session.refresh(camp)
    if formed:
        _on_formed(uow, camp)
    if camp.status == S.FORMED and (camp.close_on_threshold or camp.paid_count >= camp.max_size):
        close_entry(uow, camp.id)


def _on_formed(uow: InTransaction, camp: Campaign) -> None:
    if camp.leader_id and camp.leader_commission_cents > 0:
        ledger.post(uow.session, "leader_commission", [(ledger.REVENUE, -camp.leader_commission_cents),
                                                       (leader_account(camp.leader_id),
                                                        camp.leader_commission_cents)],
                    uow.now, ref=f"campaign:{camp.id}")
        notify.notify_user(uow, camp.leader_id, "leader_commission", f"Group #{camp.id} formed: commission booked",
                           "", {"campaign_id": camp.id, "amount_cents": camp.leader_commission_cents})
    record_event(uow.session, "CampaignFormed", {"campaign_id": camp.id, "participants": camp.paid_count},
                 uow.now, merchant_id=camp.merchant_id)
    for buyer_id in _member_buyers(uow, camp.id, M.PAID):
        notify.notify_user(uow, buyer_id, "campaign_formed", f"Your group-buy {camp.title} is formed (成团)", "",
                           {"campaign_id": camp.id})


def close_entry(uow: InTransaction, campaign_id: int) -> bool:
    """Inside an open unit of work: entry closes and exactly one purchase list goes to the supplier."""
    closed = uow.session.execute(update(Campaign).where(Campaign.id == campaign_id,
                                                        Campaign.entry_closed_at.is_(None),
                                                        Campaign.status == S.FORMED)
                                 .values(entry_closed_at=uow.now)).rowcount  # type: ignore[attr-defined]
    if not closed:
        return False
    camp = uow.session.get(Campaign, campaign_id)
    assert camp is not None
    uow.session.refresh(camp)
    if camp.price_tiers:  # the tier reached now is the price: members paid the deal's price, the job refunds the rest
        tiers = [(int(size), int(price)) for size, price in camp.price_tiers]
        final = rules.tier_price(tiers, camp.paid_count, int(catalog.deal_facts(uow, camp.deal_id)["price_cents"]))
        uow.session.execute(update(Campaign).where(Campaign.id == campaign_id, Campaign.final_price_cents.is_(None))
                            .values(final_price_cents=final))
    members = uow.session.scalars(select(CampaignMember).where(CampaignMember.campaign_id == campaign_id,
                                                               CampaignMember.status == M.PAID))
    lines = rules.purchase_lines([(camp.title, camp.pickup_point, m.quantity) for m in members])
    if not insert_ignore(uow.session, PurchaseList.__table__, {
            "campaign_id": campaign_id, "merchant_id": camp.merchant_id, "supplier_id": camp.supplier_id,
            "lines": lines, "created_at": uow.now}, ["campaign_id"]):
        return False
    payload = {"campaign_id": campaign_id, "supplier_id": camp.supplier_id, "lines": lines,
               "delivery_at": camp.delivery_at.isoformat(), "cutoff_at": camp.cutoff_at.isoformat()}
    record_event(uow.session, "PurchaseListGenerated", payload, uow.now, merchant_id=camp.merchant_id)
    title = f"Purchase list for group-buy #{campaign_id}: {sum(line['quantity'] for line in lines)} units"
    if camp.supplier_id:
        notify.notify_user(uow, camp.supplier_id, "purchase_list", title, "", payload)
    notify.notify_merchant(uow, camp.merchant_id, "purchase_list", title, "", payload)
    return True


def refund_member(uow: InTransaction, camp: Campaign, member_id: int, why: str, *, expect: M) -> bool:
    """Inside an open unit of work: book the member's full refund once (the orders job pays it out)."""
    return refund_member_cents(uow, camp, member_id, why, expect=expect) is not None


def refund_member_cents(uow: InTransaction, camp: Campaign, member_id: int, why: str, *, expect: M) -> int | None:
    """refund_member, answering the cents booked back (None: the member had moved on, nothing done)."""
    member = uow.session.get(CampaignMember, member_id)
    assert member is not None
    moved = uow.session.execute(update(CampaignMember).where(CampaignMember.id == member_id,
                                                             CampaignMember.status == expect)
                                .values(status=M.REFUNDED, ended_at=uow.now)).rowcount  # type: ignore[attr-defined]
    if not moved:
        return None
    amount = 0
    if orders.order_facts(uow, member.order_id)["status"] == "paid":
        amount = orders.refund_in_uow(uow, member.order_id, None, f"group-buy #{camp.id}: {why}")
    if camp.pool_id is not None:
        pools.give_back(uow, camp.pool_id, member.quantity, policy(uow))
    record_event(uow.session, "CampaignRefundBooked", {"campaign_id": camp.id, "order_id": member.order_id,
                                                       "buyer_id": member.buyer_id}, uow.now,
                 merchant_id=camp.merchant_id)
    return amount


def _member_buyers(uow: InTransaction, campaign_id: int, status: M) -> list[int]:
    return list(uow.session.scalars(select(CampaignMember.buyer_id).where(
        CampaignMember.campaign_id == campaign_id, CampaignMember.status == status)))


def delivery_due(uow: UnitOfWork, deal_id: int) -> datetime | None:
    """Inside an open unit of work: when the group-buy on this deal promised delivery (None: no group-buy).
    Logistics gives a group-buy's lines until then to ship."""
    return uow.session.scalar(select(Campaign.delivery_at).where(Campaign.deal_id == deal_id))


def delivery_at_column(deal_id: Any) -> ColumnElement[Any]:
    """`delivery_due` as a correlated column for another capability's snapshot query (no statement)."""
    c = table(Campaign).c
    return select(c.delivery_at).where(c.deal_id == deal_id).limit(1).scalar_subquery()


def campaign_row(uow: InTransaction, campaign_id: int) -> Campaign:
    camp = uow.session.get(Campaign, campaign_id)
    if camp is None:
        raise NotFound(f"campaign {campaign_id} not found")
    return camp


def stage_due(c: Campaign, pol: rules.CampaignPolicy) -> datetime | None:
    """When the owner of the next stage must have moved the campaign on (None: no SLA running)."""
    entered = {S.FORMED: c.formed_at, S.PROCURING: c.procuring_at, S.SHIPPING: c.shipping_at,
               S.DELIVERED: c.delivered_at}.get(S(c.status))
    return rules.stage_due(entered, c.status, pol)


def view(uow: UnitOfWork, c: Campaign) -> dict[str, Any]:
    """Inside an open unit of work: a campaign with its countdown for the buyer page."""
    pol = policy(uow)
    ctx = catalog.deal_context(uow, c.deal_id)
    tiers = [(int(s), int(p)) for s, p in c.price_tiers or []]
    iso = {k: (v.isoformat() if v else None) for k, v in {
        "deadline": c.deadline, "delivery_at": c.delivery_at, "cutoff_at": c.cutoff_at,
        "created_at": c.created_at, "formed_at": c.formed_at, "procuring_at": c.procuring_at,
        "shipping_at": c.shipping_at, "delivered_at": c.delivered_at, "closed_at": c.closed_at,
        "failed_at": c.failed_at, "refunded_at": c.refunded_at, "entry_closed_at": c.entry_closed_at,
        "cancelled_at": c.cancelled_at,
        "cold_chain_booked_at": c.cold_chain_booked_at}.items()}
    due = stage_due(c, pol)
    return {"id": c.id, "merchant_id": c.merchant_id, "deal_id": c.deal_id, "title": c.title,
            "pickup_point": c.pickup_point, "leader_id": c.leader_id, "supplier_id": c.supplier_id,
            "pool_id": c.pool_id, "sla_missed": c.sla_alerted_for == c.status, "threshold": c.threshold, "max_size": c.max_size,
            "close_on_threshold": c.close_on_threshold, "status": c.status, "joined_count": c.joined_count,
            "paid_count": c.paid_count, "price_cents": ctx.price_cents, "price_tiers": [list(t) for t in tiers],
            "current_tier_price_cents": rules.tier_price(tiers, c.paid_count, ctx.price_cents),
            "final_price_cents": c.final_price_cents, "cancel_reason": c.cancel_reason or None,
            "responsible_party": c.responsible_party or None,
            "leader_commission_cents": c.leader_commission_cents, "cold_chain": c.cold_chain,
            "cold_chain_book_by": rules.cold_chain_book_by(c.delivery_at, pol.cold_chain_lead_hours).isoformat()
            if c.cold_chain else None, "next_stage_due_at": due.isoformat() if due else None,
            "countdown": rules.countdown(uow.now, c.deadline, c.cutoff_at, c.joined_count, c.paid_count,
                                         c.threshold, c.max_size), **iso}


def each_paid_member(uow: UnitOfWork, where: list[ColumnElement[bool]], step: Callable[[InTransaction, int], bool],
                     batch: int) -> int:
    """The jobs that settle a group member by member (failure refunds, tier differences, called-off groups):
    up to `batch` paid members matching `where` (members joined to their campaign), oldest first, each in a
    unit of work of its own so that a worker killed between two members loses nothing. `step` must be safe
    to run twice (it returns False when the member was settled before); returns how many steps did something."""
    with uow:
        ids = list(uow.session.scalars(
            select(CampaignMember.id).join(Campaign, Campaign.id == CampaignMember.campaign_id)
            .where(CampaignMember.status == M.PAID, *where).order_by(CampaignMember.id).limit(batch)))
    n = 0
    for member_id in ids:
        with uow:
            n += step(uow, member_id)
            uow.commit()
    return n
