"""The dynamic cap of every sellable unit: inputs read once, one plan per day, buckets moved to match.

A voucher deal's day is one bucket, or one per time slot (the day's capacity split over the slots, see
`rules.split_slots`); a goods deal has one stock bucket, bounded by what the store's storage holds (the cold
room) under today's disruptions.

Everything here runs inside the caller's unit of work and never commits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select, update

from tuangou.capacity import participants, rules
from tuangou.capacity.models import (
    CapacityAudit,
    CapacityDeclaration,
    CapacityDisruption,
    CapacityRefresh,
    CapOffer,
    DealConsumption,
)
from tuangou.catalog import rules as catalog_rules
from tuangou.catalog import service as catalog
from tuangou.core import policy as policies
from tuangou.core.auth import Principal
from tuangou.core.db import InTransaction, UnitOfWork, insert_ignore, upsertable_insert
from tuangou.core.errors import ValidationFailed

POLICY = "governance"


def _parse_policy(stored: dict[str, Any] | None) -> rules.GovernancePolicy:
    base = rules.GovernancePolicy()
    return base.merged(stored) if stored is not None else base


def cached_policy(tx: InTransaction) -> rules.GovernancePolicy:
    """Inside an open unit of work: the policy from this process's copy (the order path: no query
    while the copy is fresh; core/policy.py says how fresh)."""
    return policies.cached(tx.session, POLICY, _parse_policy)


def policy(uow: InTransaction) -> rules.GovernancePolicy:
    """Inside an open unit of work: the current policy (stored values over the seed defaults)."""
    stored = policies.load(uow.session, POLICY)
    base = rules.GovernancePolicy()
    return base.merged(stored) if stored is not None else base


def declaration_of(raw: dict[str, Any]) -> rules.Declaration:
    plain = {k: v for k, v in raw.items() if k != "machines"}
    return rules.Declaration(**plain, machines=tuple(rules.machines_from(raw.get("machines", []))))


def approved_cap(uow: InTransaction, deal_id: int) -> int | None:
    """Inside an open unit of work: the cap of the deal's latest approved audit, if any."""
    return uow.session.scalar(select(CapacityAudit.approved_cap).where(
        CapacityAudit.deal_id == deal_id, CapacityAudit.status == rules.AuditStatus.APPROVED)
        .order_by(CapacityAudit.decided_at.desc(), CapacityAudit.id.desc()).limit(1))


def base_of(facts: dict[str, Any], audited: int | None, row: CapacityDeclaration | None,
            consumption: dict[str, Any] | None) -> int | None:
    """A deal's capacity before factors and disruptions: the approved audit, else the declared bottleneck
    (a day's service for vouchers, the storage for goods)."""
    if audited is not None or row is None:
        return audited
    use = {k: float(v) for k, v in (consumption or {}).items()}
    decl = declaration_of(row.declaration)
    if facts["kind"] == catalog_rules.DealKind.GOODS:
        return rules.storage_bottleneck(decl, use).cap
    return rules.bottleneck(decl, use).cap


def capacity_base(uow: InTransaction, facts: dict[str, Any]) -> int | None:
    """Units the store can serve of this deal (a day; goods: at once): the approved audit, else the declared
    bottleneck."""
    row = uow.session.scalar(select(CapacityDeclaration).where(CapacityDeclaration.store_id == facts["store_id"]))
    use = uow.session.get(DealConsumption, facts["id"])
    return base_of(facts, approved_cap(uow, facts["id"]), row, use.consumption if use else None)


@dataclass
class Inputs:
    facts: dict[str, Any]
    base: int | None
    max_factor: float
    weekday_factors: dict[int, float] = field(default_factory=dict)
    holidays: dict[date, float] = field(default_factory=dict)
    disruptions: list[rules.Disruption] = field(default_factory=list)
    offers: dict[str, int] = field(default_factory=dict)
    now: datetime | None = None
    dynamic: bool = True  # the policy's dynamic_daily_cap: off, the offer alone makes the cap


