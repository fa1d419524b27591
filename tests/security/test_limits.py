"""Issue 11, limits: keyed on the verified caller, tighter on log-in, lockout, fail open when Redis is down."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import time
import uuid

import pytest
from fastapi.testclient import TestClient

from tests.conftest import PASSWORD, make_stage
from tuangou.app import create_app
from tuangou.core import auth
from tuangou.core.config import Settings
from tuangou.core.ratelimit import client_address, lockout_seconds


def _stage(db, clock, gateway, **settings):
    original = Settings.__init__

    def patched(self, **kw):  # make_stage builds its own Settings: add ours
        original(self, **{**kw, **settings})
    Settings.__init__ = patched  # type: ignore[method-assign]
    try:
        return next(make_stage(db, clock, gateway))
    finally:
        Settings.__init__ = original  # type: ignore[method-assign]


def test_junk_tokens_share_the_address_budget_and_a_user_keeps_one_budget(db, clock, gateway):
    stage = _stage(db, clock, gateway, rate_limit="30/minute", auth_rate_limit="100/minute")
    buyer = stage.buyer()
    # many junk headers from one address: one budget, not one each (222 wrong log-ins gave 0 × 429 before)
    codes = [stage.client.get("/api/v1/deals", headers={"Authorization": f"Bearer junk{i}"}).status_code
             for i in range(40)]
    assert 429 in codes
    # a verified user has a budget of their own
    assert stage.client.get("/api/v1/me", headers=buyer).status_code == 200


def test_login_and_signup_have_a_tighter_limit(db, clock, gateway):
    stage = _stage(db, clock, gateway, rate_limit="1000/minute", auth_rate_limit="3/minute")
    codes = [stage.client.post("/api/v1/auth/signup", json={"email": f"x{i}@t.io", "password": PASSWORD}
                               ).status_code for i in range(4)]
    assert codes[-1] == 429 and 201 in codes  # ops' log-in in make_stage used one of the three
    assert stage.client.get("/api/v1/deals").status_code == 200


def test_repeated_failed_logins_lock_the_account_exponentially(db, clock, gateway):
    stage = _stage(db, clock, gateway, lockout_after_failures=3, lockout_base_seconds=1)
    email = "ops@test.tuangou"
    codes = [stage.client.post("/api/v1/auth/token", json={"email": email, "password": "wrong-pass"}).status_code
             for _ in range(3)]
    assert codes == [401, 401, 401]
    # locked: even the right password is refused, with Retry-After
    r = stage.client.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
    assert r.status_code == 429 and r.json()["code"] == "login_locked" and int(r.headers["retry-after"]) >= 1
    # an unknown email is locked out the same way (no existence oracle)
    for _ in range(3):
        stage.client.post("/api/v1/auth/token", json={"email": "nobody@t.io", "password": "wrong-pass"})
    assert stage.client.post("/api/v1/auth/token", json={"email": "nobody@t.io", "password": "x"}
                             ).json()["code"] == "login_locked"
    # the lock lapses: the right password works again (condition with a generous bound)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        r = stage.client.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
        if r.status_code == 200:
            break
        time.sleep(0.2)
    assert r.status_code == 200


def test_lockout_doubles_up_to_its_cap():
    assert [lockout_seconds(n, 5, 30, 3600) for n in (4, 5, 6, 7, 20)] == [0, 30, 60, 120, 3600]


def test_unknown_email_costs_the_same_password_work_as_a_wrong_password(stage, monkeypatch):
    calls = []
    real = hashlib.scrypt

    def counting(*a, **kw):
        calls.append(1)
        return real(*a, **kw)
    monkeypatch.setattr(auth.hashlib, "scrypt", counting)
    stage.client.post("/api/v1/auth/token", json={"email": "ops@test.tuangou", "password": "wrong-pass"})
    wrong = len(calls)
    stage.client.post("/api/v1/auth/token", json={"email": "nobody@test.tuangou", "password": "wrong-pass"})
    assert wrong == 1 and len(calls) - wrong == 1


def test_forwarded_for_is_believed_only_from_trusted_proxies():
    trusted = (ipaddress.ip_network("10.0.0.0/8"),)
    assert client_address("203.0.113.9", "1.2.3.4", ()) == "203.0.113.9"  # off by default
    assert client_address("203.0.113.9", "1.2.3.4", trusted) == "203.0.113.9"  # not from a proxy
    # a client cannot pick its address by prepending entries: the right-most untrusted hop counts
    assert client_address("10.0.0.2", "6.6.6.6, 198.51.100.7, 10.0.0.1", trusted) == "198.51.100.7"


def test_trusted_proxy_setting_keys_limits_on_the_forwarded_address(db, clock):
    settings = Settings(database_url=db.url, rate_limit="2/minute", trusted_proxies="10.0.0.0/8")

    def codes(peer: str) -> list[int]:
        with TestClient(create_app(settings, clock=clock, db=db), client=(peer, 5000)) as client:
            return [client.get("/api/v1/deals", headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
                    for i in range(4)]
    # behind the trusted proxy each forwarded client has its own budget
    assert codes("10.0.0.2") == [200] * 4
    # a direct client cannot mint budgets by sending X-Forwarded-For
    assert codes("203.0.113.5")[-1] == 429


def test_redis_down_fails_open_and_health_says_degraded(db, clock, caplog):
    # given a Redis that does not answer
    settings = Settings(database_url=db.url, rate_limit="2/minute", redis_url="redis://127.0.0.1:1/0")
    with TestClient(create_app(settings, clock=clock, db=db)) as client:
        # then the API keeps serving (every request was a 500 before) and says why in the log and /healthz
        assert [client.get("/api/v1/deals").status_code for _ in range(4)] == [200] * 4
        r = client.post("/api/v1/auth/token", json={"email": "a@b.io", "password": "wrong-pass"})
        assert r.status_code == 401
        health = client.get("/healthz")
        assert health.status_code == 200 and health.json()["status"] == "degraded"
    assert any("failing open" in rec.message for rec in caplog.records)


@pytest.mark.parametrize("bad", ["not an address", ""])
def test_trusted_proxies_setting_rejects_garbage(db, clock, bad):
    if not bad:
        assert Settings(trusted_proxies=bad).trusted_proxy_list() == ()
        return
    with pytest.raises(ValueError):
        create_app(Settings(database_url=db.url, trusted_proxies=bad), clock=clock, db=db)


@pytest.mark.skipif(not os.environ.get("TUANGOU_TEST_REDIS_URL"), reason="TUANGOU_TEST_REDIS_URL not set")
def test_lockout_is_shared_by_every_process_through_redis():
    from tuangou.core.ratelimit import LoginGuard, TooManyAttempts
    url = os.environ["TUANGOU_TEST_REDIS_URL"]
    email = f"{uuid.uuid4().hex}@t.io"
    first, second = LoginGuard(url, 3, 30, 60), LoginGuard(url, 3, 30, 60)
    for guard in (first, second, first):  # failures on two processes add up
        guard.failed_attempt(email, "198.51.100.1")
    with pytest.raises(TooManyAttempts):
        second.check(email, "198.51.100.2")


def test_redis_down_without_rate_limits_still_shows_in_health(db, clock):
    # the log-in lockout uses Redis too, even when no request rate limit is set
    settings = Settings(database_url=db.url, redis_url="redis://127.0.0.1:1/0")
    with TestClient(create_app(settings, clock=clock, db=db)) as client:
        assert client.post("/api/v1/auth/token", json={"email": "a@b.io", "password": "x"}).status_code == 401
        assert client.get("/healthz").json()["status"] == "degraded"
