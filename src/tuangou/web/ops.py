"""Ops console: one work queue, the dispute desk, appeal decisions, merchants and the audit log.
Only ops accounts reach these pages; anyone else (suppliers and leaders too) gets a 404."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from tuangou.accounts import service as accounts
from tuangou.capacity import service as capacity
from tuangou.core.auth import Principal, Role
from tuangou.core.errors import DomainError
from tuangou.disputes import policy as dispute_policy
from tuangou.disputes import service as disputes
from tuangou.governance import inventory
from tuangou.merchants import casework
from tuangou.merchants import rules as merchant_rules
from tuangou.merchants import service as merchants
from tuangou.web.i18n import N_
from tuangou.web.session import PageError, back, check_csrf, error_text, render, require, uow

router = APIRouter(prefix="/console/ops", include_in_schema=False, dependencies=[Depends(check_csrf)])
KINDS = {"dispute": N_("Dispute"), "appeal": N_("Appeal"), "audit": N_("Capacity audit"),
         "change": N_("Change request")}
LIVE_DISPUTES = ("open", "contested", "escalated")


def _ops(request: Request) -> Principal:
    return require(request, Role.OPS)


def _queue(request: Request, p: Principal) -> list[dict[str, Any]]:
    now = request.app.state.clock.now()
    items: list[dict[str, Any]] = []
    for d in disputes.list_disputes(uow(request, True), p, limit=200):
        if d.status in LIVE_DISPUTES:
            items.append({"kind": "dispute", "id": d.id, "since": d.opened_at, "status": d.status,
                          "words": [d.kind, d.tier], "title": f"#{d.id}", "href": f"/console/ops/disputes/{d.id}",
                          "due": d.respond_by,
                          "overdue": d.status == "escalated" or datetime.fromisoformat(d.respond_by) < now})
    for a in casework.list_appeals(uow(request, True), p, "open"):
        items.append({"kind": "appeal", "id": a["id"], "since": a["created_at"], "status": a["status"],
                      "title": f"#{a['id']} · {a['target']}", "words": [], "due": None, "href": f"/console/ops/appeals/{a['id']}",
                      "overdue": False})
    for a in capacity.list_audits(uow(request, True), p, "pending", None):
        items.append({"kind": "audit", "id": a["id"], "since": a["created_at"], "status": a["status"],
                      "title": f"#{a['id']} · deal {a['deal_id']}", "words": [], "due": None, "href": "",
                      "overdue": False, "action": f"/console/ops/audits/{a['id']}/decision",
                      "choices": ["approve", "reject"], "detail": a.get("bottleneck")})
    for c in inventory.list_change_requests(uow(request, True), p, "pending", None):
        items.append({"kind": "change", "id": c["id"], "since": c["created_at"], "status": c["status"],
                      "title": f"#{c['id']} · deal {c['deal_id']}: {c['current_cap']} → {c['requested_cap']}",
                      "words": [], "due": None, "href": "", "overdue": False,
                      "action": f"/console/ops/change-requests/{c['id']}/decision",
                      "choices": ["approve", "reject", "false_claim"], "detail": c["reason"]})
    for item in items:
        item["age_hours"] = max(0, int((now - datetime.fromisoformat(item["since"])).total_seconds() // 3600))
    return sorted(items, key=lambda i: i["since"])


@router.get("", response_class=HTMLResponse)
def queue(request: Request, kind: str = "") -> Response:
    p = _ops(request)
    items = _queue(request, p)
    counts = {k: sum(1 for i in items if i["kind"] == k) for k in KINDS}
    shown = [i for i in items if not kind or i["kind"] == kind]
    return render(request, "ops/queue.html", {"items": shown, "counts": counts, "kinds": KINDS, "kind": kind})


@router.post("/audits/{audit_id}/decision")
def decide_audit(request: Request, audit_id: int, decision: str = Form(...),
                 reason: str = Form(..., min_length=1, max_length=500)) -> Response:
    p = _ops(request)
    try:
        capacity.decide_audit(uow(request), p, audit_id, decision == "approve", reason)
    except DomainError as exc:
        raise PageError(exc.status, error_text(request, exc)) from exc
    return back("/console/ops?kind=audit", "decided")


@router.post("/change-requests/{request_id}/decision")
def decide_change(request: Request, request_id: int, decision: str = Form(...),
                  reason: str = Form(..., min_length=1, max_length=500)) -> Response:
    p = _ops(request)
    try:
        inventory.decide_change_request(uow(request), p, request_id, decision, reason)
    except DomainError as exc:
        raise PageError(exc.status, error_text(request, exc)) from exc
    return back("/console/ops?kind=change", "decided")


@router.get("/disputes/{dispute_id}", response_class=HTMLResponse)
def dispute_desk(request: Request, dispute_id: int, error: str = "") -> Response:
    p = _ops(request)
    try:
        d = disputes.get_dispute(uow(request, True), p, dispute_id)
    except DomainError as exc:
        raise PageError(404, "no such dispute") from exc
    pol = dispute_policy.get_policy(uow(request, True))
    return render(request, "ops/dispute.html", {"d": d, "policy": pol, "error": error,
                                                "live": d.status in LIVE_DISPUTES},
                  status_code=409 if error else 200)


@router.post("/disputes/{dispute_id}/confirm")
def confirm(request: Request, dispute_id: int, reason: str = Form(..., min_length=1, max_length=500),
            tier: str = Form(""), oversale: bool = Form(False)) -> Response:
    p = _ops(request)
    try:
        disputes.confirm_dispute(uow(request), p, dispute_id, reason, tier=tier or None, oversale=oversale,
                                 gateway=request.app.state.payment_gateway)
    except DomainError as exc:
        return dispute_desk(request, dispute_id, error=error_text(request, exc))
    return back(f"/console/ops/disputes/{dispute_id}", "confirmed")


@router.post("/disputes/{dispute_id}/reject")
def reject(request: Request, dispute_id: int, reason: str = Form(..., min_length=1, max_length=500)) -> Response:
    p = _ops(request)
    try:
        disputes.reject_dispute(uow(request), p, dispute_id, reason)
    except DomainError as exc:
        return dispute_desk(request, dispute_id, error=error_text(request, exc))
    return back(f"/console/ops/disputes/{dispute_id}", "rejected")


@router.get("/appeals/{appeal_id}", response_class=HTMLResponse)
def appeal(request: Request, appeal_id: int, error: str = "") -> Response:
    p = _ops(request)
    try:
        a = casework.get_appeal(uow(request, True), p, appeal_id)
    except DomainError as exc:
        raise PageError(404, "no such appeal") from exc
    history = merchants.score_history(uow(request, True), p, a["merchant_id"])
    target = next((e for e in history["entries"] if a["target"] == f"violation:{e['violation_id']}"), None)
    names = {m["id"]: m["name"] for m in accounts.list_merchants(uow(request, True))}
    return render(request, "ops/appeal.html", {"a": a, "target": target, "error": error,
                                               "merchant": names.get(a["merchant_id"], "")},
                  status_code=409 if error else 200)


@router.post("/appeals/{appeal_id}/decision")
def decide(request: Request, appeal_id: int, decision: str = Form(...),
           reason: str = Form(..., min_length=1, max_length=2000)) -> Response:
    p = _ops(request)
    try:
        casework.decide_appeal(uow(request), p, appeal_id, uphold=decision == "uphold", reason=reason)
    except DomainError as exc:
        return appeal(request, appeal_id, error=error_text(request, exc))
    return back(f"/console/ops/appeals/{appeal_id}", "decided")


@router.get("/merchants", response_class=HTMLResponse)
def merchant_list(request: Request) -> Response:
    p = _ops(request)
    rows = []
    for m in accounts.list_merchants(uow(request, True)):
        st = merchants.standing(uow(request, True), p, int(m["id"]))  # type: ignore[call-overload]
        rows.append({**m, "standing": st})
    return render(request, "ops/merchants.html", {"merchants": rows,
                                                   "penalty_kinds": [k.value for k in merchant_rules.PenaltyKind]})


@router.get("/audit", response_class=HTMLResponse)
def audit(request: Request, action: str = "") -> Response:
    _ops(request)
    entries = accounts.audit_log(uow(request, True), cursor=None, limit=100, action=action.strip() or None)
    return render(request, "ops/audit.html", {"entries": entries, "action": action})