def _inputs(uow: InTransaction, facts: dict[str, Any]) -> Inputs:
    row = uow.session.scalar(select(CapacityDeclaration).where(CapacityDeclaration.store_id == facts["store_id"]))
    disruptions = list(uow.session.scalars(select(CapacityDisruption).where(
        CapacityDisruption.store_id == facts["store_id"],
        or_(CapacityDisruption.deal_id.is_(None), CapacityDisruption.deal_id == facts["id"]),
        or_(CapacityDisruption.ends_at.is_(None), CapacityDisruption.ends_at > uow.now))))
    offers = {o.key: o.cap for o in uow.session.scalars(select(CapOffer).where(CapOffer.deal_id == facts["id"]))}
    return assemble(facts, capacity_base(uow, facts), policy(uow), uow.now, row, disruptions, offers)


def assemble(facts: dict[str, Any], base: int | None, pol: rules.GovernancePolicy, now: datetime,
             row: CapacityDeclaration | None, disruptions: list[CapacityDisruption], offers: dict[str, int]
             ) -> Inputs:
    """A deal's inputs from rows already read (one deal, or many at once by the refresh job)."""
    inputs = Inputs(facts, base, pol.max_day_factor, now=now, dynamic=pol.dynamic_daily_cap, offers=offers)
    if row is not None:
        inputs.weekday_factors = {int(k): float(v) for k, v in (row.weekday_factors or {}).items()}
        inputs.holidays = {date.fromisoformat(k): float(v) for k, v in (row.holidays or {}).items()}
    inputs.disruptions = [rules.Disruption(d.starts_at, d.ends_at, d.capacity_factor, d.max_units)
                          for d in disruptions if d.deal_id is None or d.deal_id == facts["id"]]
    return inputs


def _today(uow: InTransaction, facts: dict[str, Any]) -> date:
    return uow.now.astimezone(ZoneInfo(facts["timezone"])).date()


Buckets = dict[str, catalog_rules.BucketState]


def _plan(inputs: Inputs, day: date, buckets: Buckets | None = None) -> dict[str, Any]:
    """The plan of `day` (goods: of the stock, under `day`'s disruptions). A slotted deal's plan also has
    `slots`: each slot bucket's cap, split from the day's by `rules.split_slots` on the slots' counters in
    `buckets`. A goods deal's offer is its recorded stock offer, else its stock bucket's cap."""
    facts, have = inputs.facts, buckets or {}
    goods = facts["kind"] == catalog_rules.DealKind.GOODS
    if goods:
        key, factor = catalog_rules.STOCK_BUCKET, 1.0  # storage holds the same on a Saturday
        stock = have.get(key)
        offers = {key: inputs.offers.get(key, stock.cap if stock is not None else 0)}
    else:
        key = catalog_rules.date_bucket(day)
        factor = rules.day_factor(day, inputs.weekday_factors, inputs.holidays, inputs.max_factor)
        offers = ({catalog_rules.date_bucket(day, s): inputs.offers.get(catalog_rules.date_bucket(day, s), cap)
                   for s, cap in facts["slots"].items()} if facts["slots"]
                  else {key: inputs.offers.get(key, facts["daily_cap"] or 0)})
    offer = sum(offers.values())
    hits = [d for d in inputs.disruptions if rules.disruption_hits(d, day, facts["timezone"], inputs.now)]
    # a store with nothing declared is limited by its offer, so a disruption still cuts that
    capacity = None if not inputs.dynamic or (inputs.base is None and not hits) else rules.daily_cap(
        inputs.base if inputs.base is not None else offer, factor, hits)
    plan: dict[str, Any] = {"service_date": day.isoformat(), "key": key, "base": inputs.base, "factor": factor,
            "disruptions": len(hits), "capacity": capacity, "offer": offer,
            "cap": rules.sellable_cap(offer, capacity)}
    if facts["slots"] and not goods:
        current = {k: have[k].cap for k in offers if k in have}
        plan["slots"] = rules.split_slots(
            capacity, offers, {k: have[k].sold for k in offers if k in have},
            {k: have[k].reserved for k in offers if k in have}, current if len(current) == len(offers) else None)
    return plan


def plan_day(inputs: Inputs, day: date, buckets: Buckets | None = None) -> dict[str, Any]:
    """How a deal's cap for `day` is made, from inputs (and, for slots and stock, buckets) already read."""
    return _plan(inputs, day, buckets)


