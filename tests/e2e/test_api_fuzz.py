"""Schemathesis throws generated requests at every operation: bad input gets a 4xx, never a 500."""

from __future__ import annotations

import tempfile
from datetime import timedelta

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from tests.conftest import START
from tuangou.accounts import service as accounts
from tuangou.app import create_app
from tuangou.catalog import service as catalog
from tuangou.core.auth import Principal, Role, issue_token
from tuangou.core.clock import SettableClock
from tuangou.core.config import Settings
from tuangou.core.db import Base, Database, UnitOfWork

_tmp = tempfile.mkdtemp()
_db = Database(f"sqlite:///{_tmp}/fuzz.db", sqlite_synchronous="OFF")
Base.metadata.create_all(_db.engine)
_clock = SettableClock(START)
_settings = Settings(database_url=_db.url, secret_key="fuzz")
app = create_app(_settings, clock=_clock, db=_db)


def _tokens() -> dict[str, str]:
    uow = UnitOfWork(_db, _clock)
    ops = accounts.create_user(uow, None, "ops@fuzz.test", "secret-pass-1", Role.OPS)
    merchant_id, owner = accounts.create_merchant(uow, Principal(ops.id, Role.OPS), "M", "m@fuzz.test",
                                                  "secret-pass-1")
    buyer = accounts.sign_up_buyer(uow, "b@fuzz.test", "secret-pass-1")
    m = Principal(owner.id, Role.MERCHANT, merchant_id)
    store = catalog.create_store(uow, m, "S", "catering", "Asia/Shanghai")
    deal = catalog.create_deal(uow, m, store.id, title="d", kind="voucher", price_cents=100,
                               original_price_cents=100, valid_from=START - timedelta(hours=1),
                               valid_until=START + timedelta(days=3), daily_cap=5)
    catalog.publish_deal(uow, m, deal.id)
    ttl = timedelta(days=1)
    return {"ops": issue_token(Principal(ops.id, Role.OPS), "fuzz", START, ttl),
            "merchant": issue_token(m, "fuzz", START, ttl),
            "buyer": issue_token(Principal(buyer.id, Role.BUYER), "fuzz", START, ttl)}


TOKENS = _tokens()
# revoking the fuzzer's own tokens (or deactivating its accounts) would turn the rest of the run into 401s;
# those routes are covered by tests/security/test_tokens.py
schema = schemathesis.openapi.from_asgi("/openapi.json", app).exclude(
    path_regex=r"^/api/v1/(auth/logout-all|me/password|users/\{user_id\}/(de)?activate)$")
# Response conformance. Not negative_data_rejection: this test adds the Authorization header to every case (so a
# "missing Authorization" mutation is not missing) and unknown query parameters are ignored by design.
CONFORMANCE = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
               checks.response_headers_conformance, checks.response_schema_conformance]


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_makes_a_server_error(case):
    role = "buyer" if case.path.startswith(("/api/v1/orders", "/api/v1/inbox")) else "ops"
    if case.path.startswith(("/api/v1/stores", "/api/v1/deals", "/api/v1/vouchers")) and case.method != "GET":
        role = "merchant"
    response = case.call(headers={"Authorization": f"Bearer {TOKENS[role]}"})
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])
    if response.status_code >= 400:
        assert "application/problem+json" in str(response.headers.get("content-type"))
        assert response.json()["code"]
    # conformance (issue 11): the status code, content type, headers and body are the ones the document declares
    case.validate_response(response, checks=CONFORMANCE)
