"""The 08:00 stock suggestion and the hourly sales push (A2, A5), in bulk: each tick claims up to a batch of
sends in one statement, reads the deals, plans and counters of the whole batch in a few queries, and writes
the inbox messages in one insert. A send is claimed once, so reruns and a second worker send nothing."""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from tuangou.capacity import rules as capacity_rules
from tuangou.capacity import service as capacity
from tuangou.catalog import rules as catalog_rules
from tuangou.catalog import service as catalog
from tuangou.core.db import UnitOfWork, upsertable_insert
from tuangou.governance.models import ScheduledSend
from tuangou.notify import service as notify

SEND_BATCH = 500  # sends per tick: a tick stays short, the rest go out on the next ticks


def _sent(uow: UnitOfWork, kind: str, period: str) -> set[int]:
    return set(uow.session.scalars(select(ScheduledSend.subject_id).where(ScheduledSend.kind == kind,
                                                                          ScheduledSend.period == period)))


def _claim(uow: UnitOfWork, kind: str, due: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Claim (subject, period) sends in one statement; returns those this transaction claimed."""
    if not due:
        return []
    t = ScheduledSend.__table__
    stmt = upsertable_insert(uow.session.get_bind().dialect.name, t).values(
        [{"kind": kind, "subject_id": s, "period": p, "created_at": uow.now} for s, p in due])
    stmt = stmt.on_conflict_do_nothing(index_elements=["kind", "subject_id", "period"])
    won = {(int(s), str(p)) for s, p in uow.session.execute(stmt.returning(t.c.subject_id, t.c.period))}
    return [d for d in due if d in won]


def send_daily_suggestions(uow: UnitOfWork) -> int:
    """From 08:00 store-local time, each live deal's merchant gets today's stock suggestion, once a day."""
    with uow:
        pol = capacity.policy(uow)
        by_zone: dict[str, list[int]] = {}
        for deal_id, _, tz in catalog.live_deals(uow):
            by_zone.setdefault(tz, []).append(deal_id)
        due: list[tuple[int, str]] = []
        for tz, deal_ids in sorted(by_zone.items()):
            local = uow.now.astimezone(ZoneInfo(tz))
            if local.hour < pol.suggestion_hour:
                continue
            period = local.date().isoformat()
            done = _sent(uow, "suggestion", period)
            due += [(d, period) for d in deal_ids if d not in done]
        claimed = _claim(uow, "suggestion", due[:SEND_BATCH])
        facts = {f["id"]: f for f in catalog.deal_facts_many(uow, [d for d, _ in claimed])}
        # goods and slot deals have no daily capacity plan; claimed all the same so they are not retried
        planned = [facts[d] for d, _ in claimed if facts[d]["kind"] == "voucher" and not facts[d]["slots"]]
        periods = dict(claimed)
        plans = capacity.day_plans(uow, planned, {f["id"]: date.fromisoformat(periods[f["id"]]) for f in planned})
        messages = []
        for f in planned:
            plan = plans[f["id"]]
            can_serve = plan["capacity"] if plan["capacity"] is not None else plan["cap"]
            title = f"Today you can serve {can_serve}; you have {plan['offer']} on sale: {f['title']}"
            body = ("Lower the cap now if you cannot serve them all." if plan["offer"] > can_serve
                    else "Your offer fits what you can serve.")
            messages.append(notify.Message(f["merchant_id"], "stock_suggestion", title, body,
                                           {"deal_id": f["id"], **plan}))
        notify.notify_merchants(uow, messages)
        uow.commit()
    return len(messages)


def send_hourly_pushes(uow: UnitOfWork) -> int:
    """Once an hour, each merchant with something on sale gets sold / remaining per deal (red past 85%)."""
    with uow:
        pol = capacity.policy(uow)
        hour = uow.now.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%HZ")
        by_merchant: dict[int, list[int]] = {}
        for deal_id, merchant_id, _ in catalog.live_deals(uow):
            by_merchant.setdefault(merchant_id, []).append(deal_id)
        done = _sent(uow, "hourly", hour)
        claimed = [m for m, _ in _claim(uow, "hourly", [(m, hour) for m in sorted(by_merchant) if m not in done]
                                        [:SEND_BATCH])]
        ids = [d for m in claimed for d in by_merchant[m]]
        facts = {f["id"]: f for f in catalog.deal_facts_many(uow, ids)}
        days = {uow.now.astimezone(ZoneInfo(f["timezone"])).date() for f in facts.values()}
        buckets = catalog.buckets_from(uow, ids, min(days).isoformat(), max(days).isoformat()) if days else {}
        messages = []
        for merchant_id in claimed:
            lines, red = [], 0
            for deal_id in by_merchant[merchant_id]:
                cap, sold, held = _today_counts(uow, facts[deal_id], buckets[deal_id])
                line, flagged = capacity_rules.sales_line(facts[deal_id]["title"], cap, sold, held,
                                                          pol.red_flag_percent)
                lines.append(line)
                red += flagged
            count = len(by_merchant[merchant_id])
            messages.append(notify.Message(
                merchant_id, "sales_push", f"Sales this hour: {count} deal(s) on sale"
                + (f", {red} past {pol.red_flag_percent}%" if red else ""), "\n".join(lines),
                {"hour": hour, "red_flags": red}, "warning" if red else "info"))
        notify.notify_merchants(uow, messages)
        uow.commit()
    return len(messages)


def _today_counts(uow: UnitOfWork, facts: dict[str, Any], buckets: list[catalog_rules.BucketState]
                  ) -> tuple[int, int, int]:
    today = uow.now.astimezone(ZoneInfo(facts["timezone"])).date().isoformat()
    keys = [b for b in buckets
            if (b.key == catalog_rules.STOCK_BUCKET if facts["kind"] == "goods" else b.key.split("@")[0] == today)]
    return sum(b.cap for b in keys), sum(b.sold for b in keys), sum(b.reserved for b in keys)
