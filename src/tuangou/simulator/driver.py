"""Drive one mode of a world through the real system: services in-process, a settable clock, a real database.

Everything the platform decides (caps, refusals, the breaker, remedies, limits) is decided by the
services and the jobs; the driver only plays the people (merchants, buyers, ops) and watches what the
stores can really do. Nothing here re-implements a platform rule.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from tuangou.capacity import service as capacity
from tuangou.catalog import service as catalog
from tuangou.composition import compose as install_participants
from tuangou.core.auth import Principal, Role
from tuangou.core.clock import SettableClock
from tuangou.core.config import Settings
from tuangou.core.db import Base, Database, UnitOfWork
from tuangou.core.errors import DomainError
from tuangou.core.jobs import JobContext, run_all
from tuangou.core.registry import job_modules, load_models
from tuangou.disputes import policy as dispute_policy
from tuangou.disputes import service as disputes
from tuangou.disputes import stacking as recoveries
from tuangou.governance import service as governance
from tuangou.merchants import service as merchants
from tuangou.monitoring import service as monitoring
from tuangou.orders import payments
from tuangou.orders import service as orders
from tuangou.orders.gateway import SandboxGateway
from tuangou.simulator import rules
from tuangou.simulator.world import World

PASSWORD_HASH = "scrypt$00$00"  # nobody logs in during a simulation
Progress = Callable[[int], None]


@dataclass
class Run:
    """What one mode saw; turned into the report's numbers by `summary`."""

    mode: str
    records: dict[int, rules.BuyerRecord] = field(default_factory=dict)
    placed: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    unpaid: int = 0
    oversold_units: int = 0
    harmed_by_day: Counter[int] = field(default_factory=Counter)
    disputes: dict[int, dict[str, Any]] = field(default_factory=dict)  # dispute id -> latest view
    incidents: list[dict[str, Any]] = field(default_factory=list)
    standings: list[dict[str, Any]] = field(default_factory=list)
    job_failures: int = 0
    breaker_recovered_cents: int = 0  # breaker coupons the platform booked against the merchant (A7)


def view_expiry(value: str) -> datetime:
    return datetime.fromisoformat(value)


def compose() -> None:
    """The simulator is a composition root like `create_app`, the worker and the CLI: it installs the same
    order participants, in the same order (tuangou/composition.py)."""
    load_models()
    install_participants()


def _minute_of(hhmm: str) -> int:
    hh, _, mm = hhmm.partition(":")
    return int(hh) * 60 + int(mm)


