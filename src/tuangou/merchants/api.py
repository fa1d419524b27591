"""Merchant accountability over HTTP: standing, violations, penalties, appeals, exams, case reports."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Header, Path, Request, UploadFile
from fastapi.responses import PlainTextResponse, Response
from pydantic import Field

from tuangou.catalog import rules as catalog_rules
from tuangou.core.http import MAX_ID, Auth, Merchant, Ops, ReadUoW, UoW, file_response, read_upload
from tuangou.core.input import Body
from tuangou.merchants import casework, deposits, exam, exam_bank, rules, service

router = APIRouter(prefix="/api/v1", tags=["merchant accountability"])


class PolicyChange(Body):
    changes: dict[str, Any] = Field(description="fields of the policy to change, e.g. {'limited_daily_intake': 20}")
    reason: str = Field(min_length=1, max_length=500)


class NewViolation(Body):
    category: catalog_rules.Category
    kind: rules.ViolationKind
    ref: str = Field(min_length=1, max_length=128, description="the incident, e.g. 'incident:42'")
    reason: str = Field(min_length=1, max_length=2000)


class NewPenalty(Body):
    kind: rules.PenaltyKind
    rule: str = Field(min_length=1, max_length=500, description="the rule broken")
    evidence: str = Field(min_length=1, max_length=2000)
    reason: str = Field(min_length=1, max_length=500)
    days: int | None = Field(default=None, gt=0, le=3650, description="bans and suspensions: how long")
    amount_cents: int = Field(default=0, ge=0, le=100_000_000)
    violation_id: int | None = None


class TopUp(Body):
    amount_cents: int = Field(ge=1, le=deposits.MAX_TOP_UP_CENTS)
    outcome: Literal["succeed", "fail", "timeout"] | None = Field(
        default=None, description="sandbox gateway only: the answer the charge gets")


class Decision(Body):
    uphold: bool = Field(description="true: the merchant wins, points and penalties are restored")
    reason: str = Field(min_length=1, max_length=2000)


class NewQuestion(Body):
    text: str = Field(min_length=1, max_length=2000)
    options: list[str] = Field(min_length=2, max_length=8)
    correct_index: int = Field(ge=0)
    language: Literal["zh-CN", "en"] = "zh-CN"
    reason: str = Field(default="", max_length=500, description="why (required: 422 reason_required)")


class Retire(Body):
    reason: str = Field(default="", max_length=500)


class Answers(Body):
    answers: dict[int, int] = Field(description="question id -> index of the chosen option")
    paper_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="the paper drawn; default: the open one")


class PaperRequest(Body):
    language: Literal["zh-CN", "en"] = Field(default="zh-CN", description="the language of the questions")


@router.get("/accountability-policy", summary="Deductions, thresholds, limits and exam pass mark in force")
def get_policy(_: Auth, uow: ReadUoW) -> dict[str, Any]:
    return service.get_policy(uow)


@router.put("/accountability-policy", summary="Ops change the accountability policy (audited)")
def set_policy(body: PolicyChange, p: Ops, uow: UoW) -> dict[str, Any]:
    return service.set_policy(uow, p, body.changes, body.reason)


@router.get("/merchants/{merchant_id}/standing", summary="Scores, traffic limits, recovery steps, penalties")
def standing(merchant_id: int, p: Merchant, uow: ReadUoW) -> dict[str, Any]:
    return service.standing(uow, p, merchant_id)


@router.get("/merchants/{merchant_id}/score-history", summary="Every deduction with its reason and incident")
def score_history(merchant_id: int, p: Merchant, uow: ReadUoW) -> dict[str, Any]:
    return service.score_history(uow, p, merchant_id)


@router.get("/merchants/{merchant_id}/violations")
def list_violations(merchant_id: int, p: Merchant, uow: ReadUoW) -> dict[str, Any]:
    return {"items": service.list_violations(uow, p, merchant_id), "next_cursor": None}


@router.post("/merchants/{merchant_id}/violations", status_code=201,
             summary="Ops record a confirmed violation by hand; the same ref counts once")
def record_violation(merchant_id: int, body: NewViolation, p: Ops, uow: UoW) -> dict[str, Any]:
    return service.record_violation_by_ops(uow, p, merchant_id, category=body.category, kind=body.kind,
                                           ref=body.ref, reason=body.reason)


@router.get("/merchants/{merchant_id}/penalties")
def list_penalties(merchant_id: int, p: Merchant, uow: ReadUoW) -> dict[str, Any]:
    return {"items": service.list_penalties(uow, p, merchant_id), "next_cursor": None}


@router.post("/merchants/{merchant_id}/penalties", status_code=201,
             summary="Ops impose a fine, deposit deduction, promotion ban, listing suspension or removal")
def impose_penalty(merchant_id: int, body: NewPenalty, p: Ops, uow: UoW) -> dict[str, Any]:
    return service.impose_penalty(uow, p, merchant_id, kind=body.kind, rule=body.rule, evidence=body.evidence,
                                  reason=body.reason, days=body.days, amount_cents=body.amount_cents,
                                  violation_id=body.violation_id)


@router.get("/merchants/{merchant_id}/deposit", summary="The deposit held, what is owed, minimums and movements")
def get_deposit(merchant_id: int, p: Merchant, uow: ReadUoW) -> dict[str, Any]:
    return deposits.deposit(uow, p, merchant_id)


@router.post("/merchants/{merchant_id}/deposit/top-ups", status_code=201,
             summary="Pay into the deposit through the payment gateway (Idempotency-Key required)")
def top_up(merchant_id: int, body: TopUp, p: Merchant, uow: UoW, request: Request,
           idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)] = None
           ) -> dict[str, Any]:
    return deposits.top_up(uow, p, merchant_id, body.amount_cents, idempotency_key or "",
                           request.app.state.payment_gateway, body.outcome)


@router.post("/appeals", status_code=201, summary="A merchant appeals a deduction or penalty with evidence files")
def file_appeal(p: Merchant, uow: UoW, request: Request, target: Annotated[str, Form(max_length=40)],
                statement: Annotated[str, Form(max_length=4000)],
                files: Annotated[list[UploadFile], File(description="chat logs, logistics or stock records")]
                ) -> dict[str, Any]:
    uploads = []
    for f in files:
        data = read_upload(f, min(casework.MAX_FILE_BYTES, request.app.state.settings.max_file_bytes))
        uploads.append((f.filename or "evidence", f.content_type or "application/octet-stream", data))
    return casework.file_appeal(uow, p, target=target, statement=statement, files=uploads)


@router.get("/appeals")
def list_appeals(p: Merchant, uow: ReadUoW, status: rules.AppealStatus | None = None) -> dict[str, Any]:
    return {"items": casework.list_appeals(uow, p, status), "next_cursor": None}


@router.get("/appeals/{appeal_id}")
def get_appeal(appeal_id: int, p: Merchant, uow: ReadUoW) -> dict[str, Any]:
    return casework.get_appeal(uow, p, appeal_id)


@router.get("/appeals/{appeal_id}/evidence/{evidence_id}", summary="Download one evidence file")
def evidence(appeal_id: int, evidence_id: int, p: Merchant, uow: ReadUoW) -> Response:
    name, content_type, data = casework.evidence_file(uow, p, appeal_id, evidence_id)
    return file_response(name, content_type, data)


@router.post("/appeals/{appeal_id}/decision", summary="Ops uphold or reject an appeal with a written reason")
def decide_appeal(appeal_id: int, body: Decision, p: Ops, uow: UoW) -> dict[str, Any]:
    return casework.decide_appeal(uow, p, appeal_id, uphold=body.uphold, reason=body.reason)


@router.get("/exam-questions", summary="Ops: the bank with answers; merchants: the active bank")
def list_questions(p: Merchant, uow: ReadUoW, language: Literal["zh-CN", "en"] | None = None) -> dict[str, Any]:
    return {"items": exam.list_questions(uow, p, language), "next_cursor": None}


@router.post("/exam-questions", status_code=201)
def add_question(body: NewQuestion, p: Ops, uow: UoW) -> dict[str, Any]:
    return exam.add_question(uow, p, text=body.text, options=body.options, correct_index=body.correct_index,
                             reason=body.reason, language=body.language)


@router.post("/exam-questions/{question_id}/retire")
def retire_question(question_id: int, body: Retire, p: Ops, uow: UoW) -> dict[str, Any]:
    return exam.retire_question(uow, p, question_id, body.reason)


@router.post("/exam-papers", status_code=201,
             summary="A merchant draws an exam paper (random questions; the open one again until handed in)")
def draw_paper(p: Merchant, uow: UoW, body: PaperRequest | None = None) -> dict[str, Any]:
    return exam.draw_paper(uow, p, body.language if body else exam_bank.LANGUAGES[0])


@router.post("/exam-attempts", status_code=201, summary="A merchant hands in its paper and is graded")
def take_exam(body: Answers, p: Merchant, uow: UoW) -> dict[str, Any]:
    return exam.take_exam(uow, p, body.answers, body.paper_id)


@router.get("/merchants/{merchant_id}/exam-attempts")
def list_attempts(merchant_id: int, p: Merchant, uow: ReadUoW) -> dict[str, Any]:
    return {"items": exam.list_attempts(uow, p, merchant_id), "next_cursor": None}


@router.get("/case-reports", summary="Monthly anonymised over-selling case reports")
def list_reports(_: Auth, uow: ReadUoW) -> dict[str, Any]:
    return {"items": casework.list_reports(uow), "next_cursor": None}


@router.post("/case-reports", summary="Ops: build the previous month's report now if it is missing")
def build_report(_: Ops, uow: UoW) -> dict[str, Any]:
    return {"built": casework.build_due_report(uow)}


# `?format=markdown` answers the text a person reads; the OpenAPI document says so
_MARKDOWN: dict[int | str, dict[str, Any]] = {200: {"content": {"text/markdown": {"schema": {"type": "string"}}}}}


@router.get("/case-reports/current", response_model=None, responses=_MARKDOWN,
            summary="The current month's cases so far, built like the monthly report (not stored, not sent)")
def preview_report(_: Auth, uow: ReadUoW, format: Literal["json", "markdown"] = "json"
                   ) -> dict[str, Any] | PlainTextResponse:
    report, markdown = casework.preview_report(uow)
    if format == "markdown":
        return PlainTextResponse(markdown, media_type="text/markdown; charset=utf-8")
    return report


@router.get("/case-reports/{month}", response_model=None, responses=_MARKDOWN)
def get_report(month: Annotated[str, Path(pattern=r"^\d{4}-\d{2}$")], _: Auth, uow: ReadUoW,
               format: Literal["json", "markdown"] = "json") -> dict[str, Any] | PlainTextResponse:
    report, markdown = casework.get_report(uow, month)
    if format == "markdown":
        return PlainTextResponse(markdown, media_type="text/markdown; charset=utf-8")
    return report
