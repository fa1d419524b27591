"""A formed group that cannot be delivered (B1): the merchant, the supplier or ops call it off with a
reason. Every participant is refunded in full and compensated per the campaign policy (a no-threshold
coupon the platform pays first, recovered from the merchant: the disputes mechanism, reached through
the cancellation participants), the responsible party is recorded and each buyer is told in the inbox.

The command moves the campaign with one conditional UPDATE; the worker then books each participant's
refund and compensation in its own transaction (idempotent per member and per compensation ref), like
a failed group's refunds, so a worker killed mid-way finishes on the next tick.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, update

from tuangou.campaigns import rules
from tuangou.campaigns.models import Campaign, CampaignMember
from tuangou.campaigns.participants import registry
from tuangou.campaigns.service import M, S, campaign_row, each_paid_member, policy, refund_member_cents, view
from tuangou.core.audit import record_audit
from tuangou.core.auth import Principal, Role
from tuangou.core.db import InTransaction, UnitOfWork
from tuangou.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from tuangou.core.money import yuan
from tuangou.core.outbox import record_event
from tuangou.notify import service as notify


def cancel_campaign(uow: UnitOfWork, actor: Principal, campaign_id: int, reason: str,
                    responsible: str | None = None) -> dict[str, Any]:
    """Call off a formed group that cannot be delivered; refunds and compensation follow in the worker."""
    with uow:
        camp = campaign_row(uow, campaign_id)
        if not _involved(actor, camp):
            raise NotFound(f"campaign {campaign_id} not found")
        problem = rules.cancel_problem(camp.status, actor.role.value, reason)
        if problem:
            code, message = problem
            error = {"cancel_not_allowed": Forbidden, "reason_required": ValidationFailed}.get(code, Conflict)
            raise error(message, code=code)
        party, why_not = rules.responsible_party(actor.role.value, responsible, camp.supplier_id is not None)
        if party is None:
            raise ValidationFailed(why_not, code="responsible_party_invalid")
        moved = uow.session.execute(update(Campaign).where(Campaign.id == campaign_id,
                                                           Campaign.status.in_(rules.CANCELLABLE))
                                    .values(status=S.CANCELLED, cancelled_at=uow.now, cancel_reason=reason.strip(),
                                            responsible_party=party.value,
                                            entry_closed_at=func.coalesce(Campaign.entry_closed_at, uow.now))
                                    ).rowcount  # type: ignore[attr-defined]
        if not moved:
            raise Conflict("the campaign moved meanwhile; reload it", code="campaign_not_cancellable")
        uow.session.refresh(camp)
        data = {"campaign_id": campaign_id, "reason": camp.cancel_reason, "responsible_party": party.value,
                "cancelled_by": actor.role.value}
        record_event(uow.session, "CampaignCancelled", data, uow.now, merchant_id=camp.merchant_id)
        title = f"Group-buy #{campaign_id} called off ({party.value}): {camp.cancel_reason}"
        notify.notify_merchant(uow, camp.merchant_id, "campaign_cancelled", title, "", data, "critical")
        if camp.supplier_id:
            notify.notify_user(uow, camp.supplier_id, "campaign_cancelled", title, "", data, "critical")
        if camp.leader_id:
            notify.notify_user(uow, camp.leader_id, "campaign_cancelled", title, "", data, "warning")
        notify.notify_ops(uow, "campaign_cancelled", title, "", data, "warning")
        record_audit(uow.session, actor_id=actor.user_id, actor_role=actor.role.value, action="cancel_campaign",
                     target=f"campaign:{campaign_id}", reason=camp.cancel_reason, now=uow.now,
                     details={"responsible_party": party.value})
        uow.commit()
        return view(uow, camp)


def _involved(actor: Principal, camp: Campaign) -> bool:
    """Who may see the campaign's owner commands at all (others get 404, as for the stage commands)."""
    return (actor.role == Role.OPS or (actor.role == Role.MERCHANT and actor.merchant_id == camp.merchant_id)
            or (actor.role == Role.SUPPLIER and camp.supplier_id == actor.user_id)
            or (actor.role == Role.LEADER and camp.leader_id == actor.user_id))


def book_cancellation_refunds(uow: UnitOfWork, batch: int = 500) -> int:
    """Each paid participant of a called-off group: full refund, compensation, an inbox message; once."""
    return each_paid_member(uow, [Campaign.status == S.CANCELLED], refund_and_compensate, batch)


def refund_and_compensate(uow: InTransaction, member_id: int) -> bool:
    """Inside an open unit of work: one participant of a called-off group made whole; False if done before."""
    member = uow.session.get(CampaignMember, member_id)
    assert member is not None
    camp = campaign_row(uow, member.campaign_id)
    why = f"the group was called off ({camp.responsible_party}): {camp.cancel_reason}"
    refunded = refund_member_cents(uow, camp, member_id, why, expect=M.PAID)
    if refunded is None:
        return False
    pol = policy(uow)
    given = []
    if pol.cancel_coupon_cents:
        for p in registry.items:
            got = p.compensate(uow, buyer_id=member.buyer_id, amount_cents=pol.cancel_coupon_cents,
                               reason=f"group-buy #{camp.id} called off", ref=f"campaign:{camp.id}:{member.order_id}",
                               valid_days=pol.cancel_coupon_valid_days, liable_merchant_id=camp.merchant_id)
            if got:
                given.append(got)
    coupon = sum(int(g.get("value", 0)) for g in given)
    body = f"{yuan(refunded)} refunded" + (f" and a {yuan(coupon)} coupon" if coupon else "") + f". {why}"
    notify.notify_user(uow, member.buyer_id, "campaign_cancelled", f"{camp.title}: the group-buy is called off",
                       body, {"campaign_id": camp.id, "order_id": member.order_id, "refund_cents": refunded,
                              "coupon_cents": coupon, "responsible_party": camp.responsible_party})
    record_event(uow.session, "CampaignParticipantCompensated",
                 {"campaign_id": camp.id, "order_id": member.order_id, "buyer_id": member.buyer_id,
                  "refund_cents": refunded, "coupon_cents": coupon, "responsible_party": camp.responsible_party},
                 uow.now, merchant_id=camp.merchant_id)
    return True
