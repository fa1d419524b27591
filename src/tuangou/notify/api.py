"""Inbox and webhook subscriptions over HTTP."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from tuangou.core.http import Auth, Ops, ReadUoW, UoW
from tuangou.core.input import Body
from tuangou.notify import phone, service

router = APIRouter(prefix="/api/v1", tags=["notifications"])


class MarkRead(Body):
    ids: list[int] | None = Field(default=None, description="omit to mark everything read")


class NewEndpoint(Body):
    url: str = Field(max_length=500)
    event_types: list[str] = Field(default_factory=lambda: ["*"])


@router.get("/inbox", summary="My notifications, newest first")
def inbox(p: Auth, uow: ReadUoW, unread: bool = False, kind: str | None = None, cursor: int | None = None,
          limit: int = Query(50, ge=1, le=200)) -> dict[str, Any]:
    items = service.inbox(uow, p.user_id, unread_only=unread, kind=kind, cursor=cursor, limit=limit)
    return {"items": [asdict(i) for i in items],
            "next_cursor": str(items[-1].id) if len(items) == limit else None}


@router.post("/inbox/read")
def mark_read(body: MarkRead, p: Auth, uow: UoW) -> dict[str, int]:
    return {"marked": service.mark_read(uow, p.user_id, body.ids)}


@router.post("/webhooks", status_code=201, summary="Subscribe a URL to events (signed with the returned secret)")
def add_webhook(body: NewEndpoint, p: Auth, request: Request, uow: UoW) -> dict[str, Any]:
    return service.add_endpoint(uow, p, body.url, body.event_types, request.app.state.settings.webhook_allowed())


@router.get("/webhooks")
def list_webhooks(p: Auth, uow: ReadUoW) -> dict[str, Any]:
    return {"items": service.list_endpoints(uow, p), "next_cursor": None}


@router.get("/webhooks/{endpoint_id}/deliveries")
def deliveries(endpoint_id: int, p: Auth, uow: ReadUoW) -> dict[str, Any]:
    return {"items": service.list_deliveries(uow, p, endpoint_id), "next_cursor": None}


@router.post("/webhooks/{endpoint_id}/replay", summary="Ops: retry dead deliveries")
def replay(endpoint_id: int, p: Ops, uow: UoW) -> dict[str, int]:
    return {"requeued": service.replay_dead(uow, p, endpoint_id)}


class PhoneChoice(Body):
    channel: str = Field(description="sms | wechat | http")
    address: str = Field(max_length=500, description="phone number, WeChat openid, or URL for http")
    kinds: list[str] | None = Field(default=None, description="notification kinds sent to the phone; "
                                    "default: red_line_warning, sold_out, stock_suggestion, dispute_opened, …")


@router.get("/me/phone", summary="Where my urgent notifications go besides the inbox")
def get_phone(p: Auth, uow: ReadUoW) -> dict[str, Any]:
    return phone.get_settings(uow, p)


@router.put("/me/phone", summary="Send chosen kinds of notification to my phone (SMS, WeChat or HTTP)")
def set_phone(body: PhoneChoice, p: Auth, uow: UoW) -> dict[str, Any]:
    return phone.set_settings(uow, p, body.channel, body.address, body.kinds)


@router.get("/me/phone/deliveries", summary="Phone messages sent (or being retried) to me")
def phone_deliveries(p: Auth, uow: ReadUoW) -> dict[str, Any]:
    return {"items": phone.my_deliveries(uow, p), "next_cursor": None}