def governed(facts: dict[str, Any]) -> bool:
    """Every sellable unit follows capacity: daily and slotted vouchers, and goods."""
    return facts["kind"] in (catalog_rules.DealKind.VOUCHER, catalog_rules.DealKind.GOODS)


def daily(facts: dict[str, Any]) -> bool:
    """A voucher deal sold by the day, without time slots (one bucket a day)."""
    return facts["kind"] == catalog_rules.DealKind.VOUCHER and not facts["slots"]


def _buckets(uow: InTransaction, deal_id: int) -> Buckets:
    return {b.key: b for b in catalog.buckets_of(uow, deal_id)}


def day_plan(uow: UnitOfWork, deal_id: int, day: date) -> dict[str, Any]:
    """Inside an open unit of work: how a deal's cap for `day` is made."""
    facts = catalog.deal_facts(uow, deal_id)
    return _plan(_inputs(uow, facts), day, _buckets(uow, deal_id))


def day_target(uow: InTransaction, deal_id: int, day: date, slot: str | None = None) -> int:
    """Inside an open unit of work: the cap a bucket of `day` (and `slot`) should have."""
    facts = catalog.deal_facts(uow, deal_id)
    plan = _plan(_inputs(uow, facts), day, _buckets(uow, deal_id) if facts["slots"] else None)
    if facts["slots"]:
        return int(plan["slots"].get(catalog_rules.date_bucket(day, slot), 0)) if slot else int(plan["cap"])
    return int(plan["cap"])


def follow_offer(uow: InTransaction, deal_id: int, key: str, offer: int, cause: str) -> int:
    """Inside an open unit of work, after the merchant's offer for bucket `key` became `offer`: the cap the
    bucket should have. A slotted day is split again as a whole first (its other slots' caps move with it, and
    a slot left below what it sold trips the breaker), so the day never holds more than its capacity."""
    facts = catalog.deal_facts(uow, deal_id)
    if not governed(facts) or key == catalog_rules.TOTAL_BUCKET:
        return offer
    if key == catalog_rules.STOCK_BUCKET:
        if facts["kind"] != catalog_rules.DealKind.GOODS:
            return offer
        return int(_plan(_inputs(uow, facts), _today(uow, facts), _buckets(uow, deal_id))["cap"])
    day, _, slot = key.partition("@")
    if bool(slot) != bool(facts["slots"]):
        return offer  # a day key of a slotted deal (or a slot of a daily one) is no bucket capacity plans
    if slot:
        recompute_deal(uow, deal_id, cause, [date.fromisoformat(day)])  # drafts: nothing to move yet
    return day_target(uow, deal_id, date.fromisoformat(day), slot or None)


def recompute_deal(uow: InTransaction, deal_id: int, cause: str, days: list[date] | None = None) -> list[str]:
    """Inside an open unit of work: move the deal's date buckets to their planned caps.

    First every cap moves, then each bucket left with more sold than its cap trips
    the circuit breaker, so over-sold orders are moved onto already lowered caps.
    Returns the keys of buckets that tripped.
    """
    facts = catalog.deal_facts(uow, deal_id)
    if not governed(facts) or facts["status"] == catalog_rules.DealStatus.DRAFT:
        return []
    # two recomputes of one deal run one after the other, the second reading the first's inputs
    facts = catalog.deal_facts(uow, deal_id, lock=True)
    return recompute_loaded(uow, facts, _inputs(uow, facts), catalog.buckets_of(uow, deal_id), cause,
                            policy(uow), days)


