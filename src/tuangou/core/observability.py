"""Request ids, JSON logs, request latency by route and refusals by code (Prometheus, per process).

The middleware is plain ASGI (no BaseHTTPMiddleware task hop) and does a handful of dictionary and
clock operations per request: the order path is tuned to a few milliseconds, this stays a few
microseconds (tests/integration/test_observability.py measures it).
"""

from __future__ import annotations

import json
import logging
import logging.config
import os
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

request_id: ContextVar[str] = ContextVar("request_id", default="-")
access_log = logging.getLogger("tuangou.access")
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
Scope = dict[str, Any]


class Metrics:
    """One registry per app, so that several apps in one process (tests) never collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram("tuangou_http_request_duration_seconds", "HTTP request latency by route",
                                 ["method", "route", "status"], registry=self.registry, buckets=BUCKETS)
        self.refusals = Counter("tuangou_refusals_total", "Commands refused with a stable code (sold_out, …)",
                                ["code"], registry=self.registry)
        self._children: dict[tuple[str, str, int], Any] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.latency.labels(method, route, str(status))
        child.observe(seconds)

    def refusal(self, code: str) -> None:
        self.refusals.labels(code).inc()


class ObservabilityMiddleware:
    """Give every request an id (`X-Request-Id`, kept if the proxy sent a sane one), time it by route
    template, and write one access log line when `tuangou.access` is enabled."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                rid = value.decode("latin-1")[:64]
                break
        if not rid.isprintable() or not rid:
            rid = os.urandom(8).hex()
        token = request_id.set(rid)
        status = 500
        header = (b"x-request-id", rid.encode("latin-1"))

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(scope["method"], template, status, elapsed)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info("%s %s %s", scope["method"], scope["path"], status,
                                extra={"route": template, "status": status, "ms": round(elapsed * 1000, 2),
                                       "client": (scope.get("client") or ("-",))[0]})
            request_id.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and any `extra` fields."""

    SKIP = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                                 "level": record.levelname.lower(), "logger": record.name,
                                 "msg": record.getMessage(), "request_id": request_id.get()}
        for key, value in record.__dict__.items():
            if key not in self.SKIP:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record (text logs print it too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


def logging_config(fmt: str = "json", level: str = "INFO", access: bool = True) -> dict[str, Any]:
    """A `logging.config.dictConfig` for the CLI and for uvicorn's worker processes: one stderr handler,
    JSON (default) or text, uvicorn's own access log off (ours has the route and the request id)."""
    return {
        "version": 1, "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "tuangou.core.observability.RequestIdFilter"}},
        "formatters": {"json": {"()": "tuangou.core.observability.JsonFormatter"},
                       "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                                "formatter": fmt, "filters": ["request_id"]}},
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {"tuangou.access": {"level": "INFO" if access else "WARNING"},
                    "uvicorn.access": {"level": "WARNING"}, "uvicorn.error": {"level": "INFO"}},
    }


def configure_logging(fmt: str = "json", level: str = "INFO", access: bool = True) -> None:
    logging.config.dictConfig(logging_config(fmt, level, access))
