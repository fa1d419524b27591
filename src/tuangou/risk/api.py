"""Risk over HTTP: the review queue (ops), the buyer's answer, merchant links, the policy, and the store
reputation buyers see on a deal page."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import Field

from tuangou.core.http import Buyer, Merchant, Ops, ReadUoW, UoW
from tuangou.core.input import Body
from tuangou.risk import detect, rules, service

router = APIRouter(prefix="/api/v1", tags=["risk"])
CaseStatus = Literal["open", "confirmed", "released"]


class Decide(Body):
    outcome: Literal["brushing", "abuse", "fraud", "false_positive"]
    note: str = Field(default="", max_length=2000)


class Answer(Body):
    placed: bool = Field(description="true: I placed this order")
    note: str = Field(default="", max_length=1000)


class Link(Body):
    kind: Literal["device", "address", "payment", "staff"]
    value: str = Field(min_length=1, max_length=200,
                       description="device id, address, payment method token, or the staff buyer account's id")


class PolicyChange(Body):
    changes: dict[str, Any] = Field(description="fields of the risk policy to change, e.g. "
                                                "{\"hold_orders\": {\"device\": 4}}")
    reason: str = Field(min_length=1, max_length=500)


@router.get("/risk/cases", summary="The review queue (ops)")
def list_cases(p: Ops, uow: ReadUoW, status: CaseStatus | None = None,
               limit: int = Query(100, ge=1, le=500)) -> dict[str, Any]:
    return {"items": service.list_cases(uow, p, status, limit)}


@router.get("/risk/cases/{case_id}", summary="A case with its evidence graph and the buyer's answer (ops)")
def get_case(case_id: int, p: Ops, uow: ReadUoW) -> dict[str, Any]:
    return service.get_case(uow, p, case_id)


@router.post("/risk/cases/{case_id}/decide", summary="Confirm (brushing, abuse, fraud) or release a case (ops)")
def decide(case_id: int, body: Decide, p: Ops, uow: UoW, request: Request) -> dict[str, Any]:
    return service.decide_case(uow, p, case_id, body.outcome, body.note,
                               ttl_minutes=request.app.state.settings.reservation_ttl_minutes)


@router.post("/risk/cases/{case_id}/release", summary="One click: a false positive, the held order goes on (ops)")
def release(case_id: int, p: Ops, uow: UoW, request: Request) -> dict[str, Any]:
    return service.decide_case(uow, p, case_id, rules.Outcome.FALSE_POSITIVE.value, "released",
                               ttl_minutes=request.app.state.settings.reservation_ttl_minutes)


@router.post("/risk/scan", summary="Run the after-the-fact rules now (ops; the worker runs them every minute)")
def scan(p: Ops, uow: UoW) -> dict[str, Any]:
    return detect.scan_now(uow, p)


@router.get("/risk/rules", summary="Each rule's decided cases and false-positive rate (ops)")
def rule_stats(p: Ops, uow: ReadUoW) -> dict[str, Any]:
    return service.rule_stats(uow, p)


@router.get("/risk/policy", summary="The risk policy in force (ops)")
def get_policy(p: Ops, uow: ReadUoW) -> dict[str, Any]:
    return service.get_policy(uow)


@router.put("/risk/policy", summary="Change the risk policy (ops, audited)")
def put_policy(body: PolicyChange, p: Ops, uow: UoW) -> dict[str, Any]:
    return service.update_policy(uow, p, body.changes, body.reason)


@router.get("/risk/questions", summary="Questions about my orders (buyer)")
def my_questions(p: Buyer, uow: ReadUoW) -> dict[str, Any]:
    return {"items": service.my_questions(uow, p)}


@router.post("/risk/questions/{question_id}/answer", summary="Did you place this order? (buyer)")
def answer(question_id: int, body: Answer, p: Buyer, uow: UoW) -> dict[str, Any]:
    return service.answer_question(uow, p, question_id, body.placed, body.note)


@router.post("/merchants/{merchant_id}/risk-links", status_code=201,
             summary="Declare (merchant) or add (ops) a device, address, payment account or staff account")
def add_link(merchant_id: int, body: Link, p: Merchant, uow: UoW, request: Request) -> dict[str, Any]:
    state = request.app.state
    account = state.payment_gateway.account_fingerprint(body.value) if body.kind == "payment" else None
    return service.add_link(uow, p, state.settings.secret_key, merchant_id, body.kind, body.value, account)


@router.get("/deals/{deal_id}/reputation", summary="The store's reputation on a deal page (public)")
def reputation(deal_id: int, uow: ReadUoW) -> dict[str, Any]:
    return service.reputation(uow, deal_id)
