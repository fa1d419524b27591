"""Compensation in kind (E2, A6): an item voucher for a free side dish or a trial class, served by the merchant.

Where coupons take money off an order, an item voucher is shown at the merchant, which serves the item once
and redeems the voucher by its code (like a 团购 voucher). The platform guarantees it: its cost (the tier's
`side_item_cents`) is posted as a liability and booked at once as a recovery claim on that merchant; serving
it settles the claim in kind (the merchant's account is credited back: it paid with the dish, not in cash),
and a voucher that expires or is revoked unused releases both. docs/adr/0006 explains the accounting.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from tuangou.core import ledger
from tuangou.core.auth import Principal, Role
from tuangou.core.db import InTransaction, UnitOfWork, retry_on_deadlock
from tuangou.core.errors import Conflict, Forbidden, NotFound
from tuangou.core.outbox import record_event
from tuangou.disputes import coupons, rules
from tuangou.disputes.models import Coupon, RecoveryClaim
from tuangou.notify import service as notify


def issue_item_voucher(uow: InTransaction, *, buyer_id: int, merchant_id: int, item: str, cost_cents: int,
                       reason: str, ref: str, valid_days: int, dispute_id: int | None = None) -> dict[str, Any]:
    """Inside an open unit of work: give the buyer `item` at `merchant_id`, once per (ref, buyer); its cost is
    booked against that merchant once (the claim's ref is the voucher's)."""
    voucher = coupons.issue(uow, buyer_id=buyer_id, kind=rules.CouponKind.ITEM, value=cost_cents, reason=reason,
                            ref=ref, origin=rules.CouponOrigin.COMPENSATION, valid_days=valid_days,
                            merchant_id=merchant_id, liable_merchant_id=merchant_id, item=item)
    coupons.book_recovery(uow, merchant_id=merchant_id, amount=cost_cents, ref=f"coupon:{voucher['id']}",
                          dispute_id=dispute_id)
    return voucher


_PROBLEMS = {rules.ItemVoucherRefusal.WRONG_MERCHANT: (Forbidden, "this item voucher is served by another merchant"),
             rules.ItemVoucherRefusal.USED: (Conflict, "this item voucher was already served"),
             rules.ItemVoucherRefusal.EXPIRED: (Conflict, "this item voucher has expired"),
             rules.ItemVoucherRefusal.WITHDRAWN: (Conflict, "this item voucher was withdrawn")}


@retry_on_deadlock
def redeem_item_voucher(uow: UnitOfWork, actor: Principal, code: str) -> dict[str, Any]:
    """The merchant serves the item and redeems the voucher, once: one conditional UPDATE decides, so two
    counters scanning it at the same instant cannot both serve it."""
    actor.require(Role.MERCHANT)
    with uow:
        c = uow.session.scalar(select(Coupon).where(Coupon.code == code.strip().upper(),
                                                    Coupon.kind == rules.CouponKind.ITEM))
        if c is None:
            raise NotFound("no such item voucher", code="item_voucher_not_found")
        moved = uow.session.execute(update(Coupon).where(
            Coupon.id == c.id, Coupon.status == rules.CouponStatus.AVAILABLE, Coupon.merchant_id == actor.merchant_id,
            Coupon.valid_until > uow.now).values(status=rules.CouponStatus.USED, used_at=uow.now)
        ).rowcount  # type: ignore[attr-defined]
        if not moved:
            uow.session.refresh(c)
            refusal = rules.item_voucher_refusal(status=c.status, voucher_merchant_id=c.merchant_id,
                                                 merchant_id=actor.merchant_id or 0, valid_until=c.valid_until,
                                                 now=uow.now) or rules.ItemVoucherRefusal.USED
            error, message = _PROBLEMS[refusal]
            raise error(message, code=refusal.value)
        merchant_id = int(c.merchant_id or 0)
        # served in kind: the liability ends and the merchant gets back what its claim held
        ledger.post(uow.session, "item_voucher_served", [(coupons.ITEM_VOUCHERS, -c.value),
                                                         (ledger.merchant_account(merchant_id), c.value)],
                    uow.now, ref=f"coupon:{c.id}")
        uow.session.execute(update(RecoveryClaim).where(
            RecoveryClaim.ref == f"coupon:{c.id}", RecoveryClaim.status != rules.RecoveryStatus.CANCELLED).values(
            status=rules.RecoveryStatus.RECOVERED, recovered_at=uow.now))
        record_event(uow.session, "ItemVoucherServed", {"coupon_id": c.id, "item": c.item, "cost_cents": c.value,
                                                        "buyer_id": c.buyer_id}, uow.now, merchant_id=merchant_id)
        notify.notify_user(uow, c.buyer_id, "item_voucher_served", f"{c.item or 'Your free item'} was served",
                           "", {"coupon_id": c.id, "code": c.code})
        uow.commit()
        uow.session.refresh(c)
        return coupons.coupon_view(c)


def expire_item_vouchers(uow: UnitOfWork, batch: int = 500) -> int:
    """Item vouchers past their date unused: nothing was served, so the merchant owes nothing; idempotent."""
    with uow:
        due = list(uow.session.scalars(select(Coupon).where(
            Coupon.kind == rules.CouponKind.ITEM, Coupon.status == rules.CouponStatus.AVAILABLE,
            Coupon.valid_until <= uow.now).order_by(Coupon.id).limit(batch)))
        n = 0
        for c in due:
            if uow.session.execute(update(Coupon).where(Coupon.id == c.id,
                                                        Coupon.status == rules.CouponStatus.AVAILABLE)
                                   .values(status=rules.CouponStatus.EXPIRED)).rowcount:  # type: ignore[attr-defined]
                coupons.release_item(uow, c, "item_voucher_expired")
                n += 1
        uow.commit()
        return n
