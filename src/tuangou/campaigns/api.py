"""Group-buy campaigns, stock pools and the campaign policy over HTTP."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import AwareDatetime, Field

from tuangou.campaigns import cancelling, jobs, lifecycle, pools, rules, service
from tuangou.core.auth import Principal
from tuangou.core.http import MAX_ID, Auth, Buyer, IdPath, Merchant, Ops, ReadUoW, UoW, optional_principal
from tuangou.core.input import Body

router = APIRouter(prefix="/api/v1", tags=["campaigns"])
IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)]


class NewCampaign(Body):
    deal_id: int = Field(ge=1, le=MAX_ID, description="a goods deal of yours; its stock is what the group can buy")
    threshold: int = Field(ge=1, le=100_000, description="paid participants needed to form (成团)")
    max_size: int = Field(ge=1, le=100_000)
    deadline: AwareDatetime
    delivery_at: AwareDatetime
    pickup_point: str = Field(min_length=1, max_length=200)
    leader_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    supplier_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    close_on_threshold: bool = Field(default=True, description="false: stay open up to max_size")
    logistics_prep_hours: int | None = Field(default=None, ge=0, le=336,
                                             description="cut-off = delivery − this; default from the policy")
    cold_chain: bool = False
    pool_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    leader_commission_cents: int | None = Field(default=None, ge=0, le=10_000_000)
    price_tiers: list[tuple[Annotated[int, Field(ge=1, le=100_000)], Annotated[int, Field(ge=1, le=10**9)]]] = Field(
        default_factory=list, max_length=20,
                                               description="[[group size, unit price cents], ...]")


class Join(Body):
    quantity: int = Field(default=1, ge=1, le=1000)


class Advance(Body):
    to: str = Field(max_length=16, description="procuring | shipping | delivered | closed")
    reason: str = Field(default="", max_length=500)


class Cancel(Body):
    reason: str = Field(max_length=500, description="why the group cannot be delivered (required)")
    responsible: Literal["supplier", "merchant"] | None = Field(
        default=None, description="who answers for it; ops must name it, a merchant or supplier is itself")


class ColdChainBooking(Body):
    reference: str = Field(min_length=1, max_length=120)


class NewPool(Body):
    name: str = Field(min_length=1, max_length=120)
    capacity: int = Field(ge=0, le=100_000_000)
    safe_stock: int = Field(default=0, ge=0, le=100_000_000)
    merchant_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="ops only")


Hours = Annotated[int, Field(ge=0, le=24 * 14)]


class PolicyChange(Body):
    logistics_prep_hours: Hours | None = None
    cold_chain_lead_hours: Hours | None = None
    pool_warn_percents: list[Annotated[int, Field(ge=1, le=99)]] | None = Field(default=None, max_length=5)
    leader_commission_cents: int | None = Field(default=None, ge=0, le=10_000_000)
    stage_sla_hours: dict[Literal["procure", "ship", "deliver", "close"], Annotated[int, Field(ge=1, le=24 * 90)]] | None = None
    cancel_coupon_cents: int | None = Field(default=None, ge=0, le=10_000_000)
    cancel_coupon_valid_days: int | None = Field(default=None, ge=1, le=365)
    reason: str = Field(max_length=500)


def _optional_principal(request: Request) -> Principal | None:
    return optional_principal(request)


@router.post("/campaigns", status_code=201, summary="Open a group-buy on a goods deal")
def create_campaign(body: NewCampaign, p: Merchant, uow: UoW) -> dict[str, Any]:
    return service.create_campaign(uow, p, **body.model_dump())


@router.get("/campaigns", summary="Campaigns; mine=true: the merchant's, leader's or supplier's own")
def list_campaigns(request: Request, uow: ReadUoW, status: rules.CampaignStatus | None = None,
                   mine: bool = False, cursor: int | None = Query(None, ge=1, le=MAX_ID),
                   limit: int = Query(50, ge=1, le=200)) -> dict[str, Any]:
    items = lifecycle.list_campaigns(uow, _optional_principal(request), status=status, mine=mine, cursor=cursor,
                                     limit=limit)
    return {"items": items, "next_cursor": str(items[-1]["id"]) if len(items) == limit else None}


@router.get("/campaigns/procurement-queue", summary="Formed groups to buy for, the tightest cut-off first")
def procurement_queue(p: Auth, uow: ReadUoW) -> dict[str, Any]:
    return {"items": lifecycle.procurement_queue(uow, p)}


@router.get("/campaigns/participations", summary="The buyer's group-buys with their progress")
def participations(p: Buyer, uow: ReadUoW) -> dict[str, Any]:
    return {"items": lifecycle.my_participations(uow, p)}


@router.get("/campaigns/led", summary="A group leader's groups and commission earned")
def led(p: Auth, uow: ReadUoW) -> dict[str, Any]:
    return lifecycle.leader_summary(uow, p)


@router.get("/campaigns/{campaign_id}", summary="A campaign with its countdown")
def get_campaign(campaign_id: IdPath, uow: ReadUoW) -> dict[str, Any]:
    return lifecycle.get_campaign(uow, campaign_id)


@router.post("/campaigns/{campaign_id}/join", status_code=201,
             summary="Join (Idempotency-Key required): reserves an order; pay it at /orders/{id}/pay")
def join(campaign_id: IdPath, p: Buyer, uow: UoW, request: Request, response: Response, body: Join | None = None,
         idempotency_key: IdemKey = None) -> dict[str, Any]:
    result, replayed = service.join_campaign(uow, p, campaign_id, (body or Join()).quantity, idempotency_key or "",
                                             request.app.state.settings.reservation_ttl_minutes)
    if replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return result


@router.post("/campaigns/{campaign_id}/advance", summary="Move to the next stage (its owner role only)")
def advance(campaign_id: IdPath, body: Advance, p: Auth, uow: UoW) -> dict[str, Any]:
    return lifecycle.advance_campaign(uow, p, campaign_id, body.to, body.reason)


@router.post("/campaigns/{campaign_id}/cancel",
             summary="Call off a formed group that cannot be delivered: everyone refunded and compensated")
def cancel(campaign_id: IdPath, body: Cancel, p: Auth, uow: UoW) -> dict[str, Any]:
    return cancelling.cancel_campaign(uow, p, campaign_id, body.reason, body.responsible)


@router.post("/campaigns/{campaign_id}/cold-chain-booking", summary="Record the cold-chain transport booking")
def cold_chain(campaign_id: IdPath, body: ColdChainBooking, p: Auth, uow: UoW) -> dict[str, Any]:
    return lifecycle.book_cold_chain(uow, p, campaign_id, body.reference)


@router.post("/campaigns/{campaign_id}/members/{buyer_id}/collect", summary="Hand goods over at pick-up")
def collect(campaign_id: IdPath, buyer_id: IdPath, p: Auth, uow: UoW) -> dict[str, Any]:
    return lifecycle.mark_collected(uow, p, campaign_id, buyer_id)


@router.get("/campaigns/{campaign_id}/purchase-list", summary="The supplier's purchase list")
def purchase_list(campaign_id: IdPath, p: Auth, uow: ReadUoW) -> dict[str, Any]:
    return lifecycle.get_purchase_list(uow, p, campaign_id)


@router.post("/campaigns/run", summary="Ops run the campaigns tick now (the worker runs it anyway; safe twice)")
def run_now(_: Ops, request: Request) -> dict[str, Any]:
    return jobs.run_due(request.app.state.job_context)


@router.post("/stock-pools", status_code=201, summary="A stock pool several campaigns sell from")
def create_pool(body: NewPool, p: Merchant, uow: UoW) -> dict[str, Any]:
    return pools.create_pool(uow, p, service.policy, body.name, body.capacity, body.safe_stock, body.merchant_id)


@router.get("/stock-pools")
def list_pools(p: Merchant, uow: ReadUoW) -> dict[str, Any]:
    return {"items": pools.list_pools(uow, p, service.policy)}


@router.get("/stock-pools/{pool_id}")
def get_pool(pool_id: IdPath, p: Merchant, uow: ReadUoW) -> dict[str, Any]:
    return pools.get_pool(uow, p, service.policy, pool_id)


@router.get("/campaign-policy")
def get_policy(uow: ReadUoW) -> dict[str, Any]:
    return service.get_policy(uow)


@router.put("/campaign-policy", summary="Ops change the campaign policy (reason required, audited)")
def set_policy(body: PolicyChange, p: Ops, uow: UoW) -> dict[str, Any]:
    changes = body.model_dump(exclude_none=True, exclude={"reason"})
    return service.set_policy(uow, p, changes, body.reason)