class _NoHttp:
    """No webhook endpoints exist in a simulated city: nothing is ever sent."""

    def post(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the simulator sends no webhooks")


class Driver:
    def __init__(self, world: World, cfg: dict[str, Any], mode: str, url: str) -> None:
        compose()
        self.world, self.cfg, self.mode = world, cfg, mode
        self.people = cfg[mode]["people"]
        self.zone = ZoneInfo(world.timezone)
        self.clock = SettableClock(self.at(-1, 20 * 60))
        self.settings = Settings(database_url=url, sqlite_synchronous="OFF")
        self.db = Database(url, sqlite_synchronous="OFF", pool_size=2)
        Base.metadata.create_all(self.db.engine)
        self.gateway = SandboxGateway()
        self.jobs = JobContext(db=self.db, clock=self.clock, settings=self.settings,
                               extras={"payment_gateway": self.gateway, "http": _NoHttp()}, holder="simulator")
        self.run = Run(mode)
        self.job_names = [m.__name__.split(".")[1] for m in job_modules()]
        self.events: list[tuple[datetime, int, str, Any]] = []
        self.seq = itertools.count()
        self.stores: list[dict[str, Any]] = []  # per world store: ids and principals
        self.day_left: dict[tuple[int, date], int] = {}
        self.visiting: dict[int, tuple[int, int]] = {}  # order id -> (store, visit minute), paid and not settled
        self.complains: dict[int, bool] = {}  # order id -> the buyer opens a dispute if not served
        self.expiry_ticks: set[datetime] = set()

    # ---- time ------------------------------------------------------------------------------------------

    def at(self, day: int, minute: int) -> datetime:
        local = datetime.combine(self.world.date_of(day), time(0), self.zone) + timedelta(minutes=minute)
        return local.astimezone(UTC)

    def uow(self, readonly: bool = False) -> UnitOfWork:
        return UnitOfWork(self.db, self.clock, readonly=readonly)

    def schedule(self, when: datetime, kind: str, payload: Any = None) -> None:
        heapq.heappush(self.events, (when, next(self.seq), kind, payload))

    # ---- the city -------------------------------------------------------------------------------------

    def _insert(self, name: str, rows: list[dict[str, Any]]) -> list[int]:
        table = Base.metadata.tables[name]
        with self.db.engine.begin() as conn:
            before = conn.scalar(select(table.c.id).order_by(table.c.id.desc()).limit(1)) or 0
            for i in range(0, len(rows), 1000):
                conn.execute(table.insert(), rows[i:i + 1000])
            return list(conn.scalars(select(table.c.id).where(table.c.id > before).order_by(table.c.id)))

    def build_city(self) -> None:
        """Accounts in bulk (one shared password hash: nobody logs in), then everything else through services."""
        now, w = self.clock.now(), self.world
        user = {"password_hash": PASSWORD_HASH, "active": True, "created_at": now}
        self.ops = Principal(self._insert("users", [{"email": "ops@sim.tuangou", "name": "ops", "role": "ops",
                                                     "merchant_id": None, **user}])[0], Role.OPS)
        merchant_ids = self._insert("merchants", [{"name": f"Merchant {s.index}", "status": "active",
                                                   "created_at": now} for s in w.stores])
        owners = self._insert("users", [{"email": f"m{s.index}@sim.tuangou", "name": f"m{s.index}",
                                         "role": "merchant", "merchant_id": m, **user}
                                        for s, m in zip(w.stores, merchant_ids, strict=True)])
        self.buyers = self._insert("users", [{"email": f"b{b}@sim.tuangou", "name": f"b{b}", "role": "buyer",
                                              "merchant_id": None, **user} for b in range(w.buyers)])
        self._apply_policies()
        valid_until = self.at(w.days + int(self.cfg["world"]["settle_days"]) + 14, 0)
        for s, m, owner in zip(w.stores, merchant_ids, owners, strict=True):
            me = Principal(owner, Role.MERCHANT, m)
            store = catalog.create_store(self.uow(), me, f"{s.category} store {s.index}", s.category, w.timezone)
            capacity.declare_capacity(self.uow(), me, store.id, self._declaration(s.declared, s.category),
                                      {5: s.weekend_factor, 6: s.weekend_factor}, {})
            deal = catalog.create_deal(self.uow(), me, store.id, title=f"{s.category} deal {s.index}" + (
                " (buy one get one)" if s.flash else ""), kind="voucher", price_cents=s.price_cents,
                original_price_cents=s.price_cents * 2 if s.flash else s.price_cents * 3 // 2,
                valid_from=self.clock.now(), valid_until=valid_until, daily_cap=s.offer, large_promotion=s.flash)
            self.stores.append({"merchant": me, "store_id": store.id, "deal_id": deal.id})
            self._publish(s.index)

    def _declaration(self, units: float, category: str) -> dict[str, Any]:
        """A declaration whose bottleneck is `units` a day over ten opening hours."""
        if category == "beverage":  # milk tea: the sealing machine is the bottleneck (seed 000)
            return {"opens": "10:00", "closes": "20:00", "machines": [{"name": "sealer", "per_hour": units / 10}]}
        return {"opens": "10:00", "closes": "20:00", "max_reception_per_day": int(units)}

    def _publish(self, index: int) -> None:
        """The merchant publishes; a large promotion that needs an audit gets one, and ops inspect the store."""
        s, st = self.world.stores[index], self.stores[index]
        try:
            catalog.publish_deal(self.uow(), st["merchant"], st["deal_id"])
            return
        except DomainError as exc:
            if exc.code != "capacity_audit_required":
                raise
        audit = capacity.request_audit(self.uow(), st["merchant"], st["deal_id"])
        capacity.record_inspection(self.uow(), self.ops, audit["id"], self._declaration(s.capacity, s.category),
                                   "counted on site", "pre-sale inspection")
        capacity.decide_audit(self.uow(), self.ops, audit["id"], True, "inspected")
        catalog.publish_deal(self.uow(), st["merchant"], st["deal_id"])

    def _apply_policies(self) -> None:
        """The mode's overrides, stored like any ops decision (core/policy.py), with a reason."""
        pol = self.cfg[self.mode]["policies"]
        reason = f"simulator: governance {self.mode}"
        if pol.get("governance"):
            capacity.set_policy(self.uow(), self.ops, dict(pol["governance"]), reason)
        if pol.get("disputes"):
            dispute_policy.update_policy(self.uow(), self.ops, dict(pol["disputes"]), reason)
        if pol.get("accountability"):
            merchants.set_policy(self.uow(), self.ops, dict(pol["accountability"]), reason)
        if pol.get("monitoring"):
            monitoring.set_policy(self.uow(), self.ops, dict(pol["monitoring"]), reason)

    # ---- the week ----------------------------------------------------------------------------------------

    def plan(self) -> None:
        w = self.world
        for i, o in enumerate(w.orders):
            self.schedule(self.at(o.day, o.minute), "order", i)
        for d in w.disruptions:
            if w.stores[d.store].honesty == "truthful":  # the others keep quiet and hope
                self.schedule(self.at(d.day, d.minute), "disruption", d)
        total = w.days + int(self.cfg["world"]["settle_days"])
        for day in range(total):
            for hour in range(9, 23):
                self.schedule(self.at(day, hour * 60), "serve", (day, hour))
            worker = self.cfg["worker"]
            full = {_minute_of(t) for t in worker["full_ticks"]}
            for minute in sorted(full):
                self.schedule(self.at(day, minute), "tick", None)
            light = [j for j in self.job_names if j not in worker["light_tick_skips"]]
            for hour in range(7, 24) if day < w.days else range(3, 24, 4):
                if hour * 60 + 2 not in full:
                    self.schedule(self.at(day, hour * 60 + 2), "tick", light)
        self.end = self.at(total, 0)

    def simulate(self, progress: Progress | None = None) -> Run:
        self.build_city()
        self.plan()
        handlers: dict[str, Callable[[Any], None]] = {
            "order": self._order, "disruption": self._disruption, "serve": self._serve, "tick": self._tick,
            "dispute": self._dispute, "decide": self._decide, "republish": self._republish}
        while self.events:
            when, _, kind, payload = heapq.heappop(self.events)
            self.clock.set(when)
            handlers[kind](payload)
            if progress is not None and kind == "order":
                progress(1)
        self.clock.set(self.end)
        self._tick(None)
        self._collect()
        self.db.dispose()
        return self.run

    def _order(self, i: int) -> None:
        o = self.world.orders[i]
        st = self.stores[o.store]
        buyer = Principal(self.buyers[o.buyer], Role.BUYER)
        try:
            view, _ = orders.place_order(self.uow(), buyer, st["deal_id"], o.quantity, f"sim-{i}")
        except DomainError as exc:
            self.run.refused[exc.code] += 1
            return
        self.run.placed += 1
        if not o.pays:
            # the real worker ticks every few seconds: the hold is released as soon as it expires, not at the
            # next hourly tick (else it blocks the cap for up to an hour)
            self.run.unpaid += 1
            at = (view_expiry(view.expires_at) + timedelta(minutes=1)).replace(second=0, microsecond=0)
            if at not in self.expiry_ticks:  # holds expiring in the same minute are released by one tick
                self.expiry_ticks.add(at)
                self.schedule(at, "tick", ["orders"])
            return
        try:
            paid, _ = payments.pay_order(self.uow(), buyer, view.id, f"sim-pay-{i}", self.gateway, "succeed")
        except DomainError as exc:
            self.run.refused[f"payment:{exc.code}"] += 1
            return
        if paid.status != "paid":
            self.run.refused[f"payment:{paid.status}"] += 1
            return
        self.run.records[view.id] = rules.BuyerRecord(view.id, o.store, o.quantity, view.amount_cents,
                                                      self.world.date_of(o.day))
        self.visiting[view.id] = (o.store, o.visit_minute)
        self.complains[view.id] = o.complains

    def _disruption(self, d: Any) -> None:
        st = self.stores[d.store]
        end = datetime.combine(self.world.date_of(d.day) + timedelta(days=1), time(0), self.zone)
        capacity.report_disruption(self.uow(), st["merchant"], st["store_id"], kind=d.kind, capacity_factor=d.factor,
                                   max_units=None, starts_at=self.clock.now(), ends_at=end, deal_id=None,
                                   reason=f"{d.kind.replace('_', ' ')} today")
        # the breaker pauses only the disrupted day (it reopens with its cap); a delisted deal is put back on sale
        self.schedule(end.astimezone(UTC) + timedelta(minutes=10), "republish", d.store)

    def _republish(self, store: int) -> None:
        st = self.stores[store]
        try:
            catalog.publish_deal(self.uow(), st["merchant"], st["deal_id"])
        except DomainError as exc:  # e.g. a listing suspension: the platform says no
            self.run.refused[f"republish:{exc.code}"] += 1

    def _serve(self, slot: tuple[int, int]) -> None:
        """Buyers who came in the past hour are served while the store really has capacity left."""
        day, hour = slot
        today = self.world.date_of(day)
        due = [oid for oid, (_, minute) in self.visiting.items() if (hour - 1) * 60 <= minute < hour * 60]
        if not due:
            return
        with self.uow(readonly=True) as uow:
            facts = {oid: orders.order_facts(uow, oid) for oid in due}
        visits: dict[int, list[rules.Visit]] = defaultdict(list)
        for oid in due:
            f, rec = facts[oid], self.run.records[oid]
            if f["status"] != "paid":  # refunded before the day (the breaker found no other date)
                rec.refunded_before_service = f["status"] in ("refunded", "partially_refunded")
                del self.visiting[oid]
            elif f["service_date"] == today:
                visits[rec.store].append(rules.Visit(oid, f["quantity"], self.visiting.pop(oid)[1]))
        for store, group in sorted(visits.items()):
            key = (store, today)
            left = self.day_left.get(key, self.world.capacity_on(store, day))
            served, failed, left = rules.serve(group, left)
            self.day_left[key] = left
            for oid in served:
                self.run.records[oid].served_on = today
            for oid in failed:
                rec = self.run.records[oid]
                minute = next(v.visit_minute for v in group if v.order_id == oid)
                rec.failed_at = self.at(day, minute)
                self.run.oversold_units += rec.quantity
                self.run.harmed_by_day[day] += 1
                if self.complains.get(oid):
                    self.schedule(self.clock.now() + timedelta(minutes=5), "dispute", oid)

    def _dispute(self, order_id: int) -> None:
        rec = self.run.records[order_id]
        buyer = Principal(self._buyer_of(order_id), Role.BUYER)
        try:
            view = disputes.open_dispute(self.uow(), buyer, order_id, "cannot_fulfil", "no table when we came")
        except DomainError as exc:
            self.run.refused[f"dispute:{exc.code}"] += 1
            return
        self._note(view, rec)
        if view.status == "confirmed":
            return
        admits = self.people.get("merchant_admits_minutes")
        if admits is not None and self.world.stores[rec.store].honesty == "truthful":
            self.schedule(self.clock.now() + timedelta(minutes=int(admits)), "decide", (view.id, "merchant"))
        self.schedule(self.clock.now() + timedelta(minutes=int(self.people["ops_decides_minutes"])), "decide",
                      (view.id, "ops"))

    def _buyer_of(self, order_id: int) -> int:
        with self.uow(readonly=True) as uow:
            return int(orders.order_facts(uow, order_id)["buyer_id"])

    def _decide(self, job: tuple[int, str]) -> None:
        dispute_id, who = job
        if self.run.disputes.get(dispute_id, {}).get("status") == "confirmed":
            return
        rec = self.run.records[self.run.disputes[dispute_id]["order_id"]]
        try:
            if who == "merchant":
                actor = self.stores[rec.store]["merchant"]
                view = disputes.confirm_dispute(self.uow(), actor, dispute_id, "we could not serve you")
            else:
                view = disputes.confirm_dispute(self.uow(), self.ops, dispute_id, "the store could not serve the order",
                                                oversale=bool(self.people["ops_flags_oversale"]))
        except DomainError as exc:
            self.run.refused[f"decide:{exc.code}"] += 1
            return
        self._note(view, rec)

    def _note(self, view: Any, rec: rules.BuyerRecord) -> None:
        self.run.disputes[view.id] = {"order_id": view.order_id, "status": view.status, "tier": view.tier,
                                      "remedy": view.remedy, "decided_at": view.decided_at,
                                      "coupons_issued_at": [c["issued_at"] for c in view.coupons]}
        if view.status == "confirmed" and view.decided_at:
            rec.remedied_at = datetime.fromisoformat(view.decided_at)
            rec.remedy_refund_cents = int(view.remedy.get("refund_cents", 0))
            rec.remedy_extra_cents = int(view.remedy.get("coupon_cents", 0)) + int(
                view.remedy.get("side_item_cents", 0))

    def _tick(self, only: list[str] | None) -> None:
        results = run_all(self.jobs, only=only)
        self.run.job_failures += sum(1 for v in results.values() if v == "failed")

    # ---- after the week ----------------------------------------------------------------------------------

    def _collect(self) -> None:
        for st in self.stores:
            self.run.incidents += governance.list_incidents(self.uow(readonly=True), self.ops, st["deal_id"])
            self.run.standings.append(merchants.standing(self.uow(readonly=True), self.ops,
                                                         st["merchant"].merchant_id))
            claims = recoveries.list_recoveries(self.uow(readonly=True), self.ops,
                                                merchant_id=st["merchant"].merchant_id)["items"]
            self.run.breaker_recovered_cents += sum(c["amount_cents"] for c in claims
                                                    if c["ref"].startswith("coupon:"))
        with self.uow(readonly=True) as uow:  # paid orders whose day never came inside the run
            for oid in list(self.visiting):
                if orders.order_facts(uow, oid)["status"] != "paid":
                    self.run.records[oid].refunded_before_service = True
