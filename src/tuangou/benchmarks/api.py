"""The no-op endpoint: the ceiling the flash-sale benchmark measures orders against.

Always on and harmless: it needs a valid bearer token of any role, parses a body
shaped like an order, touches no storage and returns JSON. It is `async def` like
the order routes, with the same auth dependency and middleware, so it pays the same
routing, validation and serialisation costs: the difference to the order routes is
the order work alone, and it stays the app's cheapest authenticated route.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field

from tuangou.core.http import Auth
from tuangou.core.input import Body

router = APIRouter(prefix="/api/v1/bench", tags=["bench"])


class NoopBody(Body):
    deal_id: int = 0
    quantity: int = Field(default=1, ge=1, le=1000)


@router.post("/noop", summary="Auth, routing and JSON with no storage: the benchmark's ceiling")
async def noop(p: Auth, body: NoopBody | None = None) -> dict[str, Any]:
    body = body or NoopBody()
    return {"ok": True, "user_id": p.user_id, "role": p.role.value, "deal_id": body.deal_id,
            "quantity": body.quantity}
