"""The invariant that defines the product: sold + reserved <= cap, under any concurrency, on both databases."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import threading
import uuid
from collections import Counter
from datetime import timedelta

from sqlalchemy import func, select

from tests.conftest import START
from tuangou.accounts import service as accounts
from tuangou.catalog import service as catalog
from tuangou.catalog.models import CapacityBucket
from tuangou.core.auth import Principal, Role
from tuangou.core.clock import SettableClock
from tuangou.core.db import Database, UnitOfWork
from tuangou.core.errors import DomainError
from tuangou.orders import service as orders
from tuangou.orders.gateway import SandboxGateway
from tuangou.orders.models import Order, Voucher


def _setup(db: Database, clock: SettableClock, *, buyers: int, **terms) -> tuple[int, list[Principal]]:
    uow = UnitOfWork(db, clock)
    ops = accounts.create_user(uow, None, "ops@race.test", "secret-pass-1", Role.OPS)
    merchant_id, owner = accounts.create_merchant(uow, Principal(ops.id, Role.OPS), "Cake", "m@race.test",
                                                  "secret-pass-1")
    mp_ = Principal(owner.id, Role.MERCHANT, merchant_id)
    store = catalog.create_store(uow, mp_, "Cake", "bakery", "Asia/Shanghai")
    deal = catalog.create_deal(uow, mp_, store.id, title="taro mille-feuille", kind=terms.pop("kind", "voucher"),
                               price_cents=990, original_price_cents=2800, valid_from=START - timedelta(hours=1),
                               valid_until=START + timedelta(days=3), **terms)
    catalog.publish_deal(uow, mp_, deal.id)
    with UnitOfWork(db, clock) as u:
        from tuangou.accounts.models import User
        from tuangou.core.auth import hash_password
        hashed = hash_password("secret-pass-1")  # one scrypt for all racers
        users = [User(email=f"b{i}@race.test", name=f"b{i}", password_hash=hashed, role="buyer",
                      created_at=START) for i in range(buyers)]
        u.session.add_all(users)
        u.session.flush()
        ids = [x.id for x in users]
        u.commit()
    return deal.id, [Principal(i, Role.BUYER) for i in ids]


def _race(db: Database, clock: SettableClock, deal_id: int, buyers: list[Principal], qty: int = 1,
          pay: bool = False) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(min(len(buyers), 50))
    gateway = SandboxGateway()

    def buy(group: list[Principal]) -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=10)
        for buyer in group:
            try:
                order, _ = orders.place_order(UnitOfWork(db, clock), buyer, deal_id, qty, uuid.uuid4().hex)
                if pay:
                    orders.pay_order(UnitOfWork(db, clock), buyer, order.id, "pay", gateway)
                result = "ok"
            except DomainError as exc:
                result = exc.code
            with lock:
                outcomes[result] += 1

    groups = [buyers[i::50] for i in range(min(len(buyers), 50))]
    threads = [threading.Thread(target=buy, args=(g,)) for g in groups]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


TODAY = START.date().isoformat()  # 10:00 in Shanghai, same calendar day


def _counters(db: Database, deal_id: int, keys: tuple[str, ...] = (TODAY, "stock")) -> list[tuple[str, int, int, int]]:
    with UnitOfWork(db) as uow:
        return [(b.key, b.cap, b.sold, b.reserved) for b in uow.session.scalars(
            select(CapacityBucket).where(CapacityBucket.deal_id == deal_id, CapacityBucket.key.in_(keys)))]


def test_200_buyers_race_for_20_units_exactly_20_win(any_db, clock):
    # given a deal with 20 units today and 200 buyers
    deal_id, buyers = _setup(any_db, clock, buyers=200, daily_cap=20)
    # when they all order and pay at once
    outcomes = _race(any_db, clock, deal_id, buyers, pay=True)
    # then exactly 20 succeed, the rest are told sold out, and the counters agree with the orders
    assert outcomes == Counter({"ok": 20, "sold_out": 180})
    (key, cap, sold, reserved), = _counters(any_db, deal_id)
    assert (cap, sold, reserved) == (20, 20, 0)
    with UnitOfWork(any_db) as uow:
        assert uow.session.scalar(select(func.count()).select_from(Voucher)) == 20
        assert uow.session.scalar(select(func.count()).select_from(Order).where(Order.status == "paid")) == 20


def test_total_cap_and_multi_unit_orders_never_oversell(any_db, clock):
    # given 7 a day but only 10 in total, and buyers asking for 3 at a time on two dates
    deal_id, buyers = _setup(any_db, clock, buyers=60, daily_cap=7, total_cap=10)
    tomorrow = (START + timedelta(days=1)).date()
    half = len(buyers) // 2
    out_today = _race(any_db, clock, deal_id, buyers[:half], qty=3)
    out_tomorrow: Counter[str] = Counter()
    for b in buyers[half:half + 5]:
        try:
            orders.place_order(UnitOfWork(any_db, clock), b, deal_id, 3, uuid.uuid4().hex, service_date=tomorrow)
            out_tomorrow["ok"] += 1
        except DomainError as exc:
            out_tomorrow[exc.code] += 1
    counters = {k: (cap, sold + reserved) for k, cap, sold, reserved in _counters(
        any_db, deal_id, (TODAY, tomorrow.isoformat(), "total"))}
    assert all(held <= cap for cap, held in counters.values())
    assert counters["total"][1] == 3 * (out_today["ok"] + out_tomorrow["ok"]) <= 10
    assert out_today["ok"] == 2  # 6 of today's 7; a third order of 3 would pass 7
    assert set(out_today) <= {"ok", "sold_out", "cap_exceeded"}


def test_goods_stock_never_goes_below_zero(any_db, clock):
    deal_id, buyers = _setup(any_db, clock, buyers=80, kind="goods", stock=15)
    outcomes = _race(any_db, clock, deal_id, buyers, qty=2)
    (key, cap, sold, reserved), = _counters(any_db, deal_id)
    assert key == "stock" and reserved == 2 * outcomes["ok"] <= 15 and outcomes["ok"] == 7


def test_concurrent_redemptions_of_one_voucher_succeed_once(any_db, clock):
    deal_id, buyers = _setup(any_db, clock, buyers=1, daily_cap=5)
    order, _ = orders.place_order(UnitOfWork(any_db, clock), buyers[0], deal_id, 1, "k")
    paid, _ = orders.pay_order(UnitOfWork(any_db, clock), buyers[0], order.id, "p", SandboxGateway())
    code = paid.vouchers[0]["code"]
    merchant = Principal(0, Role.OPS)
    results: list[str] = []
    barrier = threading.Barrier(16)

    def redeem() -> None:
        barrier.wait()
        try:
            orders.redeem_voucher(UnitOfWork(any_db, clock), merchant, code, 500, "buyer at the counter")
            results.append("ok")
        except DomainError as exc:
            results.append(exc.code)

    threads = [threading.Thread(target=redeem) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Counter(results) == Counter({"ok": 1, "already_redeemed": 15})


def test_same_idempotency_key_from_many_threads_makes_one_order(any_db, clock):
    deal_id, buyers = _setup(any_db, clock, buyers=1, daily_cap=50)
    ids: list[int] = []
    barrier = threading.Barrier(12)

    def place() -> None:
        barrier.wait()
        order, _ = orders.place_order(UnitOfWork(any_db, clock), buyers[0], deal_id, 2, "same-key")
        ids.append(order.id)

    threads = [threading.Thread(target=place) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 1 and len(ids) == 12
    (_, _, sold, reserved), = _counters(any_db, deal_id)
    assert reserved == 2


def _process_buyer(url: str, deal_id: int, buyer_ids: list[int], queue: mp.Queue) -> None:  # type: ignore[type-arg]
    db = Database(url)
    clock = SettableClock(START)
    outcomes: Counter[str] = Counter()
    for buyer_id in buyer_ids:
        try:
            orders.place_order(UnitOfWork(db, clock), Principal(buyer_id, Role.BUYER), deal_id, 1, uuid.uuid4().hex)
            outcomes["ok"] += 1
        except DomainError as exc:
            outcomes[exc.code] += 1
    db.dispose()
    queue.put(dict(outcomes))


def test_several_processes_race_like_several_api_hosts(any_db, clock):
    # given 4 OS processes (as 4 API hosts would be) sharing one database
    deal_id, buyers = _setup(any_db, clock, buyers=120, daily_cap=25)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    ids = [b.user_id for b in buyers]
    procs = [ctx.Process(target=_process_buyer, args=(any_db.url, deal_id, ids[i::4], queue)) for i in range(4)]
    for p in procs:
        p.start()
    total: Counter[str] = Counter()
    for _ in procs:
        total.update(queue.get(timeout=120))
    for p in procs:
        p.join(timeout=30)
    # then exactly the cap is reserved
    assert total == Counter({"ok": 25, "sold_out": 95})
    (_, cap, sold, reserved), = _counters(any_db, deal_id)
    assert reserved == 25 == cap


def test_30_concurrent_pays_of_one_order_capture_one_charge(any_db, clock):
    # given one reserved order
    deal_id, buyers = _setup(any_db, clock, buyers=1, daily_cap=5)
    order, _ = orders.place_order(UnitOfWork(any_db, clock), buyers[0], deal_id, 1, uuid.uuid4().hex)
    gateway = SandboxGateway()
    answers: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(30)

    def pay(i: int) -> None:
        barrier.wait(timeout=30)
        # different client keys, some none at all, some asking the sandbox to decline
        key = "" if i % 3 == 0 else f"client-{i}"
        try:
            _, payment = orders.pay_order(UnitOfWork(any_db, clock), buyers[0], order.id, key, gateway,
                                          "fail" if i % 7 == 6 else "succeed")
            result = payment["status"]
        except DomainError as exc:
            result = exc.code
        with lock:
            answers.append(result)

    # when 30 requests pay it at the same instant
    threads = [threading.Thread(target=pay, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then at most one charge ever succeeded at the gateway, and the order holds exactly it
    succeeded = [r for r in gateway._charges.values() if r.ok]
    assert len(answers) == 30
    with UnitOfWork(any_db) as uow:
        paid = uow.session.get(Order, order.id)
        assert paid is not None
        if paid.status == "paid":
            assert len(succeeded) == 1 and paid.extra["charge_ref"] == succeeded[0].reference
        else:
            assert succeeded == []
        assert uow.session.scalar(select(func.count()).select_from(Voucher)) == (1 if paid.status == "paid" else 0)
