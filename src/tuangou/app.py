"""create_app(settings) -> FastAPI: every capability's router, problem+json errors, state."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from tuangou.composition import compose
from tuangou.core.clock import Clock, SystemClock
from tuangou.core.config import Settings
from tuangou.core.db import Database
from tuangou.core.http import install_error_handlers
from tuangou.core.observability import Metrics, ObservabilityMiddleware
from tuangou.core.registry import api_modules, load_models
from tuangou.orders.gateway import PaymentGateway, SandboxGateway


def create_app(settings: Settings | None = None, *, clock: Clock | None = None, db: Database | None = None,
               gateway: PaymentGateway | None = None, extras: dict[str, Any] | None = None) -> FastAPI:
    settings = settings or Settings()
    load_models()
    compose()
    database = db or Database.from_settings(settings)
    stop = threading.Event()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = None
        if settings.run_worker_in_process:
            from tuangou.worker import Worker
            worker = Worker(app.state.job_context)
            thread = threading.Thread(target=worker.loop, args=(stop,), daemon=True, name="tuangou-worker")
            thread.start()
        yield
        stop.set()
        if db is None:
            database.dispose()

    app = FastAPI(title="tuangou", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Group-buying with an over-selling governance engine. "
                              "Errors are application/problem+json with a stable `code`.")
    app.state.settings = settings
    app.state.db = database
    app.state.clock = clock or SystemClock()
    app.state.payment_gateway = gateway or SandboxGateway()
    from tuangou.worker import job_context
    app.state.job_context = job_context(settings, database, app.state.clock, app.state.payment_gateway,
                                        extras or {})
    install_error_handlers(app)
    if settings.rate_limit:
        from tuangou.core.ratelimit import RateLimiter, middleware
        app.middleware("http")(middleware(RateLimiter(settings.rate_limit, settings.redis_url)))
    for module in api_modules():
        app.include_router(module.router)
    # outermost, so that the request id and the latency cover every other middleware
    app.state.metrics = Metrics()
    app.add_middleware(ObservabilityMiddleware, metrics=app.state.metrics)

    from tuangou.web.routes import install as install_consoles
    install_consoles(app)  # consoles and the offline /docs, /redoc

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/console")

    @app.get("/healthz", tags=["ops"], summary="The process answers (no dependency is touched)")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
