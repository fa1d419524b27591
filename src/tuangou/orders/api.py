"""Orders, payments, vouchers and refunds over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import date
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from tuangou.core.errors import DomainError
from tuangou.core.http import Auth, Buyer, Merchant, ReadUoW, UoW
from tuangou.core.input import Body
from tuangou.core.ratelimit import request_address
from tuangou.orders import rules, service, signals

router = APIRouter(prefix="/api/v1", tags=["orders"])
T = TypeVar("T")
IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)]


class NewOrder(Body):
    deal_id: int
    quantity: int = Field(default=1, ge=1, le=1000)
    service_date: date | None = Field(default=None, description="default: today in the store's time zone")
    slot: str | None = Field(default=None, max_length=16)
    coupon_code: str | None = Field(default=None, max_length=24, description="one coupon of yours to apply")
    address: str | None = Field(default=None, max_length=200, description="delivery address (goods)")
    recipient_phone: str | None = Field(default=None, max_length=32)
    payment_method: str | None = Field(default=None, max_length=64,
                                       description="the payment method's token; the gateway names its account")


class Pay(Body):
    method: Literal["sandbox"] = "sandbox"
    outcome: Literal["succeed", "fail", "timeout"] | None = Field(
        default=None, description="sandbox only: what the gateway answers")


class RefundRequest(Body):
    codes: list[str] | None = Field(default=None, description="omit to refund every unused voucher")
    reason: str = Field(default="", max_length=500)


class RedeemRequest(Body):
    reason: str = Field(default="", max_length=500, description="ops redeeming on a merchant's behalf: why")


async def _run(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a hot command. On SQLite, in place on the event loop: one writer at a time and statements of
    microseconds, so a threadpool hop would cost more than it overlaps. On PostgreSQL, in a worker
    thread: each statement is a network round trip, and other requests must go on meanwhile
    (docs/adr/0010 has the measurements)."""
    if request.app.state.db.dialect == "sqlite":
        return fn(*args, **kwargs)
    return await run_in_threadpool(fn, *args, **kwargs)


# The hot routes are `async def`, with async dependencies: no threadpool hop for routing, auth and
# validation; the command itself runs as _run decides.
@router.post("/orders", status_code=201, summary="Reserve units of a deal (Idempotency-Key required)")
async def place_order(body: NewOrder, p: Buyer, uow: UoW, request: Request, response: Response,
                idempotency_key: IdemKey = None) -> dict[str, Any]:
    order, replayed = await _run(
        request, service.place_order, uow, p, body.deal_id, body.quantity, idempotency_key or "",
        service_date=body.service_date, slot=body.slot,
        ttl_minutes=request.app.state.settings.reservation_ttl_minutes, coupon_code=body.coupon_code,
        signals=_signals(request, body))
    if replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return asdict(order)


def _signals(request: Request, body: NewOrder) -> rules.Signals:
    """Where the order comes from: the device header, the client address (behind trusted proxies only),
    what the buyer typed, and the payer account the gateway names for the payment method."""
    state = request.app.state
    payment = state.payment_gateway.account_fingerprint(body.payment_method) if body.payment_method else None
    return signals.signals(state.settings.secret_key, device=request.headers.get("x-device-id"),
                           ip=request_address(request), address=body.address, phone=body.recipient_phone,
                           payment_account=payment)


@router.post("/orders/{order_id}/pay", summary="Pay a reserved order through the payment gateway")
async def pay(order_id: int, p: Buyer, uow: UoW, request: Request, response: Response, body: Pay | None = None,
        idempotency_key: IdemKey = None) -> dict[str, Any]:
    order, payment = await _run(request, service.pay_order, uow, p, order_id, idempotency_key or "",
                                request.app.state.payment_gateway, body.outcome if body else None)
    if payment.get("status") == rules.PaymentStatus.FAILED:
        raise DomainError(payment.get("message") or "payment declined", code="payment_declined", status=402,
                          payment=payment)
    if payment.get("status") == rules.PaymentStatus.UNKNOWN:
        response.status_code = 202
    return {**asdict(order), "payment": payment}


