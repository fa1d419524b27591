"""Use cases around a merchant's record: appeals with evidence and the monthly case report (the exam: exam.py).

Each function is one unit of work, like service.py; they share its standing and penalty helpers.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from tuangou.accounts import service as accounts
from tuangou.capacity import service as capacity
from tuangou.catalog import service as catalog
from tuangou.core.audit import record_audit
from tuangou.core.auth import Principal, Role
from tuangou.core.db import UnitOfWork, insert_ignore
from tuangou.core.errors import Conflict, DomainError, NotFound, ValidationFailed
from tuangou.core.outbox import record_event
from tuangou.merchants import rules
from tuangou.merchants.models import (
    Appeal,
    AppealEvidence,
    CaseReport,
    Penalty,
    Violation,
)
from tuangou.merchants.service import (
    lift_penalty,
    load_policy,
    refresh_standing,
    standing_false_claims,
)
from tuangou.notify import service as notify

MAX_FILES = 10
MAX_FILE_BYTES = 5 * 1024 * 1024
TARGET = re.compile(r"^(violation|penalty):(\d+)$")


# ---- appeals ------------------------------------------------------------------------------------

def _appeal_view(uow: UnitOfWork, a: Appeal) -> dict[str, Any]:
    files = [{"id": e.id, "filename": e.filename, "content_type": e.content_type, "sha256": e.sha256,
              "size": e.size} for e in uow.session.scalars(
        select(AppealEvidence).where(AppealEvidence.appeal_id == a.id).order_by(AppealEvidence.id))]
    return {"id": a.id, "merchant_id": a.merchant_id, "target": a.target, "statement": a.statement,
            "status": a.status, "decision_reason": a.decision_reason, "created_at": a.created_at.isoformat(),
            "decided_at": a.decided_at.isoformat() if a.decided_at else None, "evidence": files}


def _target_merchant(uow: UnitOfWork, target: str) -> int:
    match = TARGET.match(target)
    if match is None:
        raise ValidationFailed("target must be 'violation:<id>' or 'penalty:<id>'")
    model: Any = Violation if match.group(1) == "violation" else Penalty
    row = uow.session.get(model, int(match.group(2)))
    if row is None:
        raise NotFound(f"{target} not found")
    return int(row.merchant_id)


def file_appeal(uow: UnitOfWork, actor: Principal, *, target: str, statement: str,
                files: list[tuple[str, str, bytes]]) -> dict[str, Any]:
    """A merchant appeals a deduction or a penalty with evidence files (chat logs, logistics, stock records)."""
    if not statement.strip():
        raise ValidationFailed("statement is required: say why the deduction or penalty is wrong")
    if not files or len(files) > MAX_FILES:
        raise ValidationFailed(f"attach 1 to {MAX_FILES} evidence files")
    for name, _, data in files:
        if not data or len(data) > MAX_FILE_BYTES:
            raise ValidationFailed(f"{name}: a file must have 1 byte to {MAX_FILE_BYTES // (1024 * 1024)} MB")
    with uow:
        merchant_id = _target_merchant(uow, target)
        actor.require_merchant(merchant_id)
        if not insert_ignore(uow.session, Appeal.__table__, {
                "merchant_id": merchant_id, "target": target, "statement": statement, "status": "open",
                "decision_reason": "", "created_at": uow.now}, ["target"]):
            raise Conflict(f"{target} has already been appealed", code="appeal_exists")
        appeal = uow.session.scalars(select(Appeal).where(Appeal.target == target)).one()
        for name, content_type, data in files:
            uow.session.add(AppealEvidence(appeal_id=appeal.id, filename=name[:200], content_type=content_type[:100],
                                           sha256=hashlib.sha256(data).hexdigest(), size=len(data), data=data,
                                           uploaded_at=uow.now))
        uow.session.flush()
        record_event(uow.session, "AppealFiled", {"appeal_id": appeal.id, "target": target}, uow.now,
                     merchant_id=merchant_id)
        notify.notify_ops(uow, "appeal_filed", f"Appeal against {target}", statement[:200], {"appeal_id": appeal.id})
        uow.commit()
        return _appeal_view(uow, appeal)


def decide_appeal(uow: UnitOfWork, actor: Principal, appeal_id: int, *, uphold: bool, reason: str) -> dict[str, Any]:
    """Ops decide with a written reason. Upheld: the points come back and what followed is lifted."""
    actor.require(Role.OPS)
    if not reason.strip():
        raise ValidationFailed("a written reason is required")
    status = rules.AppealStatus.UPHELD if uphold else rules.AppealStatus.REJECTED
    with uow:
        appeal = uow.session.get(Appeal, appeal_id)
        if appeal is None:
            raise NotFound(f"appeal {appeal_id} not found")
        decided = uow.session.execute(update(Appeal).where(Appeal.id == appeal_id, Appeal.status == "open").values(
            status=status, decision_reason=reason, decided_by=actor.user_id, decided_at=uow.now)).rowcount  # type: ignore[attr-defined]
        if not decided:
            raise Conflict(f"appeal {appeal_id} is already decided", code="appeal_decided")
        if uphold:
            _restore(uow, appeal.target, f"appeal {appeal_id} upheld: {reason}")
        record_audit(uow.session, actor_id=actor.user_id, actor_role="ops", action="decide_appeal",
                     target=f"appeal:{appeal_id}", reason=reason, now=uow.now, details={"status": status.value})
        record_event(uow.session, "AppealDecided", {"appeal_id": appeal_id, "status": status.value}, uow.now,
                     merchant_id=appeal.merchant_id)
        notify.notify_merchant(uow, appeal.merchant_id, "appeal_decided", f"Appeal {status.value}: {appeal.target}",
                               reason, {"appeal_id": appeal_id})
        uow.commit()
        uow.session.refresh(appeal)
        return _appeal_view(uow, appeal)


def _restore(uow: UnitOfWork, target: str, why: str) -> None:
    kind, _, raw_id = target.partition(":")
    if kind == "penalty":
        penalty = uow.session.get(Penalty, int(raw_id))
        assert penalty is not None
        lift_penalty(uow, penalty, why)
        return
    violation = uow.session.get(Violation, int(raw_id))
    assert violation is not None
    violation.voided_at, violation.void_reason = uow.now, why
    policy = load_policy(uow)
    for penalty in uow.session.scalars(select(Penalty).where(Penalty.violation_id == violation.id)):
        lift_penalty(uow, penalty, why)
    if violation.kind == rules.ViolationKind.FALSE_CLAIM and \
            standing_false_claims(uow, violation.merchant_id) < policy.false_claim_removal_count:
        for penalty in uow.session.scalars(select(Penalty).join(Violation, Violation.id == Penalty.violation_id).where(
                Penalty.merchant_id == violation.merchant_id, Penalty.kind == rules.PenaltyKind.REMOVAL,
                Violation.kind == rules.ViolationKind.FALSE_CLAIM)):
            lift_penalty(uow, penalty, why)
    refresh_standing(uow, violation.merchant_id, policy)


def list_appeals(uow: UnitOfWork, actor: Principal, status: str | None = None) -> list[dict[str, Any]]:
    with uow:
        q = select(Appeal).order_by(Appeal.id)
        if actor.role != Role.OPS:
            actor.require(Role.MERCHANT)
            q = q.where(Appeal.merchant_id == actor.merchant_id)
        if status:
            q = q.where(Appeal.status == status)
        return [_appeal_view(uow, a) for a in uow.session.scalars(q)]


def get_appeal(uow: UnitOfWork, actor: Principal, appeal_id: int) -> dict[str, Any]:
    with uow:
        appeal = uow.session.get(Appeal, appeal_id)
        if appeal is None:
            raise NotFound(f"appeal {appeal_id} not found")
        actor.require_merchant(appeal.merchant_id)
        return _appeal_view(uow, appeal)


def evidence_file(uow: UnitOfWork, actor: Principal, appeal_id: int, evidence_id: int) -> tuple[str, str, bytes]:
    with uow:
        appeal = uow.session.get(Appeal, appeal_id)
        evidence = uow.session.get(AppealEvidence, evidence_id)
        if appeal is None or evidence is None or evidence.appeal_id != appeal_id:
            raise NotFound("evidence not found")
        actor.require_merchant(appeal.merchant_id)
        return evidence.filename, evidence.content_type, evidence.data


# ---- the monthly case report --------------------------------------------------------------------

DEAL_IN_TEXT = re.compile(r"deal[:#= ]+(\d+)", re.IGNORECASE)


def _case(uow: UnitOfWork, v: Violation) -> rules.Case:
    details = v.details or {}
    deal_id = details.get("deal_id")
    if deal_id is None:
        found = DEAL_IN_TEXT.search(f"{v.ref} {v.reason}")
        deal_id = int(found.group(1)) if found else None
    names = [accounts.merchant_name(uow, v.merchant_id)]
    reception = days = None
    if deal_id is not None:
        try:
            ctx = catalog.deal_context(uow, int(deal_id))
        except DomainError:
            ctx = None
        if ctx is not None and ctx.merchant_id == v.merchant_id:
            names.append(ctx.title)
            reception = ctx.daily_cap if ctx.daily_cap is not None else (sum(ctx.slots.values()) or None)
            zone = ZoneInfo(ctx.timezone)
            days = (ctx.valid_until.astimezone(zone).date() - ctx.valid_from.astimezone(zone).date()).days + 1
    what = rules.anonymise(v.reason, names) or f"{v.kind} in {v.category}"
    return rules.Case(v.category, what, details.get("oversold_units"), int(details.get("compensation_cents", 0)),
                      details.get("daily_reception", reception), details.get("activity_days", days), details.get("sold"))


def _month_report(uow: UnitOfWork, first: date, next_first: date, month: str, zone: ZoneInfo) -> dict[str, Any]:
    start, end = (datetime.combine(d, time(0), zone) for d in (first, next_first))
    violations = uow.session.scalars(select(Violation).where(
        Violation.kind == rules.ViolationKind.OVERSALE, Violation.voided_at.is_(None),
        Violation.recorded_at >= start, Violation.recorded_at < end).order_by(Violation.id))
    # one safe-sales rule: capacity governance owns the ratio the calculator and the caps use (A9)
    return rules.case_report(month, [_case(uow, v) for v in violations], capacity.policy(uow).safe_sales_ratio)


def build_due_report(uow: UnitOfWork) -> str | None:
    """From the 1st of a month: the previous month's report, once (the month is the key).

    Sent to every merchant's inbox when the month had cases; returns the month built, or None.
    """
    with uow:
        policy = load_policy(uow)
        zone = ZoneInfo(policy.report_timezone)
        first, next_first, month = rules.previous_month(uow.now.astimezone(zone).date())
        if uow.session.get(CaseReport, month) is not None:
            return None
        report = _month_report(uow, first, next_first, month, zone)
        markdown = rules.report_markdown(report)
        if not insert_ignore(uow.session, CaseReport.__table__, {"month": month, "report": report,
                             "markdown": markdown, "created_at": uow.now}, ["month"]):
            return None
        if report["cases"]:  # a month without cases is stored but not announced
            for user_id in accounts.user_ids_with_role(uow, Role.MERCHANT):
                notify.notify_user(uow, user_id, "case_report", f"Over-selling cases of {month}",
                                   markdown, {"month": month})
            record_event(uow.session, "CaseReportPublished", {"month": month, "cases": report["cases"]}, uow.now)
        uow.commit()
        return month


def preview_report(uow: UnitOfWork) -> tuple[dict[str, Any], str]:
    """The current month so far, built the same way; neither stored nor sent (the 1st does that)."""
    with uow:
        zone = ZoneInfo(load_policy(uow).report_timezone)
        first, next_first, month = rules.current_month(uow.now.astimezone(zone).date())
        report = {**_month_report(uow, first, next_first, month, zone), "so_far": True}
        return report, rules.report_markdown(report)


def list_reports(uow: UnitOfWork) -> list[dict[str, Any]]:
    with uow:
        return [{"month": r.month, "cases": r.report.get("cases", 0), "created_at": r.created_at.isoformat()}
                for r in uow.session.scalars(select(CaseReport).order_by(CaseReport.month.desc()))]


def get_report(uow: UnitOfWork, month: str) -> tuple[dict[str, Any], str]:
    with uow:
        row = uow.session.get(CaseReport, month)
        if row is None:
            raise NotFound(f"no case report for {month}")
        return row.report, row.markdown
