"""Urgent notifications reach the merchant's phone through the outbox: retried while the channel fails,
delivered once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from tests.conftest import Stage, make_stage
from tuangou.notify.channels import SandboxChannel


@pytest.fixture
def sms() -> SandboxChannel:
    return SandboxChannel(fail_times=2)  # the SMS provider is down for the first two attempts


@pytest.fixture
def phone_stage(any_db, clock, gateway, sms) -> Iterator[Stage]:
    yield from make_stage(any_db, clock, gateway, phone_channels={"sms": sms})


def _tick_later(stage: Stage, seconds: int) -> dict:
    stage.clock.advance(timedelta(seconds=seconds))
    return stage.tick("notify")["notify"]


def test_a_sold_out_reaches_the_phone_once_after_two_failed_attempts(phone_stage: Stage, sms: SandboxChannel):
    # given a merchant whose sold-outs go to SMS (one of the default kinds), and a buyer with a phone too
    stage = phone_stage
    _, m = stage.merchant()
    assert "sold_out" in stage.client.get("/api/v1/me/phone", headers=m).json()["kinds"]
    r = stage.client.put("/api/v1/me/phone", headers=m, json={"channel": "sms", "address": "+8613800138000",
                                                              "kinds": ["sold_out"]})
    assert r.status_code == 200, r.text
    buyer = stage.buyer()
    assert stage.client.put("/api/v1/me/phone", headers=buyer, json={"channel": "sms",
                                                                     "address": "13900139000"}).status_code == 200
    # when the deal sells out (the buyer's order_paid is not an urgent kind)
    stage.paid_order(buyer, stage.deal(m, stage.store(m), daily_cap=1))

    # then the worker queues one SMS and retries it while the provider fails
    first = _tick_later(stage, 5)
    assert first["phone_queued"] == 1 and first["phone_failed"] == 1
    assert _tick_later(stage, 1)["phone_failed"] == 0  # not due yet: backoff
    assert _tick_later(stage, 30)["phone_failed"] == 1
    assert _tick_later(stage, 60)["phone_sent"] == 1
    for _ in range(3):
        assert _tick_later(stage, 3600)["phone_sent"] == 0

    # and the phone got exactly one message, the sold-out one, after three attempts
    assert sms.attempts == 3
    assert [(msg.address, msg.kind) for msg in sms.sent.values()] == [("+8613800138000", "sold_out")]
    mine = stage.client.get("/api/v1/me/phone/deliveries", headers=m).json()["items"]
    assert [(d["kind"], d["status"], d["attempts"]) for d in mine] == [("sold_out", "sent", 3)]
    assert stage.client.get("/api/v1/me/phone/deliveries", headers=buyer).json()["items"] == []


def test_phone_settings_are_validated(stage: Stage):
    b = stage.buyer()
    r = stage.client.put("/api/v1/me/phone", headers=b, json={"channel": "pigeon", "address": "x"})
    assert r.status_code == 422
    r = stage.client.put("/api/v1/me/phone", headers=b, json={"channel": "sms", "address": "call me"})
    assert r.status_code == 422
    r = stage.client.put("/api/v1/me/phone", headers=b, json={"channel": "http", "address": "https://push.example/me",
                                                              "kinds": ["order_paid"]})
    assert r.status_code == 200 and r.json()["kinds"] == ["order_paid"]
