"""Issue 11, input: bodies and uploads are bounded, uploads are served inert, webhooks stay out of our network,
and loose input is refused the same way on SQLite and PostgreSQL."""

from __future__ import annotations

import io

import httpx
import pytest

from tests.conftest import make_stage
from tuangou.core.config import Settings
from tuangou.notify import rules as notify_rules


def _stage_with(db, clock, gateway, extras=None, **settings):
    original = Settings.__init__

    def patched(self, **kw):
        original(self, **{**kw, **settings})
    Settings.__init__ = patched  # type: ignore[method-assign]
    try:
        return next(make_stage(db, clock, gateway, **(extras or {})))
    finally:
        Settings.__init__ = original  # type: ignore[method-assign]


# --- bodies and uploads ----------------------------------------------------------------------------------

def test_oversized_json_body_is_413_before_it_is_read(stage):
    r = stage.client.post("/api/v1/auth/signup", content=b'{"email":"' + b"a" * (2 * 1024 * 1024) + b'"}',
                          headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
    assert r.headers["content-type"].startswith("application/problem+json")


def test_streamed_body_without_length_is_cut_at_the_limit(stage):
    def chunks():
        for _ in range(40):
            yield b"x" * 65536
    r = stage.client.post("/api/v1/auth/signup", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def _appeal(stage, merchant, files):
    return stage.client.post("/api/v1/appeals", headers=merchant, data={"target": "violation:1", "statement": "s"},
                             files=[("files", f) for f in files])


def test_upload_limits_per_file_and_per_request(db, clock, gateway):
    stage = _stage_with(db, clock, gateway, max_file_bytes=1000, max_upload_bytes=5000)
    _, merchant = stage.merchant()
    # one file past the per-file limit
    r = _appeal(stage, merchant, [("big.txt", io.BytesIO(b"x" * 1001), "text/plain")])
    assert r.status_code == 413 and r.json()["code"] == "file_too_large"
    # many small files past the per-request limit: refused while streaming, nothing stored
    r = _appeal(stage, merchant, [(f"f{i}.txt", io.BytesIO(b"x" * 900), "text/plain") for i in range(8)])
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
    assert stage.client.get("/api/v1/appeals", headers=merchant).json()["items"] == []


def test_uploads_are_served_inert_with_a_safe_name(stage):
    # given evidence uploaded as HTML with a header-injecting name
    _, merchant = stage.merchant()
    deal = stage.deal(merchant, stage.store(merchant), daily_cap=20)
    day = stage.clock.now().astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai")).date().isoformat()
    r = stage.client.post(f"/api/v1/deals/{deal}/inventory-change-requests", headers=merchant,
                          data={"bucket": day, "requested_cap": "40", "reason": "bought more"},
                          files={"evidence": ('x"; filename=evil.html', b"<script>alert(1)</script>", "text/html")})
    assert r.status_code == 201, r.text
    # when it is downloaded
    got = stage.client.get(r.json()["evidence"]["url"], headers=merchant)
    # then the browser is told not to render or sniff it, and the name cannot break the header
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert __import__("re").fullmatch(r'attachment; filename="[A-Za-z0-9._-]+"', got.headers["content-disposition"])


def test_no_file_is_rendered_by_the_browser(stage):
    from tuangou.core.http import file_response, safe_filename
    r = file_response('evil"; filename=x.html\r\nSet-Cookie: a=b.html', "text/html", b"<script>alert(1)</script>")
    assert r.media_type == "application/octet-stream"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "\r" not in r.headers["content-disposition"] and '"' not in safe_filename('a"b')
    assert r.headers["content-disposition"].startswith("attachment;")
    assert file_response("p.png", "image/png", b"").media_type == "image/png"


# --- webhooks --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/", "https://169.254.169.254/", "https://127.0.0.1:5432/",
    "https://[::1]/", "https://10.0.0.7/hook", "https://192.168.1.1/", "https://localhost/hook",
    "https://[::ffff:127.0.0.1]/", "http://example.com/hook", "https://user:pw@example.com/", "ftp://example.com/",
    "https://0.0.0.0/", "https://100.100.100.200/",
])
def test_webhook_urls_into_private_networks_are_refused(stage, url):
    _, merchant = stage.merchant()
    r = stage.client.post("/api/v1/webhooks", headers=merchant, json={"url": url})
    assert r.status_code == 422 and r.json()["code"] == "webhook_url_refused", r.text


def test_a_name_resolving_to_a_private_address_is_refused():
    assert notify_rules.url_refusal("https://rebind.example/", ["10.1.2.3"]) is not None
    assert notify_rules.url_refusal("https://ok.example/", ["93.184.215.14"]) is None
    # the allow-list admits on-premise receivers, by name or by network, plain http included
    assert notify_rules.url_refusal("http://erp.lan:8080/", ["10.1.2.3"], ("erp.lan",)) is None
    assert notify_rules.url_refusal("http://10.1.2.3/", [], ("10.0.0.0/8",)) is None
    assert notify_rules.url_refusal("https://10.9.9.9/", [], ("192.168.0.0/16",)) is not None


