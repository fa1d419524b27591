"""Campaign pages (merchant campaigns with stage and purchase lists, the buyer's group-buy progress,
the leaders' and suppliers' own pages), the merchant's compliance exam and monthly case reports, and
ops penalties. Each calls the capability's service, as the API does."""

from __future__ import annotations

from contextlib import suppress

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from tuangou.campaigns import lifecycle
from tuangou.core.auth import Principal, Role
from tuangou.core.errors import DomainError
from tuangou.merchants import casework, exam
from tuangou.merchants import rules as merchant_rules
from tuangou.merchants import service as merchants
from tuangou.notify import service as notify
from tuangou.web.session import PageError, back, check_csrf, error_text, locale, render, require, uow

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=[Depends(check_csrf)])


def _purchase_lists(request: Request, p: Principal, campaigns: list[dict[str, object]]) -> dict[object, object]:
    lists: dict[object, object] = {}
    for c in campaigns:
        with suppress(DomainError):  # no list until entry closes on a formed group
            lists[c["id"]] = lifecycle.get_purchase_list(uow(request, True), p, int(str(c["id"])))
    return lists


@router.get("/merchant/campaigns", response_class=HTMLResponse)
def merchant_campaigns(request: Request) -> Response:
    p = require(request, Role.MERCHANT)
    camps = lifecycle.list_campaigns(uow(request, True), p, mine=True, limit=50)
    return render(request, "merchant/campaigns.html", {"campaigns": camps,
                                                       "lists": _purchase_lists(request, p, camps)})


@router.get("/merchant/exam", response_class=HTMLResponse)
def exam_page(request: Request, error: str = "", result: dict[str, object] | None = None) -> Response:
    """Opening the page draws the merchant's paper (the open one again until it is handed in)."""
    p = require(request, Role.MERCHANT)
    assert p.merchant_id is not None
    paper: dict[str, object] | None = None
    if not error:
        try:
            paper = exam.draw_paper(uow(request), p, "en" if locale(request) == "en" else "zh-CN")
        except DomainError as exc:
            error = "" if result else error_text(request, exc)
    return render(request, "merchant/exam.html", {
        "questions": paper["questions"] if paper else [], "paper": paper, "error": error, "result": result,
        "attempts": exam.list_attempts(uow(request, True), p, p.merchant_id),
        "reports": casework.list_reports(uow(request, True))})


@router.post("/merchant/exam")
async def take_exam(request: Request) -> Response:
    form = await request.form()
    answers = {int(k[2:]): int(str(v)) for k, v in form.items() if k.startswith("q-") and str(v).isdigit()
               and k[2:].isdigit()}
    return await run_in_threadpool(_grade, request, answers)


def _grade(request: Request, answers: dict[int, int]) -> Response:
    p = require(request, Role.MERCHANT)
    try:
        result = exam.take_exam(uow(request), p, answers)
    except DomainError as exc:
        return exam_page(request, error=error_text(request, exc))
    return exam_page(request, result=result)


@router.get("/merchant/case-reports/{month}", response_class=HTMLResponse)
def case_report(request: Request, month: str) -> Response:
    require(request, Role.MERCHANT, Role.OPS)
    try:
        _, markdown = casework.get_report(uow(request, True), month)
    except DomainError as exc:
        raise PageError(404, "no such report") from exc
    return render(request, "merchant/case_report.html", {"month": month, "markdown": markdown})


@router.get("/buyer/groups", response_class=HTMLResponse)
def buyer_groups(request: Request) -> Response:
    p = require(request, Role.BUYER)
    return render(request, "buyer/groups.html", {"groups": lifecycle.my_participations(uow(request, True), p)})


@router.get("/partner", response_class=HTMLResponse)
def partner(request: Request) -> Response:
    """Suppliers and group leaders: their own small pages, never the ops console."""
    p = require(request, Role.LEADER, Role.SUPPLIER)
    ctx: dict[str, object] = {"inbox": notify.inbox(uow(request, True), p.user_id, limit=20)}
    if p.role == Role.LEADER:
        ctx["summary"] = lifecycle.leader_summary(uow(request, True), p)
    else:
        queue = lifecycle.procurement_queue(uow(request, True), p)
        ctx.update(queue=queue, lists=_purchase_lists(request, p, queue))
    return render(request, "partner.html", ctx)


@router.post("/ops/merchants/{merchant_id}/penalties")
def impose(request: Request, merchant_id: int, kind: str = Form(...), rule: str = Form(..., min_length=1),
           evidence: str = Form(..., min_length=1), reason: str = Form(..., min_length=1),
           days: int | None = Form(None, gt=0, le=3650), amount_yuan: float = Form(0, ge=0, le=1_000_000)
           ) -> Response:
    p = require(request, Role.OPS)
    if kind not in merchant_rules.PenaltyKind.__members__.values():
        raise PageError(422, "unknown penalty")
    try:
        merchants.impose_penalty(uow(request), p, merchant_id, kind=kind, rule=rule, evidence=evidence,
                                 reason=reason, days=days, amount_cents=round(amount_yuan * 100), violation_id=None)
    except DomainError as exc:
        raise PageError(exc.status, error_text(request, exc)) from exc
    return back("/console/ops/merchants", "penalty")
