"""The 08:00 stock suggestion and the hourly sales push (A2, A5), in bulk: each tick reads only its batch of
due subjects (the catalog leaves out those already sent), claims them in one statement, reads the deals,
plans and counters of the whole batch in a few queries, and writes the inbox messages in one insert. A send
is claimed once, so reruns and a second worker send nothing."""

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


def _sent(kind: str, period: str) -> Any:
    """The subjects already sent `kind` for `period`, as a subquery the catalog's reads leave out."""
    return select(ScheduledSend.subject_id).where(ScheduledSend.kind == kind, ScheduledSend.period == period)


def _claim(uow: UnitOfWork, kind: str, due: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Claim (subject, period) sends in one statement; returns those this transaction claimed."""
    if not due:
        return []
    # many rows, one statement compiled once: SQLAlchemy sends them as multi-row INSERTs (insertmanyvalues)
    rows = [{"kind": kind, "subject_id": s, "period": p, "created_at": uow.now} for s, p in due]
    won = {(int(s), str(p)) for s, p in uow.conn.execute(_claim_stmt(uow.conn.dialect.name), rows)}
    return [d for d in due if d in won]


_claims: dict[str, Any] = {}


def _claim_stmt(dialect: str) -> Any:
    stmt = _claims.get(dialect)
    if stmt is None:
        t = ScheduledSend.__table__
        stmt = _claims[dialect] = (upsertable_insert(dialect, t)
                                   .on_conflict_do_nothing(index_elements=["kind", "subject_id", "period"])
                                   .returning(t.c.subject_id, t.c.period))
    return stmt


def suggestion_text(facts: dict[str, Any], plan: dict[str, Any]) -> tuple[str, str]:
    """The 08:00 suggestion's title and body: what the day (goods: the storage) allows against the offer."""
    can_serve = plan["capacity"] if plan["capacity"] is not None else plan["cap"]
    if facts["kind"] == catalog_rules.DealKind.GOODS:
        title = f"Today you can hold {can_serve}; you have {plan['offer']} on sale: {facts['title']}"
    else:
        title = f"Today you can serve {can_serve}; you have {plan['offer']} on sale: {facts['title']}"
    body = ("Lower the cap now if you cannot serve them all." if plan["offer"] > can_serve
            else "Your offer fits what you can serve.")
    return title, body


def send_daily_suggestions(uow: UnitOfWork) -> int:
    """From 08:00 store-local time, each live deal's merchant gets today's stock suggestion, once a day: daily
    and slotted vouchers (what the day can serve) and goods (what the storage holds)."""
    with uow:
        pol = capacity.policy(uow)
        due: list[tuple[int, str]] = []
        for tz in catalog.live_timezones(uow):
            local = uow.now.astimezone(ZoneInfo(tz))
            if local.hour < pol.suggestion_hour or len(due) >= SEND_BATCH:
                continue
            period = local.date().isoformat()
            due += [(d, period) for d in catalog.live_deal_ids(uow, tz, _sent("suggestion", period),
                                                               SEND_BATCH - len(due))]
        claimed = _claim(uow, "suggestion", due)
        planned = catalog.deal_facts_many(uow, [d for d, _ in claimed])
        periods = dict(claimed)
        plans = capacity.day_plans(uow, planned, {f["id"]: date.fromisoformat(periods[f["id"]]) for f in planned})
        messages = []
        for f in planned:
            plan = plans[f["id"]]
            title, body = suggestion_text(f, plan)
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
        due = catalog.live_merchant_ids(uow, _sent("hourly", hour), SEND_BATCH)
        claimed = [m for m, _ in _claim(uow, "hourly", [(m, hour) for m in due])]
        by_merchant = catalog.live_deals_of(uow, claimed)
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
