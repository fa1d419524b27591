"""Governance over HTTP: over-sale incidents, inventory change requests, stock counts."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from pydantic import Field

from tuangou.catalog import rules as catalog_rules
from tuangou.core.errors import ValidationFailed
from tuangou.core.http import Merchant, ReadUoW, UoW, file_response, read_upload
from tuangou.core.input import Body
from tuangou.governance import inventory, service

router = APIRouter(prefix="/api/v1", tags=["governance"])


class CapChange(Body):
    service_date: date | None = Field(default=None, description="for voucher deals")
    slot: str | None = Field(default=None, max_length=16)
    bucket: str | None = Field(default=None, description="'total' or 'stock' instead of a date")
    cap: int = Field(ge=0, le=100_000_000)
    reason: str = Field(default="", max_length=500)


@router.put("/deals/{deal_id}/capacity", summary="Set the cap of one service date, slot, total or stock")
def set_capacity(deal_id: int, body: CapChange, p: Merchant, uow: UoW) -> dict[str, Any]:
    if body.bucket is not None:
        key = body.bucket
    elif body.service_date is not None:
        key = catalog_rules.date_bucket(body.service_date, body.slot)
    else:
        raise ValidationFailed("give service_date (and optional slot) or bucket")
    return service.set_bucket_cap(uow, p, deal_id, key, body.cap, body.reason)


class ChangeDecision(Body):
    decision: str = Field(description="approve | reject | false_claim")
    reason: str = Field(min_length=1, max_length=500)


class CountIn(Body):
    counted: int = Field(ge=0, le=100_000_000)
    note: str = Field(default="", max_length=1000)


@router.get("/oversale-incidents", summary="Over-sale incidents (merchants see their own)")
def incidents(p: Merchant, uow: ReadUoW, deal_id: int | None = None) -> dict[str, Any]:
    return {"items": service.list_incidents(uow, p, deal_id), "next_cursor": None}


@router.get("/oversale-incidents/{incident_id}")
def incident(incident_id: int, p: Merchant, uow: ReadUoW) -> dict[str, Any]:
    return service.get_incident(uow, p, incident_id)


@router.post("/deals/{deal_id}/inventory-change-requests", status_code=201,
             summary="Ask to raise a cap or stock: reason + evidence file (multipart)")
def file_request(deal_id: int, p: Merchant, uow: UoW, request: Request, bucket: Annotated[str, Form(max_length=40)],
                 requested_cap: Annotated[int, Form(ge=0, le=100_000_000)],
                 reason: Annotated[str, Form(min_length=1, max_length=1000)],
                 evidence: Annotated[UploadFile, File(description="purchase order photo or file")]
                 ) -> dict[str, Any]:
    data = read_upload(evidence, min(inventory.MAX_EVIDENCE_BYTES, request.app.state.settings.max_file_bytes))
    return inventory.file_change_request(uow, p, deal_id, bucket=bucket, requested_cap=requested_cap, reason=reason,
                                         evidence_name=evidence.filename or "evidence",
                                         evidence_type=evidence.content_type or "application/octet-stream",
                                         evidence=data)


@router.get("/inventory-change-requests")
def list_requests(p: Merchant, uow: ReadUoW, status: str | None = None, deal_id: int | None = None
                  ) -> dict[str, Any]:
    return {"items": inventory.list_change_requests(uow, p, status, deal_id), "next_cursor": None}


@router.get("/inventory-change-requests/{request_id}/evidence")
def evidence(request_id: int, p: Merchant, uow: ReadUoW) -> Response:
    name, content_type, data = inventory.evidence_of(uow, p, request_id)
    return file_response(name, content_type, data)


@router.post("/inventory-change-requests/{request_id}/decision", summary="Ops: approve, reject or false_claim")
def decide(request_id: int, body: ChangeDecision, p: Merchant, uow: UoW) -> dict[str, Any]:
    return inventory.decide_change_request(uow, p, request_id, body.decision, body.reason)


@router.post("/deals/{deal_id}/stock-counts", status_code=201, summary="Record a physical stock count (盘点)")
def count(deal_id: int, body: CountIn, p: Merchant, uow: UoW) -> dict[str, Any]:
    return inventory.record_stock_count(uow, p, deal_id, body.counted, body.note)


@router.get("/deals/{deal_id}/stock-counts", summary="Stock counts with the online/physical difference")
def counts(deal_id: int, p: Merchant, uow: ReadUoW) -> dict[str, Any]:
    return inventory.list_stock_counts(uow, p, deal_id)
