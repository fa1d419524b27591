"""The campaign after joining: deadlines, failure refunds, stages with owners, cold chain, reads.

Job steps scan for work and move each item with a conditional UPDATE in its own transaction, so a
worker killed anywhere leaves nothing half done that the next run would not finish.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select, update

from tuangou.campaigns import rules
from tuangou.campaigns.models import Campaign, CampaignMember, PurchaseList
from tuangou.campaigns.service import (
    M,
    S,
    campaign_row,
    close_entry,
    each_paid_member,
    lapse_member,
    leader_account,
    policy,
    refund_member,
    stage_due,
    view,
)
from tuangou.core import ledger
from tuangou.core.audit import record_audit
from tuangou.core.auth import Principal, Role
from tuangou.core.db import InTransaction, UnitOfWork
from tuangou.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from tuangou.core.outbox import record_event
from tuangou.notify import service as notify
from tuangou.orders import service as orders

STAGE_COLUMN = {S.PROCURING: "procuring_at", S.SHIPPING: "shipping_at", S.DELIVERED: "delivered_at",
                S.CLOSED: "closed_at"}


# ---- jobs ---------------------------------------------------------------------------------------

def lapse_abandoned(uow: UnitOfWork, batch: int = 500) -> int:
    """Joins whose order expired or was cancelled (or, while the group collects, was refunded by the
    buyer) give their place back."""
    with uow:
        # oldest joins first: reservations expire in the order they were made, so each batch makes progress
        q = (select(CampaignMember.id, CampaignMember.order_id, CampaignMember.status)
             .join(Campaign, Campaign.id == CampaignMember.campaign_id)
             .order_by(CampaignMember.joined_at, CampaignMember.id).limit(batch))
        rows = [*uow.session.execute(q.where(CampaignMember.status == M.RESERVED)),
                *uow.session.execute(q.where(CampaignMember.status == M.PAID,
                                             Campaign.status.in_((*rules.JOINABLE, S.FORMED))))]
        ended = [(mid, status) for mid, oid, status in rows
                 if orders.order_facts(uow, oid)["status"] in rules.ENDED_ORDER[status]]
    n = 0
    for member_id, status in ended:
        with uow:
            n += lapse_member(uow, member_id, M(status))
            uow.commit()
    return n


def fail_expired(uow: UnitOfWork) -> int:
    """Deadline passed below the threshold: the group fails (its refunds are booked next)."""
    with uow:
        ids = list(uow.session.scalars(select(Campaign.id).where(Campaign.status.in_(rules.JOINABLE),
                                                                 Campaign.deadline <= uow.now)))
    n = 0
    for cid in ids:
        with uow:
            moved = uow.session.execute(update(Campaign).where(
                Campaign.id == cid, Campaign.status.in_(rules.JOINABLE), Campaign.deadline <= uow.now)
                .values(status=S.FAILED, failed_at=uow.now, entry_closed_at=uow.now)).rowcount  # type: ignore[attr-defined]
            if moved:
                camp = campaign_row(uow, cid)
                record_event(uow.session, "CampaignFailed", {"campaign_id": cid, "participants": camp.paid_count,
                                                             "threshold": camp.threshold}, uow.now,
                             merchant_id=camp.merchant_id)
                notify.notify_merchant(uow, camp.merchant_id, "campaign_failed",
                                       f"Group-buy #{cid} failed: {camp.paid_count} of {camp.threshold}",
                                       "Every participant is refunded automatically.", {"campaign_id": cid})
                for buyer_id in uow.session.scalars(select(CampaignMember.buyer_id).where(
                        CampaignMember.campaign_id == cid, CampaignMember.status.in_((M.PAID, M.RESERVED)))):
                    notify.notify_user(uow, buyer_id, "campaign_failed", f"Group-buy {camp.title} did not form",
                                       "Your payment is being refunded in full.", {"campaign_id": cid})
                n += 1
            uow.commit()
    return n


def book_failure_refunds(uow: UnitOfWork, batch: int = 500) -> int:
    """Every paid participant of a failed group gets a refund booked, once, one transaction each."""
    return each_paid_member(uow, [Campaign.status == S.FAILED], _refund_failed, batch)


def _refund_failed(uow: InTransaction, member_id: int) -> bool:
    member = uow.session.get(CampaignMember, member_id)
    assert member is not None
    return refund_member(uow, campaign_row(uow, member.campaign_id), member_id,
                         "the group did not reach its threshold by the deadline", expect=M.PAID)


def finish_refunds(uow: UnitOfWork) -> int:
    """failed -> refunded once the gateway has paid back every participant."""
    n = 0
    with uow:
        ids = list(uow.session.scalars(select(Campaign.id).where(Campaign.status == S.FAILED)))
    for cid in ids:
        with uow:
            members = list(uow.session.scalars(select(CampaignMember).where(CampaignMember.campaign_id == cid)))
            if any(m.status in (M.PAID, M.RESERVED) for m in members):
                continue
            if orders.open_refund_count(uow, [m.order_id for m in members if m.status == M.REFUNDED]):
                continue
            if uow.session.execute(update(Campaign).where(Campaign.id == cid, Campaign.status == S.FAILED)
                                   .values(status=S.REFUNDED, refunded_at=uow.now)).rowcount:  # type: ignore[attr-defined]
                camp = campaign_row(uow, cid)
                record_event(uow.session, "CampaignRefunded", {"campaign_id": cid}, uow.now,
                             merchant_id=camp.merchant_id)
                n += 1
            uow.commit()
    return n


def close_due_entries(uow: UnitOfWork) -> int:
    """Formed groups that stayed open up to the maximum close at their deadline or cut-off."""
    with uow:
        ids = list(uow.session.scalars(select(Campaign.id).where(
            Campaign.status == S.FORMED, Campaign.entry_closed_at.is_(None),
            or_(Campaign.deadline <= uow.now, Campaign.cutoff_at <= uow.now))))
    n = 0
    for cid in ids:
        with uow:
            n += close_entry(uow, cid)
            uow.commit()
    return n


def alert_cold_chain(uow: UnitOfWork) -> int:
    """A cold-chain campaign not booked by delivery − lead time alerts its owner and ops, once."""
    with uow:
        pol = policy(uow)
        candidates = list(uow.session.scalars(select(Campaign).where(
            Campaign.cold_chain, Campaign.cold_chain_booked_at.is_(None), Campaign.cold_chain_alerted_at.is_(None),
            Campaign.status.notin_((*rules.DEAD, S.DELIVERED, S.CLOSED)))))
        due = [c.id for c in candidates if rules.cold_chain_alert_due(uow.now, c.delivery_at, True, False,
                                                                      pol.cold_chain_lead_hours)]
    for cid in due:
        with uow:
            if uow.session.execute(update(Campaign).where(Campaign.id == cid,
                                                          Campaign.cold_chain_alerted_at.is_(None),
                                                          Campaign.cold_chain_booked_at.is_(None))
                                   .values(cold_chain_alerted_at=uow.now)).rowcount:  # type: ignore[attr-defined]
                camp = campaign_row(uow, cid)
                title = f"Group-buy #{cid}: cold chain not booked {pol.cold_chain_lead_hours} h before delivery"
                data = {"campaign_id": cid, "delivery_at": camp.delivery_at.isoformat()}
                notify.notify_merchant(uow, camp.merchant_id, "cold_chain_unbooked", title, "", data, "critical")
                notify.notify_ops(uow, "cold_chain_unbooked", title, "", data, "critical")
                record_event(uow.session, "ColdChainUnbooked", data, uow.now, merchant_id=camp.merchant_id)
            uow.commit()
    return len(due)


def alert_overdue_stages(uow: UnitOfWork) -> int:
    """A stage whose owner missed its SLA alerts the owners and ops, once per stage."""
    with uow:
        pol = policy(uow)
        late = [c.id for c in uow.session.scalars(select(Campaign).where(
            Campaign.status.in_([s.source for s in rules.STAGES.values()]), Campaign.sla_alerted_for != Campaign.status))
            if (due := stage_due(c, pol)) is not None and uow.now >= due]
    for cid in late:
        with uow:
            camp = campaign_row(uow, cid)
            if uow.session.execute(update(Campaign).where(Campaign.id == cid, Campaign.status == camp.status,
                                                          Campaign.sla_alerted_for != camp.status)
                                   .values(sla_alerted_for=camp.status)).rowcount:  # type: ignore[attr-defined]
                nxt = next(t for t, s in rules.STAGES.items() if s.source == camp.status)
                title = f"Group-buy #{cid} is late: still {camp.status}, should be {nxt.value} by now"
                data = {"campaign_id": cid, "status": camp.status, "next": nxt.value}
                notify.notify_merchant(uow, camp.merchant_id, "campaign_sla_missed", title, "", data, "warning")
                for user_id in (camp.supplier_id, camp.leader_id):
                    if user_id and ("supplier" if user_id == camp.supplier_id else "leader") in rules.STAGES[nxt].owners:
                        notify.notify_user(uow, user_id, "campaign_sla_missed", title, "", data, "warning")
                notify.notify_ops(uow, "campaign_sla_missed", title, "", data, "warning")
                record_event(uow.session, "CampaignStageOverdue", data, uow.now, merchant_id=camp.merchant_id)
            uow.commit()
    return len(late)


# ---- owners' commands ------------------------------------------------------------------------------

def _may_act(actor: Principal, camp: Campaign) -> None:
    if actor.role == Role.OPS or (actor.role == Role.MERCHANT and actor.merchant_id == camp.merchant_id):
        return
    if (actor.role == Role.SUPPLIER and camp.supplier_id == actor.user_id) or (
            actor.role == Role.LEADER and camp.leader_id == actor.user_id):
        return
    raise NotFound(f"campaign {camp.id} not found")


def advance_campaign(uow: UnitOfWork, actor: Principal, campaign_id: int, target: str, reason: str = ""
                     ) -> dict[str, Any]:
    """Move a formed campaign one stage on; each stage has an owner role (ops may always)."""
    with uow:
        camp = campaign_row(uow, campaign_id)
        _may_act(actor, camp)
        problem = rules.transition_problem(camp.status, target, actor.role.value)
        if problem:
            code, message = problem
            raise Forbidden(message) if code == "forbidden" else Conflict(message, code=code)
        if actor.role == Role.OPS and not reason.strip():
            raise ValidationFailed("a reason is required", code="reason_required")
        stage = rules.STAGES[S(target)]
        guard = [Campaign.id == campaign_id, Campaign.status == stage.source]
        if target == S.SHIPPING:  # cold-chain goods wait for their booked transport (B3), checked in the UPDATE
            guard.append(or_(Campaign.cold_chain.is_(False), Campaign.cold_chain_booked_at.is_not(None)))
        moved = uow.session.execute(update(Campaign).where(*guard)
                                    .values(status=target, **{STAGE_COLUMN[S(target)]: uow.now})).rowcount  # type: ignore[attr-defined]
        if not moved:
            uow.session.refresh(camp)
            unbooked = rules.shipping_problem(camp.cold_chain, camp.cold_chain_booked_at is not None)
            if target == S.SHIPPING and camp.status == stage.source and unbooked:
                raise Conflict(unbooked[1], code=unbooked[0])
            raise Conflict("the campaign moved meanwhile; reload it", code="invalid_transition")
        uow.session.refresh(camp)
        record_event(uow.session, f"Campaign{target.capitalize()}", {"campaign_id": campaign_id}, uow.now,
                     merchant_id=camp.merchant_id)
        if target == S.DELIVERED:
            for buyer_id in uow.session.scalars(select(CampaignMember.buyer_id).where(
                    CampaignMember.campaign_id == campaign_id, CampaignMember.status == M.PAID)):
                notify.notify_user(uow, buyer_id, "campaign_at_pickup", f"{camp.title} is ready to collect",
                                   f"Pick-up point: {camp.pickup_point}", {"campaign_id": campaign_id})
        if actor.role == Role.OPS:
            record_audit(uow.session, actor_id=actor.user_id, actor_role="ops", action="advance_campaign",
                         target=f"campaign:{campaign_id}", reason=reason, now=uow.now, details={"to": target})
        uow.commit()
        return view(uow, camp)


def book_cold_chain(uow: UnitOfWork, actor: Principal, campaign_id: int, reference: str) -> dict[str, Any]:
    with uow:
        camp = campaign_row(uow, campaign_id)
        _may_act(actor, camp)
        if actor.role == Role.LEADER:
            raise Forbidden("the merchant or supplier books transport")
        if not camp.cold_chain:
            raise Conflict("this campaign needs no cold chain", code="no_cold_chain")
        uow.session.execute(update(Campaign).where(Campaign.id == campaign_id, Campaign.cold_chain_booked_at.is_(None))
                            .values(cold_chain_booked_at=uow.now, cold_chain_booking=reference.strip()[:120]))
        uow.session.refresh(camp)
        record_event(uow.session, "ColdChainBooked", {"campaign_id": campaign_id, "reference": reference}, uow.now,
                     merchant_id=camp.merchant_id)
        uow.commit()
        return view(uow, camp)


def mark_collected(uow: UnitOfWork, actor: Principal, campaign_id: int, buyer_id: int) -> dict[str, Any]:
    """The leader (or merchant) hands a participant's goods over at the pick-up point."""
    with uow:
        camp = campaign_row(uow, campaign_id)
        _may_act(actor, camp)
        if actor.role == Role.SUPPLIER:
            raise Forbidden("the leader or merchant hands goods over")
        if camp.status not in (S.DELIVERED, S.CLOSED):
            raise Conflict("goods have not arrived at the pick-up point yet", code="not_delivered")
        moved = uow.session.execute(update(CampaignMember).where(
            CampaignMember.campaign_id == campaign_id, CampaignMember.buyer_id == buyer_id,
            CampaignMember.status == M.PAID, CampaignMember.collected_at.is_(None))
            .values(collected_at=uow.now)).rowcount  # type: ignore[attr-defined]
        if not moved:
            raise Conflict("no paid, uncollected participant with that id", code="not_collectable")
        notify.notify_user(uow, buyer_id, "campaign_collected", f"You collected {camp.title}", "",
                           {"campaign_id": campaign_id})
        uow.commit()
        return {"campaign_id": campaign_id, "buyer_id": buyer_id, "collected_at": uow.now.isoformat()}