def test_delivery_checks_the_address_again(db, clock, gateway):
    # given an endpoint that resolved to a public address when registered...
    calls: list[httpx.Request] = []
    answers = {"addr": ["93.184.215.14"]}
    stage = _stage_with(db, clock, gateway, extras={
        "http": httpx.Client(transport=httpx.MockTransport(lambda req: calls.append(req) or httpx.Response(204))),
        "resolve": lambda url: answers["addr"]})
    _, merchant = stage.merchant()
    deal = stage.deal(merchant, stage.store(merchant))
    hook = stage.client.post("/api/v1/webhooks", headers=merchant, json={"url": "https://hooks.example/x"}).json()
    # ...and now resolves into the platform's network (DNS rebinding)
    answers["addr"] = ["169.254.169.254"]
    stage.paid_order(stage.buyer(), deal)
    stage.tick("notify")
    # then nothing is sent, and the error says why without revealing what answered
    assert calls == []
    items = stage.client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=merchant).json()["items"]
    assert items and "private" in items[0]["last_error"]


def test_allow_listed_on_premise_receiver_may_use_http(db, clock, gateway):
    stage = _stage_with(db, clock, gateway, webhook_allow_list="10.0.0.0/8")
    _, merchant = stage.merchant()
    r = stage.client.post("/api/v1/webhooks", headers=merchant, json={"url": "http://10.0.0.9:8080/hook"})
    assert r.status_code == 201, r.text


# --- strict input, on both databases -----------------------------------------------------------------------

def test_a_boolean_is_not_a_quantity(any_stage):
    stage = any_stage
    _, merchant = stage.merchant()
    deal = stage.deal(merchant, stage.store(merchant))
    r = stage.order(stage.buyer(), deal, quantity=True)  # type: ignore[arg-type]
    assert r.status_code == 422 and r.json()["code"] == "validation_error"


@pytest.mark.parametrize("name", ["\u200b\u200b", "   ", "\u200b \ufeff", "\t\n"])
def test_names_need_a_visible_character(any_stage, name):
    stage = any_stage
    _, merchant = stage.merchant()
    r = stage.client.post("/api/v1/stores", headers=merchant, json={"name": name, "category": "catering"})
    assert r.status_code == 422, r.text
    r = stage.client.post("/api/v1/merchants", headers=stage.ops,
                          json={"name": name, "owner_email": "z@z.io", "owner_password": "secret-pass-1"})
    assert r.status_code == 422, r.text


def test_nul_is_refused_on_both_databases(any_stage):
    stage = any_stage
    _, merchant = stage.merchant()
    r = stage.client.post("/api/v1/stores", headers=merchant, json={"name": "a\u0000b", "category": "catering"})
    assert r.status_code == 422 and "NUL" in r.json()["detail"]
    assert stage.client.get("/api/v1/deals?status=a%00b").status_code == 422
    r = stage.client.post("/console/login", data={"email": "a\x00@b.io", "password": "x"})
    assert r.status_code == 422
    # a backslash before u0000 is just text, not a NUL
    r = stage.client.post("/api/v1/stores", headers=merchant, json={"name": "a\\u0000b", "category": "catering"})
    assert r.status_code == 201, r.text


def test_integers_are_bounded(any_stage):
    stage = any_stage
    _, merchant = stage.merchant()
    store = stage.store(merchant)
    body = {"title": "Deal", "kind": "voucher", "price_cents": 1000, "original_price_cents": 2000,
            "valid_from": stage.clock.now().isoformat(), "valid_until": stage.clock.now().isoformat(),
            "daily_cap": 20, "slots": {"18:00": 10**12}}
    r = stage.client.post(f"/api/v1/stores/{store}/deals", headers=merchant, json=body)
    assert r.status_code == 422, r.text


def test_method_not_allowed_keeps_its_allow_header(stage):
    r = stage.client.delete("/api/v1/deals")
    assert r.status_code == 405 and "GET" in r.headers["allow"]
    assert r.json()["code"] == "method_not_allowed"


def test_streamed_multipart_is_cut_at_the_upload_limit(db, clock, gateway):
    stage = _stage_with(db, clock, gateway, max_upload_bytes=100_000)
    _, merchant = stage.merchant()

    def chunks():
        yield b'--b\r\nContent-Disposition: form-data; name="files"; filename="a.bin"\r\n\r\n'
        for _ in range(40):
            yield b"x" * 65536
    r = stage.client.post("/api/v1/appeals", headers={**merchant, "content-type": "multipart/form-data; boundary=b"},
                          content=chunks())
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"


def test_nul_in_a_multipart_text_field_is_refused_the_same_on_both_databases(any_stage):
    # given a merchant's deal whose cap a change request would raise
    stage = any_stage
    _, merchant = stage.merchant()
    deal = stage.deal(merchant, stage.store(merchant))
    day = stage.clock.now().date().isoformat()
    # when the request's reason (a multipart text field, beside a binary file) carries a NUL character
    r = stage.client.post(f"/api/v1/deals/{deal}/inventory-change-requests", headers=merchant,
                          data={"bucket": day, "requested_cap": "40", "reason": "more\x00beef"},
                          files={"evidence": ("po.png", b"\x89PNG\x00\x01", "image/png")})
    # then both databases answer the same 422, and nothing was filed
    assert r.status_code == 422 and r.json()["code"] == "validation_error" and "NUL" in r.json()["detail"], r.text
    assert stage.client.get("/api/v1/inventory-change-requests", headers=merchant).json()["items"] == []
