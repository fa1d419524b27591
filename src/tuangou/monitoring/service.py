"""KPIs per business line and merchant, grown from outbox events; three warning levels; paused lines.

`consume_events` folds the events since the cursor into tallies (one batch per call, never a rescan of
orders); `evaluate_lines` judges every line against its targets and acts on each rise of level. The order
path asks `refuse_if_line_paused` (a process cache of the paused lines, so a normal order costs nothing).
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import timedelta
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import select, update

from tuangou.catalog import service as catalog
from tuangou.core import policy as core_policy
from tuangou.core.audit import record_audit
from tuangou.core.auth import Principal, Role
from tuangou.core.db import Database, InTransaction, UnitOfWork, insert_ignore, upsertable_insert
from tuangou.core.errors import Conflict, Forbidden, ValidationFailed
from tuangou.core.outbox import OutboxEvent, record_event
from tuangou.monitoring import lines as deal_lines
from tuangou.monitoring import rules
from tuangou.monitoring.models import BusinessLine, CheckTask, EventCursor, KpiTally, LineTransition
from tuangou.notify import service as notify

POLICY = "monitoring"
CURSOR = "kpi"
SETTLE = timedelta(seconds=2)  # events younger than this wait a tick: a slower transaction may commit a lower id
PAUSED_TTL_S = 1.0  # how stale the order path's view of paused lines may be
ALL = ("all", "*")  # the platform-wide tally behind /metrics


# ---- policy -------------------------------------------------------------------------------------

def load_policy(uow: InTransaction) -> rules.MonitoringPolicy:
    """Inside an open unit of work: the targets and levels in force."""
    stored = core_policy.load(uow.session, POLICY)
    return rules.MonitoringPolicy.from_dict(stored) if stored is not None else rules.MonitoringPolicy()


def get_policy(uow: UnitOfWork) -> dict[str, Any]:
    with uow:
        return load_policy(uow).as_dict()


def set_policy(uow: UnitOfWork, actor: Principal, changes: dict[str, Any], reason: str) -> dict[str, Any]:
    """Ops change targets or levels (merged over the policy in force), with a reason."""
    actor.require(Role.OPS)
    with uow:
        current = load_policy(uow).as_dict()
        merged = {**current, **changes}
        for key in ("targets", "line_targets"):
            if key in changes:
                merged[key] = {**current[key], **changes[key]}
        try:
            new = rules.MonitoringPolicy.from_dict(merged)
        except (TypeError, ValueError, AttributeError) as exc:
            raise ValidationFailed(f"invalid policy: {exc}") from exc
        problems = rules.policy_problems(new)
        if problems:
            raise ValidationFailed("; ".join(problems), code="invalid_policy")
        core_policy.store(uow, actor, POLICY, new.as_dict(), reason, changes)
        uow.commit()
        return new.as_dict()


# ---- folding events into tallies -----------------------------------------------------------------

def consume_events(uow: UnitOfWork, batch: int = 2000, budget_s: float = 2.0) -> int:
    """Fold the next batch of outbox events into the line, merchant and platform tallies; returns how many.

    At most `batch` events and about `budget_s` seconds of work, so a backlog drains over several ticks
    and no tick grows with it. Safe to run twice or concurrently: the cursor moves with one conditional
    UPDATE in the same transaction as the tallies, so a batch counts once or not at all.
    """
    started = time.monotonic()
    with uow:
        insert_ignore(uow.session, EventCursor.__table__, {"name": CURSOR, "last_event_id": 0,
                                                           "updated_at": uow.now}, ["name"])
        start = int(uow.session.scalar(select(EventCursor.last_event_id).where(EventCursor.name == CURSOR)) or 0)
        events = uow.session.execute(select(OutboxEvent.id, OutboxEvent.type, OutboxEvent.payload,
                                            OutboxEvent.merchant_id, OutboxEvent.occurred_at)
                                     .where(OutboxEvent.id > start).order_by(OutboxEvent.id).limit(batch)).all()
        settled = uow.now - SETTLE
        deal_lines.warm(uow, {int(p["deal_id"]) for _, _, p, _, _ in events if isinstance(p, dict) and
                    isinstance(p.get("deal_id"), int)})
        tallies: dict[tuple[str, str], rules.Tally] = defaultdict(rules.Tally)
        last, folded = start, 0
        for event_id, type_, payload, merchant_id, occurred_at in events:
            if occurred_at > settled or time.monotonic() - started > budget_s:
                break
            last, folded = event_id, folded + 1
            payload = payload if isinstance(payload, dict) else {}
            add = rules.fold(type_, payload)
            if add is None:
                continue
            tallies[ALL].add(add)
            if type_ == "DisputeConfirmed":
                tallies[("tier", str(payload.get("tier", "")))].add(add)
            deal_id = deal_lines.deal_of(uow, payload)
            line = deal_lines.deal_line(uow, deal_id, warmed="deal_id" in payload) if deal_id is not None else None
            if line is not None:
                tallies[("line", rules.line_key(line[1], line[2]))].add(add)
                merchant_id = merchant_id or line[0]
            if merchant_id:
                tallies[("merchant", str(merchant_id))].add(add)
        if last == start:
            return 0
        moved = uow.session.execute(update(EventCursor).where(EventCursor.name == CURSOR,
                                                              EventCursor.last_event_id == start)
                                    .values(last_event_id=last, updated_at=uow.now)).rowcount  # type: ignore[attr-defined]
        if not moved:  # another worker folded this batch
            return 0
        if tallies:  # one upsert adds every tally, rows taken in a fixed order (two workers never deadlock)
            stmt = upsertable_insert(uow.session.get_bind().dialect.name, KpiTally.__table__).values(
                [{"scope": scope, "key": key, **t.as_dict()} for (scope, key), t in sorted(tallies.items())])
            names = list(rules.Tally().as_dict())
            uow.session.execute(stmt.on_conflict_do_update(index_elements=["scope", "key"], set_={
                n: getattr(KpiTally.__table__.c, n) + getattr(stmt.excluded, n) for n in names}))
        uow.commit()
        return folded


def _tally(row: KpiTally | None) -> rules.Tally:
    if row is None:
        return rules.Tally()
    return rules.Tally.from_dict({name: getattr(row, name) for name in rules.TALLY_FIELDS})


# ---- judging lines -------------------------------------------------------------------------------

def _judgement_view(j: rules.Judgement) -> dict[str, Any]:
    return {"level": rules.LEVEL_NAMES[j.level], "worst": j.worst, "kpis": j.kpis, "deviations": j.deviations}


def evaluate_lines(uow: UnitOfWork) -> int:
    """Judge every line against its targets; act once per rise (check task, escalation, pause)."""
    changed = 0
    with uow:
        policy = load_policy(uow)
        rows = uow.session.scalars(select(KpiTally).where(KpiTally.scope == "line")).all()
        for row in rows:
            category, _, city = row.key.partition("/")
            j = rules.judge(_tally(row), policy.targets_for(category, city), policy)
            insert_ignore(uow.session, BusinessLine.__table__, {
                "category": category, "city": city, "level": 0, "paused": False, "judgement": {},
                "resume_reason": "", "updated_at": uow.now}, ["category", "city"])
            line = uow.session.get(BusinessLine, (category, city))
            assert line is not None
            old = rules.Level(line.level)
            if j.level == old:
                continue
            actions = rules.transition_actions(old, j.level, line.paused)
            pause = rules.Action.PAUSE in actions
            values: dict[str, Any] = {"level": int(j.level), "judgement": _judgement_view(j), "updated_at": uow.now}
            if pause:
                values.update(paused=True, paused_at=uow.now)
            won = uow.session.execute(update(BusinessLine).where(
                BusinessLine.category == category, BusinessLine.city == city, BusinessLine.level == int(old))
                .values(**values)).rowcount  # type: ignore[attr-defined]
            if not won:
                continue
            _record_transition(uow, category, city, old, j, actions)
            changed += 1
        uow.commit()
    if changed:
        invalidate_paused_cache(uow.db)
    return changed


def _record_transition(uow: UnitOfWork, category: str, city: str, old: rules.Level, j: rules.Judgement,
                       actions: list[rules.Action]) -> None:
    view = _judgement_view(j)
    t = LineTransition(category=category, city=city, from_level=int(old), to_level=int(j.level),
                       actions=[a.value for a in actions], judgement=view, actor_id=None, reason="", at=uow.now)
    uow.session.add(t)
    uow.session.flush()
    name, old_name = rules.LEVEL_NAMES[j.level], rules.LEVEL_NAMES[old]
    line = rules.line_key(category, city)
    off = f"{j.worst} {j.deviations[j.worst]}% off target" if j.worst else "back on target"
    record_event(uow.session, "BusinessLineLevelChanged", {"category": category, "city": city, "from": old_name,
                                                           "to": name, "actions": t.actions, "worst": j.worst}, uow.now)
    data = {"category": category, "city": city, "transition_id": t.id}
    if rules.Action.OPEN_CHECK in actions:
        uow.session.add(CheckTask(category=category, city=city, transition_id=t.id, kpi=j.worst or "",
                                  status="open", opened_at=uow.now))
        notify.notify_ops(uow, "kpi_check", f"Check business line {line}: {off}", f"level {name}", data, "warning")
    if rules.Action.ESCALATE in actions:
        notify.notify_ops(uow, "kpi_escalation", f"Escalated: business line {line} is {name} ({off})",
                          "for the ops lead", data, "warning")
    if rules.Action.PAUSE in actions:
        notify.notify_ops(uow, "line_paused", f"Business line {line} paused: {off}",
                          "No new listings or orders until ops resume it with a reason.", data, "critical")
    if not actions:
        notify.notify_ops(uow, "kpi_level", f"Business line {line}: {old_name} -> {name}", off, data)


def resume_line(uow: UnitOfWork, actor: Principal, category: str, city: str, reason: str) -> dict[str, Any]:
    """Ops lift a pause, with a reason. The line is paused again only after leaving red and coming back."""
    actor.require(Role.OPS)
    if not reason.strip():
        raise ValidationFailed("a reason is required", code="reason_required")
    with uow:
        done = uow.session.execute(update(BusinessLine).where(
            BusinessLine.category == category, BusinessLine.city == city, BusinessLine.paused.is_(True))
            .values(paused=False, resumed_at=uow.now, resume_reason=reason, updated_at=uow.now)).rowcount  # type: ignore[attr-defined]
        if not done:
            raise Conflict(f"business line {category}/{city} is not paused", code="line_not_paused")
        line = uow.session.get(BusinessLine, (category, city))
        assert line is not None
        uow.session.add(LineTransition(category=category, city=city, from_level=line.level, to_level=line.level,
                                       actions=["resume"], judgement=dict(line.judgement or {}),
                                       actor_id=actor.user_id, reason=reason, at=uow.now))
        record_audit(uow.session, actor_id=actor.user_id, actor_role=Role.OPS, action="resume_business_line",
                     target=f"business_line:{category}/{city}", reason=reason, now=uow.now)
        record_event(uow.session, "BusinessLineResumed", {"category": category, "city": city, "reason": reason},
                     uow.now)
        notify.notify_ops(uow, "line_resumed", f"Business line {category}/{city} resumed", reason,
                          {"category": category, "city": city})
        uow.commit()
        view = _line_view(line, None, load_policy(uow))
    invalidate_paused_cache(uow.db)
    return view


# ---- reading ---------------------------------------------------------------------------------------

def _line_view(line: BusinessLine | None, tally: KpiTally | None, policy: rules.MonitoringPolicy,
               key: str | None = None) -> dict[str, Any]:
    category, city = (line.category, line.city) if line is not None else (key or "/").split("/", 1)
    targets = policy.targets_for(category, city)
    j = rules.judge(_tally(tally), targets, policy) if tally is not None else None
    return {"category": category, "city": city,
            "level": rules.LEVEL_NAMES[rules.Level(line.level)] if line is not None else "green",
            "paused": bool(line.paused) if line is not None else False,
            "paused_at": line.paused_at.isoformat() if line is not None and line.paused_at else None,
            "kpis": j.kpis if j else (line.judgement or {}).get("kpis", {}) if line else {},
            "deviations": j.deviations if j else {}, "worst": j.worst if j else None, "targets": targets,
            "tally": _tally(tally).as_dict() if tally is not None else None}


def board(uow: UnitOfWork, actor: Principal) -> list[dict[str, Any]]:
    """Ops: every business line with its KPIs, targets, deviations, level and pause."""
    actor.require(Role.OPS)
    with uow:
        policy = load_policy(uow)
        tallies = {t.key: t for t in uow.session.scalars(select(KpiTally).where(KpiTally.scope == "line"))}
        lines = {rules.line_key(b.category, b.city): b for b in uow.session.scalars(select(BusinessLine))}
        return [_line_view(lines.get(k), tallies.get(k), policy, k) for k in sorted(set(tallies) | set(lines))]


def merchant_kpis(uow: UnitOfWork, actor: Principal, merchant_id: int) -> dict[str, Any]:
    """Ops or the merchant itself: its KPIs against the default targets (a merchant is judged, not paused)."""
    if actor.role != Role.OPS and actor.merchant_id != merchant_id:
        raise Forbidden("only ops or the merchant itself")
    with uow:
        policy = load_policy(uow)
        row = uow.session.get(KpiTally, ("merchant", str(merchant_id)))
        j = rules.judge(_tally(row), policy.targets, policy)
        return {"merchant_id": merchant_id, **_judgement_view(j), "targets": policy.targets,
                "tally": _tally(row).as_dict()}


def transitions(uow: UnitOfWork, actor: Principal, category: str, city: str) -> list[dict[str, Any]]:
    actor.require(Role.OPS)
    with uow:
        q = select(LineTransition).where(LineTransition.category == category, LineTransition.city == city
                                         ).order_by(LineTransition.id)
        return [{"id": t.id, "from": rules.LEVEL_NAMES[rules.Level(t.from_level)],
                 "to": rules.LEVEL_NAMES[rules.Level(t.to_level)], "actions": t.actions,
                 "worst": (t.judgement or {}).get("worst"), "actor_id": t.actor_id, "reason": t.reason,
                 "at": t.at.isoformat()} for t in uow.session.scalars(q)]


def check_tasks(uow: UnitOfWork, actor: Principal, status: str | None = "open") -> list[dict[str, Any]]:
    actor.require(Role.OPS)
    with uow:
        q = select(CheckTask).order_by(CheckTask.id.desc()).limit(200)
        if status:
            q = q.where(CheckTask.status == status)
        return [{"id": c.id, "category": c.category, "city": c.city, "kpi": c.kpi, "status": c.status,
                 "opened_at": c.opened_at.isoformat()} for c in uow.session.scalars(q)]


def close_check_task(uow: UnitOfWork, actor: Principal, task_id: int, reason: str) -> dict[str, Any]:
    """Ops record that a line was checked, with what they found (audited)."""
    actor.require(Role.OPS)
    if not reason.strip():
        raise ValidationFailed("a reason is required", code="reason_required")
    with uow:
        done = uow.session.execute(update(CheckTask).where(CheckTask.id == task_id, CheckTask.status == "open")
                                   .values(status="done")).rowcount  # type: ignore[attr-defined]
        if not done:
            raise Conflict(f"check task {task_id} is not open", code="task_not_open")
        record_audit(uow.session, actor_id=actor.user_id, actor_role=Role.OPS, action="close_kpi_check",
                     target=f"kpi_check:{task_id}", reason=reason, now=uow.now)
        uow.commit()
        return {"id": task_id, "status": "done"}


def refresh(uow: UnitOfWork, actor: Principal) -> dict[str, int]:
    """Ops: fold what is new and judge the lines now instead of at the next tick."""
    actor.require(Role.OPS)
    folded = 0
    while n := consume_events(uow):
        folded += n
    return {"events": folded, "transitions": evaluate_lines(uow)}


# ---- paused lines on the order path (a participant the composition root wires) ----------------

_paused: WeakKeyDictionary[Database, tuple[float, frozenset[tuple[str, str]]]] = WeakKeyDictionary()


def invalidate_paused_cache(db: Database) -> None:
    _paused.pop(db, None)


def paused_lines(uow: InTransaction) -> frozenset[tuple[str, str]]:
    """Inside an open unit of work: the paused (category, city) lines, from a per-process cache at most 1 s old."""
    cached = _paused.get(uow.db)
    if cached is not None and time.monotonic() - cached[0] <= PAUSED_TTL_S:
        return cached[1]
    rows = uow.session.execute(select(BusinessLine.category, BusinessLine.city).where(BusinessLine.paused.is_(True)))
    lines = frozenset((str(c), str(city)) for c, city in rows)
    _paused[uow.db] = (time.monotonic(), lines)
    return lines


def refuse_if_line_paused(uow: InTransaction, deal_id: int) -> None:
    """Inside the order's (or a listing's) unit of work: refuse with 409 `business_line_paused` when the
    deal's line is paused. Costs no query while no line is paused (the usual case)."""
    lines = paused_lines(uow)
    if not lines:
        return
    line = deal_lines.deal_line(uow, deal_id)
    if line is not None and rules.line_paused(lines, line[1], line[2]):
        raise Conflict(f"business line {line[1]}/{line[2]} is paused by operations", code="business_line_paused",
                       category=line[1], city=line[2])


def publish_deal(uow: UnitOfWork, actor: Principal, deal_id: int, reason: str = "") -> Any:
    """Publish a deal unless its business line is paused (the listing half of a pause)."""
    with uow:
        refuse_if_line_paused(uow, deal_id)
        uow.commit()
    return catalog.publish_deal(uow, actor, deal_id, reason)