# ---- reads --------------------------------------------------------------------------------------

def get_campaign(uow: UnitOfWork, campaign_id: int) -> dict[str, Any]:
    with uow:
        return view(uow, campaign_row(uow, campaign_id))


def list_campaigns(uow: UnitOfWork, actor: Principal | None, *, status: str | None = None, mine: bool = False,
                   cursor: int | None = None, limit: int = 50) -> list[dict[str, Any]]:
    with uow:
        q = select(Campaign).order_by(Campaign.id.desc()).limit(limit)
        if status:
            q = q.where(Campaign.status == status)
        if cursor:
            q = q.where(Campaign.id < cursor)
        if mine:
            if actor is None or actor.role in (Role.BUYER, Role.OPS):
                raise ValidationFailed("mine=true is for merchants, leaders and suppliers")
            q = q.where({Role.MERCHANT: Campaign.merchant_id == actor.merchant_id,
                         Role.LEADER: Campaign.leader_id == actor.user_id,
                         Role.SUPPLIER: Campaign.supplier_id == actor.user_id}[actor.role])
        return [view(uow, c) for c in uow.session.scalars(q)]


def procurement_queue(uow: UnitOfWork, actor: Principal) -> list[dict[str, Any]]:
    """Formed and procuring campaigns, the tightest cut-off first."""
    actor.require(Role.MERCHANT, Role.SUPPLIER, Role.OPS)
    with uow:
        q = select(Campaign).where(Campaign.status.in_((S.FORMED, S.PROCURING)))
        if actor.role == Role.MERCHANT:
            q = q.where(Campaign.merchant_id == actor.merchant_id)
        elif actor.role == Role.SUPPLIER:
            q = q.where(Campaign.supplier_id == actor.user_id)
        found = sorted(uow.session.scalars(q), key=lambda c: rules.procurement_rank(c.cutoff_at, c.deadline, c.id))
        return [view(uow, c) for c in found]


