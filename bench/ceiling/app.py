"""The floor under every figure of `tuangou bench flash-sale --burst`: a bare FastAPI POST with a pydantic
body, no middleware of ours, no auth, no storage, served like the benchmark serves the app (uvicorn, uvloop,
httptools, one process). Run with bench/ceiling/burst.py."""

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class Body(BaseModel):
    deal_id: int
    quantity: int = 1


@app.post("/x")
async def x(body: Body) -> dict[str, object]:
    return {"ok": True, "quantity": body.quantity}
