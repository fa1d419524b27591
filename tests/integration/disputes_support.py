"""Shared checks for the disputes tests: the ledger is balanced and each account matches the rows it mirrors."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tuangou.core import ledger
from tuangou.core.db import Database, UnitOfWork
from tuangou.disputes.coupons import COUPONS, ITEM_VOUCHERS
from tuangou.disputes.models import Coupon, RecoveryClaim
from tuangou.orders.models import Order, Refund, Voucher
from tuangou.orders.service import REFUNDS_PAYABLE

TRACEABLE = ("order", "coupon", "dispute", "stack")


def assert_ledger_consistent(db: Database) -> dict[str, int]:
    """Sum zero; coupon liability = face value of unused fixed coupons; item vouchers = cost of unserved ones;
    refunds payable = refunds owed;
    escrow = issued vouchers + coupon value held for unpaid orders; every compensation line has a cause."""
    with UnitOfWork(db) as uow:
        s = uow.session
        assert ledger.total(s) == 0
        b = ledger.balances(s)
        outstanding = sum(c.value for c in s.scalars(select(Coupon).where(Coupon.kind == "amount",
                                                                          Coupon.status == "available")))
        assert b.get(COUPONS, 0) == outstanding
        unserved = sum(c.value for c in s.scalars(select(Coupon).where(Coupon.kind == "item",
                                                                       Coupon.status == "available")))
        assert b.get(ITEM_VOUCHERS, 0) == unserved
        owed = sum(r.amount_cents for r in s.scalars(select(Refund).where(Refund.status == "pending")))
        assert b.get(REFUNDS_PAYABLE, 0) == owed
        issued = sum(v.price_cents for v in s.scalars(select(Voucher).where(Voucher.status == "issued")))
        held = sum(c.discount_cents for c, o in s.execute(select(Coupon, Order).join(Order, Order.id == Coupon.order_id)
                                                          .where(Coupon.status == "used", Order.status == "reserved")))
        assert b.get(ledger.ESCROW, 0) == issued + held
        for line in s.scalars(select(ledger.LedgerLine).where(ledger.LedgerLine.account == ledger.COMPENSATION)):
            assert line.ref.split(":")[0] in TRACEABLE, line.ref
        claimed = sum(c.amount_cents for c in s.scalars(select(RecoveryClaim).where(RecoveryClaim.status != "cancelled")))
        booked = -sum(line.amount_cents for line in s.scalars(select(ledger.LedgerLine).where(
            ledger.LedgerLine.kind.in_(("recovery_booked", "recovery_cancelled")),
            ledger.LedgerLine.account.startswith("merchant:"))))
        assert claimed == booked
        return b


def me(stage: Any, headers: dict[str, str]) -> int:
    return int(stage.client.get("/api/v1/me", headers=headers).json()["id"])
