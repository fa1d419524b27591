"""A hypothesis state machine over orders, payments, expiries, refunds and redemptions.

After every step: sold + reserved <= cap in every bucket, the counters equal what the
orders say, and the ledger balances with every account explained by the orders.
"""

from __future__ import annotations

import tempfile
import uuid
from collections import defaultdict
from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from sqlalchemy import func, select

from tests.conftest import START
from tuangou.accounts import service as accounts
from tuangou.catalog import service as catalog
from tuangou.catalog.models import CapacityBucket
from tuangou.core import ledger
from tuangou.core.auth import Principal, Role
from tuangou.core.clock import SettableClock
from tuangou.core.db import Base, Database, UnitOfWork
from tuangou.core.errors import DomainError
from tuangou.orders import service as orders
from tuangou.orders.gateway import SandboxGateway
from tuangou.orders.models import Order, Refund, Voucher

COMMISSION_BPS = 500


class OrderLifecycle(RuleBasedStateMachine):
    @initialize()
    def open_shop(self) -> None:
        self.tmp = tempfile.TemporaryDirectory()
        self.db = Database(f"sqlite:///{self.tmp.name}/sm.db", sqlite_synchronous="OFF")
        Base.metadata.create_all(self.db.engine)
        self.clock = SettableClock(START)
        self.gateway = SandboxGateway()
        uow = self.uow()
        ops = accounts.create_user(uow, None, "ops@sm.test", "secret-pass-1", Role.OPS)
        self.ops = Principal(ops.id, Role.OPS)
        merchant_id, owner = accounts.create_merchant(uow, self.ops, "M", "m@sm.test", "secret-pass-1")
        self.merchant = Principal(owner.id, Role.MERCHANT, merchant_id)
        store = catalog.create_store(uow, self.merchant, "S", "catering", "Asia/Shanghai")
        deal = catalog.create_deal(uow, self.merchant, store.id, title="d", kind="voucher", price_cents=1000,
                                   original_price_cents=1500, valid_from=START - timedelta(hours=1),
                                   valid_until=START + timedelta(days=10), daily_cap=4, total_cap=9,
                                   per_buyer_limit=3)
        catalog.publish_deal(uow, self.merchant, deal.id)
        self.deal_id = deal.id
        self.buyers = [Principal(accounts.sign_up_buyer(uow, f"b{i}@sm.test", "secret-pass-1").id, Role.BUYER)
                       for i in range(3)]
        self.order_ids: list[int] = []

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.db, self.clock)

    def teardown(self) -> None:
        self.db.dispose()
        self.tmp.cleanup()

    @rule(buyer=st.integers(0, 2), qty=st.integers(1, 3), day=st.integers(0, 2))
    def place(self, buyer: int, qty: int, day: int) -> None:
        service_date = (self.clock.now() + timedelta(days=day)).astimezone().date()
        service_date = (START + timedelta(days=day)).date() if service_date < START.date() else service_date
        try:
            order, _ = orders.place_order(self.uow(), self.buyers[buyer], self.deal_id, qty, uuid.uuid4().hex,
                                          service_date=service_date)
            self.order_ids.append(order.id)
        except DomainError as exc:
            assert exc.code in {"sold_out", "cap_exceeded", "per_buyer_limit", "invalid_service_date"}, exc.code

    @rule(pick=st.integers(0, 50), outcome=st.sampled_from(["succeed", "fail", "timeout"]))
    def pay(self, pick: int, outcome: str) -> None:
        if not self.order_ids:
            return
        order_id = self.order_ids[pick % len(self.order_ids)]
        buyer = self._buyer_of(order_id)
        try:
            orders.pay_order(self.uow(), buyer, order_id, uuid.uuid4().hex, self.gateway, outcome)
        except DomainError as exc:
            # a payment left unknown by a gateway timeout stays in flight until reconciliation decides it
            assert exc.code in {"not_payable", "reservation_expired", "payment_in_progress"}, exc.code

    @rule(minutes=st.integers(1, 30))
    def time_passes(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))

    @rule(refunds_fail=st.booleans())
    def worker_tick(self, refunds_fail: bool) -> None:
        if refunds_fail:
            self.gateway.script("fail")
        orders.expire_due(self.uow())
        orders.process_refunds(self.uow(), self.gateway)
        orders.reconcile_payments(self.uow(), self.gateway, older_than_s=0)

    @rule(pick=st.integers(0, 50), all_of_them=st.booleans())
    def refund(self, pick: int, all_of_them: bool) -> None:
        if not self.order_ids:
            return
        order_id = self.order_ids[pick % len(self.order_ids)]
        with self.uow() as uow:
            codes = list(uow.session.scalars(select(Voucher.code).where(Voucher.order_id == order_id,
                                                                        Voucher.status == "issued")))
        try:
            orders.refund_vouchers(self.uow(), self._buyer_of(order_id), order_id,
                                   None if all_of_them else codes[:1] or ["NOPE"], "changed my mind")
        except DomainError as exc:
            assert exc.code == "not_refundable", exc.code

    @rule(pick=st.integers(0, 50), twice=st.booleans())
    def redeem(self, pick: int, twice: bool) -> None:
        with self.uow() as uow:
            codes = list(uow.session.scalars(select(Voucher.code).order_by(Voucher.id)))
        if not codes:
            return
        code = codes[pick % len(codes)]
        for _ in range(2 if twice else 1):
            try:
                orders.redeem_voucher(self.uow(), self.merchant, code, COMMISSION_BPS)
            except DomainError as exc:
                assert exc.code in {"already_redeemed", "voucher_not_usable", "voucher_wrong_date"}, exc.code
                if exc.code == "voucher_wrong_date":  # a booking binds its day: only today's vouchers are used
                    assert exc.extra["service_date"] != exc.extra["today"]

    @rule(pick=st.integers(0, 50), day=st.integers(0, 9), approve=st.booleans())
    def redate(self, pick: int, day: int, approve: bool) -> None:
        if not self.order_ids:
            return
        order_id = self.order_ids[pick % len(self.order_ids)]
        to_date = (START + timedelta(days=day)).date()
        try:
            asked = orders.request_redating(self.uow(), self._buyer_of(order_id), order_id, to_date)
            orders.decide_redating(self.uow(), self.merchant, asked["id"], approve)
        except DomainError as exc:
            assert exc.code in {"voucher_already_redeemed", "not_redatable", "same_date", "outside_window",
                                "no_room"}, exc.code

    def _buyer_of(self, order_id: int) -> Principal:
        with self.uow() as uow:
            order = uow.session.get(Order, order_id)
            assert order is not None
            return Principal(order.buyer_id, Role.BUYER)

    @invariant()
    def counters_never_pass_caps_and_match_orders(self) -> None:
        with self.uow() as uow:
            buckets = {b.key: b for b in uow.session.scalars(select(CapacityBucket))}
            reserved: dict[str, int] = defaultdict(int)
            sold: dict[str, int] = defaultdict(int)
            for order in uow.session.scalars(select(Order)):
                live = uow.session.scalar(select(func.count()).select_from(Voucher).where(
                    Voucher.order_id == order.id, Voucher.status != "refunded")) or 0
                for key in order.buckets:
                    if order.status == "reserved":
                        reserved[key] += order.quantity
                    elif order.status in ("paid", "completed", "refunded"):
                        sold[key] += live
            for key, b in buckets.items():
                assert b.sold + b.reserved <= b.cap, (key, b.sold, b.reserved, b.cap)
                assert (b.sold, b.reserved) == (sold[key], reserved[key]), key

    @invariant()
    def ledger_balances_and_is_explained(self) -> None:
        with self.uow() as uow:
            s = uow.session
            balances = ledger.balances(s)
            assert ledger.total(s) == 0
            issued = s.scalar(select(func.coalesce(func.sum(Voucher.price_cents), 0)).where(Voucher.status == "issued"))
            redeemed = s.scalar(select(func.coalesce(func.sum(Voucher.price_cents), 0)).where(
                Voucher.status == "redeemed"))
            pending = s.scalar(select(func.coalesce(func.sum(Refund.amount_cents), 0)).where(Refund.status == "pending"))
            assert balances.get(ledger.ESCROW, 0) == issued
            assert balances.get("platform:refunds_payable", 0) == pending
            settled = balances.get(ledger.merchant_account(self.merchant.merchant_id), 0) + balances.get(ledger.REVENUE, 0)
            assert settled == redeemed
            assert all(v >= 0 for k, v in balances.items() if k != ledger.EXTERNAL_BUYERS)


TestOrderLifecycle = OrderLifecycle.TestCase
TestOrderLifecycle.settings = settings(max_examples=30, stateful_step_count=25, deadline=None,
                                       suppress_health_check=[HealthCheck.too_slow])