def recompute_loaded(uow: InTransaction, facts: dict[str, Any], inputs: Inputs, buckets_list: list[Any],
                     cause: str, pol: rules.GovernancePolicy, days: list[date] | None = None,
                     dues: dict[int, datetime] | None = None) -> list[str]:
    """`recompute_deal` on inputs and buckets already read (and the deal locked). Without `days` (every
    existing bucket and the horizon), it also records when time alone next changes the caps (into `dues`,
    for the caller to write at once, when given)."""
    today = _today(uow, facts)
    last = facts["valid_until"].astimezone(ZoneInfo(facts["timezone"])).date()
    buckets = {b.key: b for b in buckets_list}
    full = days is None
    if days is None:
        existing = {date.fromisoformat(k.split("@", 1)[0]) for k in buckets if k[:1].isdigit()}
        days = sorted(existing | {today + timedelta(days=i) for i in range(pol.recompute_horizon_days + 1)})
    changes: dict[str, int] = {}
    if facts["kind"] == catalog_rules.DealKind.GOODS:
        plan = _plan(inputs, today, buckets)
        stock = buckets.get(plan["key"])
        if stock is not None and stock.cap != plan["cap"]:
            keep_offer(uow, facts["id"], plan["key"], plan["offer"])
            changes[plan["key"]] = plan["cap"]
        days = []
    for day in days:
        if day < today or day > last:
            continue
        plan = _plan(inputs, day, buckets)
        targets = plan.get("slots") or {plan["key"]: plan["cap"]}
        for key, cap in targets.items():
            bucket = buckets.get(key)
            if bucket is not None and bucket.cap == cap:
                continue
            slot = key.partition("@")[2]
            if bucket is None and cap == (facts["slots"].get(slot, 0) if slot else facts["daily_cap"] or 0):
                continue  # the first order makes this bucket with the deal's default cap, which is right
            changes[key] = cap
    tripped = [m["key"] for m in catalog.apply_caps(uow, facts["id"], changes)
               if m["sold"] > m["cap"] or m["over"] > 0]
    if full:
        due = {facts["id"]: rules.next_refresh(uow.now, facts["timezone"], inputs.disruptions)}
        if dues is None:
            record_dues(uow, due)
        else:
            dues.update(due)
    if tripped and pol.circuit_breaker:
        for key in tripped:  # the circuit breaker (governance) takes part here
            for p in participants.registry.items:
                p.on_cap_below_sold(uow, facts["id"], key, cause)
    return tripped


def keep_offer(uow: InTransaction, deal_id: int, key: str, offer: int) -> None:
    """Inside an open unit of work: before capacity first lowers a bucket whose cap is the merchant's offer
    (a goods deal's stock), the offer is recorded, so the cap comes back when the capacity does."""
    insert_ignore(uow.session, CapOffer.__table__, {"deal_id": deal_id, "key": key, "cap": offer}, ["deal_id", "key"])


def record_dues(uow: InTransaction, dues: dict[int, datetime]) -> None:
    """Inside an open unit of work: when each deal next needs the refresh job."""
    if not dues:
        return
    stmt = upsertable_insert(uow.session.get_bind().dialect.name, CapacityRefresh.__table__).values(
        [{"deal_id": d, "due_at": at} for d, at in sorted(dues.items())])
    uow.session.execute(stmt.on_conflict_do_update(index_elements=["deal_id"], set_={"due_at": stmt.excluded.due_at}))


def recompute_store(uow: UnitOfWork, store_id: int, cause: str) -> list[str]:
    tripped = []
    for deal_id in catalog.deal_ids(uow, store_id=store_id, statuses=("published", "delisted")):
        tripped += [f"{deal_id}:{k}" for k in recompute_deal(uow, deal_id, cause)]
    return tripped


def governed_deal_ids(uow: UnitOfWork) -> list[int]:
    """Inside an open unit of work: live deals whose caps capacity inputs can move (a declaration,
    a disruption not long over, an approved audit, an offer); the others keep their own caps."""
    stores = set(uow.session.scalars(select(CapacityDeclaration.store_id)))
    stores |= set(uow.session.scalars(select(CapacityDisruption.store_id).where(
        or_(CapacityDisruption.ends_at.is_(None), CapacityDisruption.ends_at > uow.now - timedelta(days=1)))))
    deals = set(uow.session.scalars(select(CapacityAudit.deal_id).where(
        CapacityAudit.status == rules.AuditStatus.APPROVED)))
    deals |= set(uow.session.scalars(select(CapOffer.deal_id)))
    if not stores and not deals:
        return []
    live = catalog.deal_ids(uow, statuses=("published",))
    by_store = set(catalog.deal_ids(uow, store_ids=stores, statuses=("published",))) if stores else set()
    return sorted((deals & set(live)) | by_store)


