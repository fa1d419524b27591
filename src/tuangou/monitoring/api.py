"""The KPI board, business lines, the monitoring policy, and the operations probes /readyz and /metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from pydantic import BaseModel, Field

from tuangou.core.http import Auth, Ops, ReadUoW, UoW
from tuangou.monitoring import health, service

router = APIRouter(tags=["monitoring"])
V1 = "/api/v1"


class Reason(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class PolicyChange(BaseModel):
    changes: dict[str, Any]
    reason: str = Field(min_length=1, max_length=500)


@router.get(f"{V1}/kpi/lines", summary="Ops: KPIs of every business line (category, city) with its level")
def lines(p: Ops, uow: ReadUoW) -> dict[str, Any]:
    return {"items": service.board(uow, p), "next_cursor": None}


@router.get(f"{V1}/kpi/lines/{{category}}/{{city}}/transitions", summary="Ops: a line's level changes")
def line_transitions(category: str, city: str, p: Ops, uow: ReadUoW) -> dict[str, Any]:
    return {"items": service.transitions(uow, p, category, city), "next_cursor": None}


@router.post(f"{V1}/kpi/lines/{{category}}/{{city}}/resume", summary="Ops: lift a paused line (reason, audited)")
def resume(category: str, city: str, body: Reason, p: Ops, uow: UoW) -> dict[str, Any]:
    return service.resume_line(uow, p, category, city, body.reason)


@router.post(f"{V1}/kpi/refresh", summary="Ops: fold new events and judge the lines now")
def refresh(p: Ops, uow: UoW) -> dict[str, int]:
    return service.refresh(uow, p)


@router.get(f"{V1}/kpi/check-tasks", summary="Ops: automatic check tasks opened by yellow lines")
def tasks(p: Ops, uow: ReadUoW, status: str | None = "open") -> dict[str, Any]:
    return {"items": service.check_tasks(uow, p, status), "next_cursor": None}


@router.post(f"{V1}/kpi/check-tasks/{{task_id}}/done", summary="Ops: close a check task with what was found")
def close_task(task_id: int, body: Reason, p: Ops, uow: UoW) -> dict[str, Any]:
    return service.close_check_task(uow, p, task_id, body.reason)


@router.get(f"{V1}/kpi/merchants/{{merchant_id}}", summary="A merchant's KPIs (ops, or the merchant itself)")
def merchant(merchant_id: int, p: Auth, uow: ReadUoW) -> dict[str, Any]:
    return service.merchant_kpis(uow, p, merchant_id)


@router.get(f"{V1}/monitoring-policy", summary="KPI targets (per line too) and the three warning levels")
def get_policy(uow: ReadUoW) -> dict[str, Any]:
    return service.get_policy(uow)


@router.put(f"{V1}/monitoring-policy", summary="Ops change targets or levels (reason required, audited)")
def set_policy(body: PolicyChange, p: Ops, uow: UoW) -> dict[str, Any]:
    return service.set_policy(uow, p, body.changes, body.reason)


# probes, not API: kept out of the OpenAPI document (a 503 from /readyz is an answer, not an error)
@router.get("/readyz", include_in_schema=False)
def readyz(request: Request, uow: ReadUoW) -> JSONResponse:
    settings = request.app.state.settings
    ok, checks = health.readiness(uow, settings.redis_url, settings.expect_worker)
    return JSONResponse({"status": "ready" if ok else "not_ready", "checks": checks}, status_code=200 if ok else 503)


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request, uow: ReadUoW) -> Response:
    snap = health.snapshot(uow)
    live = CollectorRegistry(auto_describe=False)
    live.register(_Snapshot(snap))
    body = generate_latest(request.app.state.metrics.registry) + generate_latest(live)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


TALLY_HELP = {
    "placed": "orders placed", "paid": "orders paid", "paid_cents": "money paid by buyers, cents",
    "refunded_cents": "refunds owed to buyers, cents", "disputes": "disputes opened",
    "disputes_confirmed": "disputes confirmed", "compensation_cents": "compensation paid first by the platform, cents",
    "recovered_cents": "compensation booked back from merchants, cents", "incidents": "over-sale incidents",
    "formed": "group-buys formed", "failed": "group-buys failed", "delivered": "shipments delivered",
    "delivered_on_time": "shipments delivered on time", "temp_readings": "cold-chain temperature readings",
    "temp_ok": "temperature readings within range"}


class _Snapshot:
    """Platform-wide figures read from the database at scrape time (the same in every API replica)."""

    def __init__(self, snap: dict[str, Any]) -> None:
        self.snap = snap

    def collect(self) -> Any:
        s = self.snap
        for name, value in s["tally"].items():
            c = CounterMetricFamily(f"tuangou_{name}", f"Platform total: {TALLY_HELP.get(name, name)}")
            c.add_metric([], value)
            yield c
        tiers = CounterMetricFamily("tuangou_disputes_confirmed_by_tier", "Confirmed disputes by tier", labels=["tier"])
        for tier, n in sorted(s["disputes_by_tier"].items()):
            tiers.add_metric([tier], n)
        yield tiers
        yield GaugeMetricFamily("tuangou_outbox_backlog", "Outbox events not yet relayed to webhooks",
                                value=s["outbox_backlog"])
        yield GaugeMetricFamily("tuangou_outbox_oldest_age_seconds", "Age of the oldest unrelayed outbox event",
                                value=s["outbox_age_s"])
        levels = GaugeMetricFamily("tuangou_business_lines", "Business lines by warning level", labels=["level"])
        for level in ("green", "yellow", "orange", "red"):
            levels.add_metric([level], s["lines_by_level"].get(level, 0))
        yield levels
        yield GaugeMetricFamily("tuangou_business_lines_paused", "Business lines paused", value=s["lines_paused"])
        age = GaugeMetricFamily("tuangou_worker_heartbeat_age_seconds", "Seconds since a worker's last tick",
                                labels=["worker"])
        jobs = GaugeMetricFamily("tuangou_job_duration_seconds", "Duration of each job in a worker's last tick",
                                 labels=["worker", "job"])
        for w in s["workers"]:
            age.add_metric([w["holder"]], w["age_s"])
            for job, seconds in sorted(w["jobs"].items()):
                jobs.add_metric([w["holder"], job], float(seconds))
        yield age
        yield jobs
