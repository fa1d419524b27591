"""Disputes, the tier policy, coupons, stacked packages, recovery claims and after-sales tickets over HTTP."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request
from pydantic import Field

from tuangou.core.http import Auth, Buyer, Merchant, Ops, ReadUoW, UoW
from tuangou.core.input import Body
from tuangou.core.ratelimit import request_address
from tuangou.disputes import coupons, inkind, policy, rules, service, stacking, tickets
from tuangou.orders import signals

router = APIRouter(prefix="/api/v1", tags=["disputes"])
Kind = Literal["late_fulfilment", "cannot_fulfil_today", "cannot_fulfil", "quality_problem", "not_as_described"]
TierName = Literal["light", "medium", "severe"]


class Evidence(Body):
    kind: Literal["photo", "text", "chat", "logistics", "inventory", "other"] = "photo"
    name: str = Field(default="", max_length=200)
    url: str = Field(default="", max_length=500)
    note: str = Field(default="", max_length=500)


DB_INT = 2**31 - 1


class NewDispute(Body):
    order_id: int = Field(ge=1, le=DB_INT)
    kind: Kind
    description: str = Field(default="", max_length=2000)
    late_minutes: int | None = Field(default=None, ge=0, le=100000)
    evidence: list[Evidence] = Field(default_factory=list, max_length=20)


class Confirm(Body):
    reason: str = Field(default="", max_length=500)
    tier: TierName | None = Field(default=None, description="ops only: override the policy's tier")
    oversale: bool = Field(default=False, description="ops only: confirmed as the merchant's over-selling")


class Note(Body):
    note: str = Field(default="", max_length=2000)
    evidence: list[Evidence] = Field(default_factory=list, max_length=20)


class Reason(Body):
    reason: str = Field(min_length=1, max_length=500)


class PolicyChange(Body):
    changes: dict[str, Any] = Field(description="fields of the policy to change, e.g. {\"tiers\": {\"severe\": "
                                                "{\"coupon_cents\": 3000}}}")
    reason: str = Field(min_length=1, max_length=500)


class NewCoupon(Body):
    buyer_id: int = Field(ge=1, le=DB_INT)
    kind: Literal["amount", "percent"] = "amount"
    value: int = Field(gt=0, le=10_000_000, description="cents (amount) or basis points (percent)")
    origin: Literal["compensation", "promotion"] = "promotion"
    threshold_cents: int = Field(default=0, ge=0, le=DB_INT)
    cap_cents: int | None = Field(default=None, ge=0, le=DB_INT)
    valid_days: int = Field(default=30, ge=1, le=3650)
    reason: str = Field(min_length=1, max_length=200)


class StackDecision(Body):
    approve: bool
    reason: str = Field(min_length=1, max_length=500)


class Photo(Body):
    name: str = Field(max_length=200)
    taken_at: str | None = Field(default=None, description="ISO 8601 with offset, from the photo's metadata")
    size_bytes: int = Field(default=0, ge=0, le=DB_INT)


class NewTicket(Body):
    order_id: int = Field(ge=1, le=DB_INT)
    description: str = Field(min_length=1, max_length=2000)
    photos: list[Photo] = Field(default_factory=list, max_length=10)


class Choice(Body):
    proposal: int = Field(ge=0, le=20)


class TicketDecision(Body):
    approve: bool = True
    reason: str = Field(default="", max_length=500)


def _ev(items: list[Evidence]) -> list[dict[str, Any]]:
    return [e.model_dump() for e in items]


# ---- disputes -----------------------------------------------------------------------------------

@router.post("/disputes", status_code=201, summary="Open a dispute on an order (buyer, its merchant or ops)")
def open_dispute(body: NewDispute, p: Auth, uow: UoW, request: Request) -> dict[str, Any]:
    seen = signals.signals(request.app.state.settings.secret_key, device=request.headers.get("x-device-id"),
                           ip=request_address(request))
    return asdict(service.open_dispute(uow, p, body.order_id, body.kind, body.description,
                                       evidence=_ev(body.evidence), late_minutes=body.late_minutes,
                                       gateway=request.app.state.payment_gateway,
                                       signals={"device": seen.device, "ip": seen.ip}))


@router.get("/disputes", summary="My disputes (buyer), my stores' (merchant), all (ops)")
def list_disputes(p: Auth, uow: ReadUoW, status: rules.DisputeStatus | None = None, cursor: int | None = None,
                  limit: int = Query(50, ge=1, le=200)) -> dict[str, Any]:
    items = service.list_disputes(uow, p, status=status, cursor=cursor, limit=limit)
    return {"items": [asdict(d) for d in items], "next_cursor": str(items[-1].id) if len(items) == limit else None}


@router.get("/disputes/{dispute_id}", summary="A dispute with its full history, coupons and package request")
def get_dispute(dispute_id: int, p: Auth, uow: ReadUoW) -> dict[str, Any]:
    return asdict(service.get_dispute(uow, p, dispute_id))


@router.post("/disputes/{dispute_id}/confirm", summary="Uphold: refund and coupons at once, paid by the platform")
def confirm(dispute_id: int, body: Confirm, p: Merchant, uow: UoW, request: Request) -> dict[str, Any]:
    return asdict(service.confirm_dispute(uow, p, dispute_id, body.reason, tier=body.tier, oversale=body.oversale,
                                          gateway=request.app.state.payment_gateway))


@router.post("/disputes/{dispute_id}/contest", summary="The merchant disagrees, with evidence")
def contest(dispute_id: int, body: Note, p: Merchant, uow: UoW) -> dict[str, Any]:
    return asdict(service.contest_dispute(uow, p, dispute_id, body.note, _ev(body.evidence)))


@router.post("/disputes/{dispute_id}/reject", summary="Ops turn a dispute down")
def reject(dispute_id: int, body: Reason, p: Ops, uow: UoW) -> dict[str, Any]:
    return asdict(service.reject_dispute(uow, p, dispute_id, body.reason))


@router.post("/disputes/{dispute_id}/withdraw", summary="The buyer takes a dispute back")
def withdraw(dispute_id: int, p: Buyer, uow: UoW, body: Note | None = None) -> dict[str, Any]:
    return asdict(service.withdraw_dispute(uow, p, dispute_id, body.note if body else ""))


@router.post("/disputes/{dispute_id}/evidence", summary="Add a note or evidence to the history")
def add_evidence(dispute_id: int, body: Note, p: Auth, uow: UoW) -> dict[str, Any]:
    return asdict(service.add_evidence(uow, p, dispute_id, body.note, _ev(body.evidence)))


@router.post("/disputes/{dispute_id}/stack-request", status_code=201,
             summary="Buyer of a severe dispute applies for a stacked compensation package")
def request_stack(dispute_id: int, p: Buyer, uow: UoW, body: Note | None = None) -> dict[str, Any]:
    return stacking.request_stack(uow, p, dispute_id, body.note if body else "")


@router.get("/disputes/{dispute_id}/stack-request")
def get_stack(dispute_id: int, p: Auth, uow: ReadUoW) -> dict[str, Any]:
    return stacking.stack_request_of(uow, p, dispute_id)


@router.post("/disputes/{dispute_id}/stack-request/decision", summary="Ops approve or reject a stacked package")
def decide_stack(dispute_id: int, body: StackDecision, p: Ops, uow: UoW) -> dict[str, Any]:
    return stacking.decide_stack(uow, p, dispute_id, body.approve, body.reason)


# ---- policy, coupons, recoveries ----------------------------------------------------------------

@router.get("/dispute-policy", summary="Tiers, SLA, coupon amounts and stacking (seed defaults until changed)")
def get_policy(p: Auth, uow: ReadUoW) -> dict[str, Any]:
    return policy.get_policy(uow)


@router.patch("/dispute-policy", summary="Ops change the dispute policy (audited)")
def update_policy(body: PolicyChange, p: Ops, uow: UoW) -> dict[str, Any]:
    return policy.update_policy(uow, p, body.changes, body.reason)


@router.get("/coupons", summary="My coupons (buyer) or anyone's (ops, ?buyer_id=)")
def list_coupons(p: Auth, uow: ReadUoW, buyer_id: int | None = None,
                 status: rules.CouponStatus | None = None) -> dict[str, Any]:
    return {"items": coupons.list_coupons(uow, p, buyer_id=buyer_id, status=status)}


@router.post("/coupons", status_code=201, summary="Ops give a buyer a coupon (Idempotency-Key required)")
def grant_coupon(body: NewCoupon, p: Ops, uow: UoW,
                 idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=100)] = None
                 ) -> dict[str, Any]:
    return coupons.grant_coupon(uow, p, buyer_id=body.buyer_id, kind=body.kind, value=body.value,
                                origin=body.origin, reason=body.reason, idempotency_key=idempotency_key or "",
                                threshold_cents=body.threshold_cents, valid_days=body.valid_days,
                                cap_cents=body.cap_cents)


@router.post("/item-vouchers/{code}/redeem",
             summary="The merchant serves a free item (compensation in kind) and redeems its voucher, once")
def redeem_item_voucher(code: Annotated[str, Path(max_length=40)], p: Merchant, uow: UoW) -> dict[str, Any]:
    return inkind.redeem_item_voucher(uow, p, code)


@router.get("/recovery-claims", summary="What the platform paid first and recovers from merchants")
def recoveries(p: Merchant, uow: ReadUoW, merchant_id: int | None = None,
               status: rules.RecoveryStatus | None = None) -> dict[str, Any]:
    return stacking.list_recoveries(uow, p, merchant_id=merchant_id, status=status)


# ---- after-sales tickets ------------------------------------------------------------------------

@router.post("/after-sales-tickets", status_code=201, summary="Buyer opens a ticket; triage proposes remedies")
def open_ticket(body: NewTicket, p: Buyer, uow: UoW) -> dict[str, Any]:
    return tickets.open_ticket(uow, p, body.order_id, body.description, [ph.model_dump() for ph in body.photos])


@router.get("/after-sales-tickets")
def list_tickets(p: Auth, uow: ReadUoW, status: rules.TicketStatus | None = None) -> dict[str, Any]:
    return {"items": tickets.list_tickets(uow, p, status)}


@router.get("/after-sales-tickets/{ticket_id}")
def get_ticket(ticket_id: int, p: Auth, uow: ReadUoW) -> dict[str, Any]:
    return tickets.get_ticket(uow, p, ticket_id)


@router.post("/after-sales-tickets/{ticket_id}/choice", summary="The buyer picks one proposal")
def choose(ticket_id: int, body: Choice, p: Buyer, uow: UoW) -> dict[str, Any]:
    return tickets.choose(uow, p, ticket_id, body.proposal)


@router.post("/after-sales-tickets/{ticket_id}/decision", summary="The merchant or ops confirm (money and stock "
                                                                  "follow) or reject")
def decide_ticket(ticket_id: int, body: TicketDecision, p: Merchant, uow: UoW) -> dict[str, Any]:
    return tickets.decide(uow, p, ticket_id, body.approve, body.reason)
