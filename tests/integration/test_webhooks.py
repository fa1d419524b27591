"""Webhooks: signed, retried with backoff, at least once, never a second delivery row per event."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest

from tests.conftest import make_stage
from tuangou.notify import rules as notify_rules


class Receiver:
    """A fake webhook receiver: fails the first `failures` calls, records the rest."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.calls: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        if self.failures > 0:
            self.failures -= 1
            return httpx.Response(503)
        return httpx.Response(204)


@pytest.fixture
def receiver():
    return Receiver(failures=2)


@pytest.fixture
def hooked_stage(db, clock, gateway, receiver):
    yield from make_stage(db, clock, gateway, http=httpx.Client(transport=httpx.MockTransport(receiver)))


def test_merchant_webhook_is_signed_retried_and_delivered_once(hooked_stage, receiver):
    stage = hooked_stage
    _, merchant = stage.merchant()
    deal = stage.deal(merchant, stage.store(merchant))
    hook = stage.client.post("/api/v1/webhooks", headers=merchant,
                             json={"url": "https://merchant.example/hook", "event_types": ["OrderPaid"]}).json()
    stage.paid_order(stage.buyer(), deal)
    # first attempt fails (503), then backoff: not retried before its time
    stage.tick("notify")
    stage.tick("notify")
    assert len(receiver.calls) == 1
    for _ in range(3):
        stage.clock.advance(timedelta(minutes=5))
        stage.tick("notify")
    # delivered on the third attempt, then never again
    assert len(receiver.calls) == 3
    stage.clock.advance(timedelta(hours=2))
    stage.tick("notify")
    assert len(receiver.calls) == 3
    request = receiver.calls[-1]
    body = request.content
    assert json.loads(body)["type"] == "OrderPaid"
    assert request.headers["x-tuangou-event-id"] == json.loads(body)["id"]
    assert notify_rules.verify(hook["secret"], request.headers["x-tuangou-signature"], body,
                               int(stage.clock.now().timestamp()), tolerance_s=10**6)
    assert not notify_rules.verify("wrong-secret", request.headers["x-tuangou-signature"], body,
                                   int(stage.clock.now().timestamp()), tolerance_s=10**6)
    deliveries = stage.client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=merchant).json()["items"]
    assert [(d["status"], d["attempts"]) for d in deliveries] == [("delivered", 3)]


def test_merchant_only_receives_its_own_events(hooked_stage, receiver):
    stage = hooked_stage
    receiver.failures = 0
    _, merchant_a = stage.merchant("A")
    _, merchant_b = stage.merchant("B")
    stage.client.post("/api/v1/webhooks", headers=merchant_b, json={"url": "https://b.example/hook"})
    deal = stage.deal(merchant_a, stage.store(merchant_a))
    stage.paid_order(stage.buyer(), deal)
    stage.tick("notify")
    own = stage.deal(merchant_b, stage.store(merchant_b))
    stage.paid_order(stage.buyer(), own)
    stage.tick("notify")
    paid = [json.loads(c.content)["data"]["deal_id"] for c in receiver.calls if json.loads(c.content)["type"] == "OrderPaid"]
    assert paid == [own]


def test_a_restarted_worker_loses_and_duplicates_nothing(db, clock, gateway):
    # given an event relayed by one worker that died before delivering
    receiver = Receiver()
    first = make_stage(db, clock, gateway, http=httpx.Client(transport=httpx.MockTransport(receiver)))
    stage = next(first)
    _, merchant = stage.merchant()
    stage.client.post("/api/v1/webhooks", headers=stage.ops, json={"url": "https://ops.example/all"})
    deal = stage.deal(merchant, stage.store(merchant))
    stage.paid_order(stage.buyer(), deal)
    from tuangou.core.db import UnitOfWork
    from tuangou.notify import service as notify
    from tuangou.orders.announce import announce_orders
    announce_orders(UnitOfWork(db, clock))  # the start of that worker's tick
    notify.relay_outbox(UnitOfWork(db, clock))
    notify.relay_outbox(UnitOfWork(db, clock))  # relaying twice makes no second delivery
    first.close()
    # when a new worker process starts (new app, same database) and ticks twice
    from tuangou.app import create_app
    from tuangou.core.config import Settings
    from tuangou.core.jobs import run_all
    app = create_app(Settings(database_url=db.url), clock=clock, db=db, gateway=gateway,
                     extras={"http": httpx.Client(transport=httpx.MockTransport(receiver))})
    run_all(app.state.job_context, ["notify"])
    run_all(app.state.job_context, ["notify"])
    # then each event was delivered exactly once
    ids = [c.headers["x-tuangou-event-id"] for c in receiver.calls]
    assert ids and len(ids) == len(set(ids))
    assert "OrderPaid" in {json.loads(c.content)["type"] for c in receiver.calls}