def get_purchase_list(uow: UnitOfWork, actor: Principal, campaign_id: int) -> dict[str, Any]:
    with uow:
        camp = campaign_row(uow, campaign_id)
        _may_act(actor, camp)
        pl = uow.session.scalar(select(PurchaseList).where(PurchaseList.campaign_id == campaign_id))
        if pl is None:
            raise NotFound("no purchase list yet: entry has not closed on a formed group")
        return {"campaign_id": campaign_id, "supplier_id": pl.supplier_id, "lines": pl.lines,
                "created_at": pl.created_at.isoformat(), "cutoff_at": camp.cutoff_at.isoformat(),
                "delivery_at": camp.delivery_at.isoformat()}


def my_participations(uow: UnitOfWork, buyer: Principal) -> list[dict[str, Any]]:
    """Each of the buyer's group-buys with its progress: joined, formed, procured, shipped, at pick-up, collected."""
    buyer.require(Role.BUYER)
    with uow:
        rows = uow.session.execute(select(CampaignMember, Campaign).join(Campaign, Campaign.id ==
                                                                         CampaignMember.campaign_id)
                                   .where(CampaignMember.buyer_id == buyer.user_id)
                                   .order_by(CampaignMember.id.desc())).all()
        out = []
        for m, c in rows:
            steps = [("joined", m.joined_at), ("paid", m.paid_at), ("group_formed", c.formed_at),
                     ("procured", c.procuring_at), ("shipped", c.shipping_at), ("at_pickup", c.delivered_at),
                     ("collected", m.collected_at)]
            if c.status == S.CANCELLED:
                steps = [*steps[:3], ("group_cancelled", c.cancelled_at), ("refunded", m.ended_at)]
            elif c.status in rules.DEAD:
                steps = [*steps[:2], ("group_failed", c.failed_at), ("refunded", c.refunded_at)]
            out.append({"campaign_id": c.id, "title": c.title, "order_id": m.order_id, "status": m.status,
                        "campaign_status": c.status, "pickup_point": c.pickup_point,
                        "progress": rules.progress(steps)})
        return out


def leader_summary(uow: UnitOfWork, leader: Principal) -> dict[str, Any]:
    leader.require(Role.LEADER)
    with uow:
        camps = [view(uow, c) for c in uow.session.scalars(select(Campaign).where(
            Campaign.leader_id == leader.user_id).order_by(Campaign.id.desc()))]
        return {"campaigns": camps, "formed": sum(1 for c in camps if c["formed_at"]),
                "commission_earned_cents": ledger.balance(uow.session, leader_account(leader.user_id))}