def due_for_refresh(uow: InTransaction, deal_ids: list[int]) -> list[int]:
    """Inside an open unit of work: the deals among `deal_ids` whose caps time may have moved since their
    last recompute (or that were never recomputed)."""
    due = dict(uow.session.execute(select(CapacityRefresh.deal_id, CapacityRefresh.due_at)).all())
    return [d for d in deal_ids if d not in due or due[d] <= uow.now]


def refresh_all_soon(uow: InTransaction) -> None:
    """Inside an open unit of work: every deal is due at the next refresh (the policy changed)."""
    uow.session.execute(update(CapacityRefresh).values(due_at=uow.now))


def recompute_deal_upcoming(uow: UnitOfWork, deal_id: int) -> list[str]:
    """Inside an open unit of work: recompute a deal's caps over its existing buckets and the horizon."""
    facts = catalog.deal_facts(uow, deal_id)
    if not governed(facts):
        return []
    return recompute_deal(uow, deal_id, "daily capacity update")


def set_offer(uow: UnitOfWork, deal_id: int, key: str, cap: int) -> None:
    """Inside an open unit of work: the merchant's own cap for one bucket."""
    if not insert_ignore(uow.session, CapOffer.__table__, {"deal_id": deal_id, "key": key, "cap": cap},
                         ["deal_id", "key"]):
        uow.session.execute(update(CapOffer).where(CapOffer.deal_id == deal_id, CapOffer.key == key)
                            .values(cap=cap))


def current_offer(uow: UnitOfWork, deal_id: int, key: str) -> int:
    """Inside an open unit of work: the merchant's cap for a bucket before capacity limits it."""
    offer = uow.session.scalar(select(CapOffer.cap).where(CapOffer.deal_id == deal_id, CapOffer.key == key))
    if offer is not None:
        return int(offer)
    facts = catalog.deal_facts(uow, deal_id)
    slot = key.partition("@")[2]
    if key[:1].isdigit():
        return int(facts["slots"].get(slot, 0) if slot else facts["daily_cap"] or 0)
    bucket = next((b for b in catalog.buckets_of(uow, deal_id) if b.key == key), None)
    return bucket.cap if bucket is not None else 0


def deal_day_caps(uow: UnitOfWork, actor: Principal | None, deal_id: int, start: date | None, days: int
                  ) -> list[dict[str, Any]]:
    """How each day's cap of a deal is made, with the bucket's counters."""
    if not 1 <= days <= 62:
        raise ValidationFailed("days must be 1..62")
    with uow:
        if actor is not None:
            catalog.own_deal(uow, actor, deal_id)
        facts = catalog.deal_facts(uow, deal_id)
        if not daily(facts):  # slot and stock caps are in the deal's calendar
            raise ValidationFailed("daily caps apply to voucher deals without time slots", code="not_governed")
        inputs = _inputs(uow, facts)
        first = start or _today(uow, facts)
        buckets = _buckets(uow, deal_id)
        paused = catalog.paused_dates(uow, deal_id)  # a date the circuit breaker stopped: why and since when
        out = []
        for i in range(days):
            plan = _plan(inputs, first + timedelta(days=i), buckets)
            b = buckets.get(plan["key"])
            out.append({**plan, "bucket_cap": b.cap if b else None, "sold": b.sold if b else 0,
                        "reserved": b.reserved if b else 0, "paused": paused.get(plan["key"])})
        return out


def safe_sales_for_store(uow: UnitOfWork, actor: Principal, store_id: int, activity_days: int) -> dict[str, Any]:
    """The safe-sales calculator on a store's declared daily reception (or bottleneck)."""
    with uow:
        catalog.store_facts(uow, store_id, actor)
        row = uow.session.scalar(select(CapacityDeclaration).where(CapacityDeclaration.store_id == store_id))
        if row is None:
            raise ValidationFailed("the store has declared no capacity", code="capacity_not_declared")
        decl = declaration_of(row.declaration)
        daily = decl.max_reception_per_day if decl.max_reception_per_day is not None else rules.bottleneck(decl).cap
        if daily is None:
            raise ValidationFailed("nothing in the declaration gives a daily reception", code="no_bottleneck")
        ratio = policy(uow).safe_sales_ratio
        return {"store_id": store_id, "daily_reception": daily, "activity_days": activity_days, "ratio": ratio,
                "safe_sales": rules.safe_sales(daily, activity_days, ratio)}