@router.post("/orders/{order_id}/cancel")
def cancel(order_id: int, p: Buyer, uow: UoW) -> dict[str, Any]:
    return asdict(service.cancel_order(uow, p, order_id))


@router.post("/orders/{order_id}/refund", summary="Refund unused vouchers of a paid order")
def refund(order_id: int, p: Auth, uow: UoW, body: RefundRequest | None = None) -> dict[str, Any]:
    body = body or RefundRequest()
    return asdict(service.refund_vouchers(uow, p, order_id, body.codes, body.reason))


@router.get("/orders/{order_id}")
def get_order(order_id: int, p: Auth, uow: ReadUoW) -> dict[str, Any]:
    return asdict(service.get_order(uow, p, order_id))


@router.get("/orders", summary="My orders (buyer), my stores' orders (merchant), all (ops)")
def list_orders(p: Auth, uow: ReadUoW, status: rules.OrderStatus | None = None, deal_id: int | None = None,
                cursor: int | None = None, limit: int = Query(50, ge=1, le=200)) -> dict[str, Any]:
    items = service.list_orders(uow, p, status=status, deal_id=deal_id, cursor=cursor, limit=limit)
    return {"items": [asdict(o) for o in items],
            "next_cursor": str(items[-1].id) if len(items) == limit else None}


@router.get("/vouchers/{code}")
def get_voucher(code: str, p: Auth, uow: ReadUoW) -> dict[str, Any]:
    return service.lookup_voucher(uow, p, code)


@router.post("/vouchers/{code}/redeem", summary="Merchant redeems (核销) a voucher, exactly once")
def redeem(code: str, p: Merchant, uow: UoW, request: Request, body: RedeemRequest | None = None) -> dict[str, Any]:
    return service.redeem_voucher(uow, p, code, request.app.state.settings.platform_commission_bps,
                                  body.reason if body else "")


# ---- re-dating a booked order (预约改期) ------------------------------------------------------------------

class RedateRequest(Body):
    service_date: date = Field(description="the new service date (store-local)")
    slot: str | None = Field(default=None, max_length=16, description="slot deals: the new slot")
    reason: str = Field(default="", max_length=500)


class RedateDecision(Body):
    reason: str = Field(default="", max_length=500, description="required from ops")


@router.get("/orders/{order_id}/redate-options", summary="Dates (with room) a booked order may move to")
def redate_options(order_id: int, p: Auth, uow: ReadUoW) -> dict[str, Any]:
    return service.redate_options(uow, p, order_id)


@router.post("/orders/{order_id}/redate", summary="The buyer moves a booking: at once inside an agreed window, "
             "else as a proposal the merchant decides")
def redate(order_id: int, body: RedateRequest, p: Auth, uow: UoW) -> dict[str, Any]:
    return service.request_redating(uow, p, order_id, body.service_date, body.slot, body.reason)


@router.get("/redatings", summary="Re-datings: my orders' (buyer), my stores' (merchant), all (ops)")
def list_redatings(p: Auth, uow: ReadUoW, status: rules.RedateStatus | None = None) -> dict[str, Any]:
    return {"items": service.list_redatings(uow, p, status)}


@router.post("/redatings/{redating_id}/approve", summary="The merchant approves a proposed date; the order moves")
def approve_redating(redating_id: int, p: Merchant, uow: UoW, body: RedateDecision | None = None) -> dict[str, Any]:
    return service.decide_redating(uow, p, redating_id, True, (body or RedateDecision()).reason)


@router.post("/redatings/{redating_id}/reject", summary="The merchant rejects a proposed date")
def reject_redating(redating_id: int, p: Merchant, uow: UoW, body: RedateDecision | None = None) -> dict[str, Any]:
    return service.decide_redating(uow, p, redating_id, False, (body or RedateDecision()).reason)
