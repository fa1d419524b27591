"""Issue 11, tokens: no forgeable or malformed token gets further than a 401, and tokens die with their user."""

from __future__ import annotations

import os
import stat
from datetime import timedelta

import jwt
import pytest
from typer.testing import CliRunner

from tests.conftest import PASSWORD, make_stage
from tuangou.core.auth import DEV_SECRET, Principal, Role, issue_token, key_id
from tuangou.core.config import Settings

STRONG = "k" * 40


def _forge(payload: object, key: str = "test-secret") -> str:
    body = jwt.api_jws.encode(jwt.utils.force_bytes(__import__("json").dumps(payload)), key, "HS256",
                              headers={"kid": key_id(key)})
    return str(body)


def _problem(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return dict(r.json())


@pytest.mark.parametrize("header", [
    "Bearer caf\xe9", "Bearer a.b.c", "Bearer ....", "Bearer \xff\xfe", "Basic Zm9vOmJhcg==", "Bearer",
    "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.",
])
def test_malformed_credentials_are_401_on_private_and_public_routes(stage, header):
    # given a malformed Authorization header (a non-ASCII byte gave 500 on every route before)
    for path in ("/api/v1/me", "/api/v1/stores", "/api/v1/campaigns"):
        r = stage.client.get(path, headers={"Authorization": header.encode("latin-1")})
        # then it is a 401 problem, never a 500
        _problem(r, 401)


@pytest.mark.parametrize("payload", [
    {"sub": "1", "r": "god", "m": None, "ver": 0, "exp": 2**33},
    {"sub": "1", "r": "ops", "m": None, "ver": True, "exp": 2**33},
    {"sub": "x", "r": "ops", "m": None, "ver": 0, "exp": 2**33},
    {"sub": "1", "r": "ops", "m": "1", "ver": 0, "exp": "soon"},
    [1, 2, 3],
    "just a string",
])
def test_signed_but_malformed_payloads_are_401(stage, payload):
    r = stage.client.get("/api/v1/audit", headers={"Authorization": f"Bearer {_forge(payload)}"})
    _problem(r, 401)


def test_token_signed_with_the_public_default_key_opens_nothing(stage):
    # given a token anyone could sign with the default dev key
    forged = issue_token(Principal(1, Role.OPS), DEV_SECRET, stage.clock.now(), timedelta(hours=1))
    # when it asks for the audit log / to create an ops account
    r = stage.client.post("/api/v1/users", headers={"Authorization": f"Bearer {forged}"},
                          json={"email": "evil@x.io", "password": PASSWORD, "role": "ops"})
    # then it is refused
    assert _problem(r, 401)["code"] == "invalid_token"


def test_token_of_an_unknown_user_is_401(stage):
    forged = issue_token(Principal(999, Role.OPS), "test-secret", stage.clock.now(), timedelta(hours=1))
    r = stage.client.get("/api/v1/audit", headers={"Authorization": f"Bearer {forged}"})
    assert _problem(r, 401)["code"] == "account_inactive"


def test_deactivated_user_loses_access_at_once_and_reactivation_does_not_revive_old_tokens(stage):
    buyer = stage.buyer()
    me = stage.client.get("/api/v1/me", headers=buyer).json()
    # when ops deactivate the account
    r = stage.client.post(f"/api/v1/users/{me['id']}/deactivate", headers=stage.ops, json={"reason": "fraud"})
    assert r.status_code == 200, r.text
    # then its token stops working at once, and it cannot log in again
    assert _problem(stage.client.get("/api/v1/me", headers=buyer), 401)["code"] == "account_inactive"
    assert stage.client.post("/api/v1/auth/token", json={"email": me["email"], "password": PASSWORD}
                             ).status_code == 401
    # reactivated: the old token stays revoked, a new log-in works
    stage.client.post(f"/api/v1/users/{me['id']}/activate", headers=stage.ops, json={"reason": "cleared"})
    assert _problem(stage.client.get("/api/v1/me", headers=buyer), 401)["code"] == "token_revoked"
    assert stage.client.get("/api/v1/me", headers=stage.login(me["email"])).status_code == 200
    audit = stage.client.get("/api/v1/audit?action=deactivate_user", headers=stage.ops).json()["items"]
    assert audit[0]["reason"] == "fraud"


def test_role_comes_from_the_account_not_from_the_token(stage):
    # given a buyer's token re-signed (with the real key) to claim ops
    buyer = stage.buyer()
    me = stage.client.get("/api/v1/me", headers=buyer).json()
    forged = issue_token(Principal(me["id"], Role.OPS), "test-secret", stage.clock.now(), timedelta(hours=1))
    # then the account's real role applies
    r = stage.client.get("/api/v1/audit", headers={"Authorization": f"Bearer {forged}"})
    assert _problem(r, 403)["code"] == "forbidden"


def test_log_out_everywhere_and_password_change_revoke_older_tokens(stage):
    buyer = stage.buyer()
    email = stage.client.get("/api/v1/me", headers=buyer).json()["email"]
    assert stage.client.post("/api/v1/auth/logout-all", headers=buyer).status_code == 204
    assert _problem(stage.client.get("/api/v1/me", headers=buyer), 401)["code"] == "token_revoked"
    fresh = stage.login(email)
    r = stage.client.post("/api/v1/me/password", headers=fresh,
                          json={"current_password": PASSWORD, "new_password": "another-pass-2"})
    assert r.status_code == 204, r.text
    assert _problem(stage.client.get("/api/v1/me", headers=fresh), 401)["code"] == "token_revoked"
    r = stage.client.post("/api/v1/auth/token", json={"email": email, "password": "another-pass-2"})
    assert r.status_code == 200


def test_another_process_sees_a_deactivation_within_the_cache_lifetime(db, clock, gateway):
    # given two API processes on one database, caching user state for 0 s
    settings = Settings(database_url=db.url, secret_key="test-secret", token_cache_seconds=0)
    from fastapi.testclient import TestClient

    from tuangou.app import create_app
    stages = make_stage(db, clock, gateway)
    stage = next(stages)
    other = TestClient(create_app(settings, clock=clock, db=db, gateway=gateway))
    buyer = stage.buyer()
    me = other.get("/api/v1/me", headers=buyer).json()
    stage.client.post(f"/api/v1/users/{me['id']}/deactivate", headers=stage.ops, json={"reason": "fraud"})
    assert other.get("/api/v1/me", headers=buyer).status_code == 401


def test_rotation_old_key_verifies_new_key_signs(db, clock, gateway):
    # given tokens issued under the old key
    old_stage = next(make_stage(db, clock, gateway))
    old_token = old_stage.login("ops@test.tuangou")
    from fastapi.testclient import TestClient

    from tuangou.app import create_app
    rotated = Settings(database_url=db.url, secret_key="new-" + STRONG, previous_secret_keys="test-secret")
    with TestClient(create_app(rotated, clock=clock, db=db, gateway=gateway)) as client:
        # then an old token still works, and new tokens carry the new key's id
        assert client.get("/api/v1/audit", headers=old_token).status_code == 200
        r = client.post("/api/v1/auth/token", json={"email": "ops@test.tuangou", "password": PASSWORD})
        assert jwt.get_unverified_header(r.json()["access_token"])["kid"] == key_id("new-" + STRONG)
    retired = Settings(database_url=db.url, secret_key="new-" + STRONG)
    with TestClient(create_app(retired, clock=clock, db=db, gateway=gateway)) as client:
        assert client.get("/api/v1/audit", headers=old_token).status_code == 401


def test_expired_token_is_401(stage):
    stage.clock.advance(timedelta(days=8))
    assert _problem(stage.client.get("/api/v1/audit", headers=stage.ops), 401)["code"] == "token_expired"


@pytest.mark.parametrize("secret", [None, DEV_SECRET, "short"])
@pytest.mark.parametrize("command", [["serve"], ["worker", "--once"]])
def test_production_refuses_to_start_without_a_strong_secret(monkeypatch, tmp_path, secret, command):
    from tuangou.cli import app
    monkeypatch.delenv("TUANGOU_SECRET_KEY", raising=False)
    if secret is not None:
        monkeypatch.setenv("TUANGOU_SECRET_KEY", secret)
    monkeypatch.setenv("TUANGOU_DATABASE_URL", f"sqlite:///{tmp_path}/x.db")
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2
    assert "TUANGOU_SECRET_KEY" in result.output
    assert Settings(secret_key=STRONG).secret_problem() is None


def test_demo_generates_and_keeps_its_secret_under_var(tmp_path):
    from tuangou.demo import demo_secret
    first = demo_secret(tmp_path / "var")
    assert len(first) >= 32 and Settings(secret_key=first).secret_problem() is None
    assert demo_secret(tmp_path / "var") == first
    assert stat.S_IMODE(os.stat(tmp_path / "var" / "secret_key").st_mode) == 0o600
