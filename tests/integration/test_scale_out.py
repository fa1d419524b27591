"""Three API processes behind a round-robin proxy, two workers, one PostgreSQL: a flash sale sells
exactly its cap, and the workers count every order once (plain processes, no Docker)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.conftest import PG_URL
from tuangou.accounts import service as accounts
from tuangou.benchmarks import dataset
from tuangou.catalog import service as catalog
from tuangou.core.auth import Principal, Role
from tuangou.core.db import Database, UnitOfWork
from tuangou.core.migrate import upgrade

CAP, BUYERS = 30, 60
SECRET = "scale-out-secret-" + "x" * 32  # serve and the worker refuse a weak key


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RoundRobinProxy:
    """A TCP proxy that hands each new connection to the next backend (what nginx/HAProxy do)."""

    def __init__(self, backends: list[int]) -> None:
        self.port, self.next = _port(), itertools.cycle(backends)
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    async def _start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", next(self.next))
        except OSError:
            writer.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(OSError):
                dst.close()
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)


def _seed(db: Database) -> int:
    uow = UnitOfWork(db)
    ops = accounts.create_user(uow, None, "ops@scale.example", "ops-pass-123", Role.OPS, "Ops")
    merchant_id, owner = accounts.create_merchant(uow, Principal(ops.id, Role.OPS), "Taro", "m@scale.example",
                                                  "merchant-pass-1", "scale-out test")
    mp = Principal(owner.id, Role.MERCHANT, merchant_id)
    store = catalog.create_store(uow, mp, "Taro Cake House", "bakery", "Asia/Shanghai", "Xuhui, Shanghai")
    now = uow.clock.now()
    deal = catalog.create_deal(uow, mp, store.id, title="¥9.9 taro mille-feuille", kind="voucher", price_cents=990,
                               original_price_cents=2800, valid_from=now - timedelta(hours=1),
                               valid_until=now + timedelta(days=3), per_buyer_limit=1, daily_cap=CAP)
    catalog.publish_deal(uow, mp, deal.id)
    return deal.id


def _wait(check: Any, seconds: float = 90) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if result := check():
                return result
        time.sleep(0.3)
    raise AssertionError("condition not met in time")


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.skipif(not PG_URL, reason="TUANGOU_TEST_POSTGRES_URL not set")
def test_three_api_processes_and_two_workers_sell_exactly_the_cap(tmp_path: Path) -> None:
    # given one PostgreSQL at head with a deal of 30 and 60 buyers
    url, drop = dataset.fresh_database("postgresql", PG_URL, tmp_path)
    upgrade(url)
    db = Database(url, pool_size=2)
    procs: list[subprocess.Popen[bytes]] = []
    proxy = None
    try:
        deal_id = _seed(db)
        tokens = dataset.make_buyers(db, BUYERS, SECRET, "scale")
        env = {k: v for k, v in os.environ.items() if not k.startswith("TUANGOU_")}
        env.update(TUANGOU_DATABASE_URL=url, TUANGOU_SECRET_KEY=SECRET, TUANGOU_DB_POOL_SIZE="3",
                   TUANGOU_ACCESS_LOG="false")
        ports = [_port() for _ in range(3)]
        log = (tmp_path / "procs.log").open("wb")
        for p in ports:  # three API processes, as `tuangou serve` runs them in production
            procs.append(subprocess.Popen([sys.executable, "-m", "tuangou.cli", "serve", "--port", str(p)],
                                          env=env, stdout=log, stderr=log))
        for _ in range(2):  # two workers: leases and conditional cursors keep every job single
            procs.append(subprocess.Popen([sys.executable, "-m", "tuangou.cli", "worker"], env=env,
                                          stdout=log, stderr=log))
        proxy = RoundRobinProxy(ports)
        base = f"http://127.0.0.1:{proxy.port}"
        for _ in ports:  # every backend ready, worker heartbeat included
            _wait(lambda: httpx.get(f"{base}/readyz", timeout=5).status_code == 200)

        # when the 60 buyers order and pay at once, through the proxy
        def buy(token: str) -> str:
            h = {"authorization": f"Bearer {token}"}
            with httpx.Client(base_url=base, timeout=60) as c:
                r = c.post("/api/v1/orders", headers={**h, "Idempotency-Key": token[-16:]},
                           json={"deal_id": deal_id, "quantity": 1})
                if r.status_code != 201:
                    return str(r.json().get("code", r.status_code))
                r = c.post(f"/api/v1/orders/{r.json()['id']}/pay", headers=h, json={"outcome": "succeed"})
                return "paid" if r.status_code == 200 else str(r.json().get("code", r.status_code))
        with ThreadPoolExecutor(12) as pool:
            outcomes = list(pool.map(buy, tokens))

        # then exactly the cap was sold, everyone else heard sold_out, and nothing was oversold
        assert outcomes.count("paid") == CAP, sorted(set(outcomes))
        assert set(outcomes) <= {"paid", "sold_out"}
        facts = dataset.sale_facts(db, deal_id)  # caps summed over the deal's days; today's took every sale
        assert facts["sold"] == facts["paid_units"] == CAP and facts["duplicate_keys"] == 0
        buckets = dataset.table("capacity_buckets")
        with db.engine.connect() as conn:
            assert conn.scalar(select(func.count()).where(buckets.c.deal_id == deal_id,
                                                          buckets.c.sold + buckets.c.reserved > buckets.c.cap)) == 0
        # and the two workers folded each paid order into the KPIs once
        tallies = dataset.table("kpi_tallies")

        def paid_tally() -> int:
            with db.engine.connect() as conn:
                return int(conn.scalar(select(func.coalesce(func.max(tallies.c.paid), 0))
                                       .where(tallies.c.scope == "all")) or 0)
        _wait(lambda: paid_tally() >= CAP)
        time.sleep(3)  # a few more ticks of both workers
        assert paid_tally() == CAP
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        if proxy is not None:
            proxy.close()
        db.dispose()
        drop()
