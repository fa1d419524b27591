"""The app as the benchmark serves it (uvicorn factory `tuangou.benchmarks.server:create_app`).

Settings come from the environment like any deployment. One switch exists only
here: `TUANGOU_BENCH_RESERVE=for_update` swaps the hot path's single conditional
UPDATE for the locking baseline (`catalog.service.reserve_for_update`, the way
Saleor allocates), so both strategies run behind the same HTTP stack.
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from tuangou.app import create_app as create_tuangou_app
from tuangou.catalog import service as catalog


def create_app() -> FastAPI:
    if os.environ.get("TUANGOU_BENCH_RESERVE") == "for_update":
        catalog.reserve = catalog.reserve_for_update
    return create_tuangou_app()
