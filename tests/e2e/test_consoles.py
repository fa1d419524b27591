"""The consoles over HTTP (no browser): sign-in, CSRF, cookies, languages, roles, money and time zones,
and the offline API docs. The browser journey is in tests/browser."""

from __future__ import annotations

import re

from tuangou.accounts import service as accounts
from tuangou.core.auth import Role
from tuangou.core.db import UnitOfWork
from tuangou.web.i18n import negotiate

PASSWORD = "secret-pass-1"


def _csrf(stage, path="/console/login", **headers):
    page = stage.client.get(path, headers=headers)
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def _sign_in(stage, email):
    stage.client.cookies.clear()
    r = stage.client.post("/console/login", data={"email": email, "password": PASSWORD, "csrf": _csrf(stage)},
                          follow_redirects=False)
    assert r.status_code == 303, r.text
    return r


def test_console_needs_sign_in_and_rejects_a_bad_password_in_words(stage):
    assert stage.client.get("/console", follow_redirects=False).headers["location"] == "/console/login"
    assert stage.client.get("/console/merchant", follow_redirects=False).headers["location"] == "/console/login"
    r = stage.client.post("/console/login", data={"email": "ops@test.tuangou", "password": "wrong-password",
                                                  "csrf": _csrf(stage, **{"accept-language": "en"})},
                          headers={"accept-language": "en"})
    assert r.status_code == 401 and "Wrong email or password." in r.text


def test_every_form_needs_its_csrf_token(stage):
    # given a browser that has a CSRF cookie, when a form arrives without the token or with another's
    _csrf(stage)
    r = stage.client.post("/console/login", data={"email": "ops@test.tuangou", "password": PASSWORD})
    assert r.status_code == 403
    r = stage.client.post("/console/login", data={"email": "ops@test.tuangou", "password": PASSWORD,
                                                  "csrf": "0" * 64})
    assert r.status_code == 403
    # then nothing happened: still signed out
    assert stage.client.get("/console", follow_redirects=False).headers["location"] == "/console/login"


def test_the_session_cookie_is_httponly_and_samesite(stage):
    r = _sign_in(stage, "ops@test.tuangou")
    cookie = r.headers["set-cookie"].lower()
    assert "tuangou_token=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" not in cookie  # plain http here; behind https (X-Forwarded-Proto) it is Secure
    stage.client.cookies.clear()
    r = stage.client.post("/console/login", data={"email": "ops@test.tuangou", "password": PASSWORD,
                                                  "csrf": _csrf(stage)},
                          headers={"x-forwarded-proto": "https"}, follow_redirects=False)
    assert "secure" in r.headers["set-cookie"].lower()


def test_demo_credentials_are_shown_only_in_demo_mode(stage):
    assert "demo-pass-1" not in stage.client.get("/console/login").text
    stage.client.app.state.settings.demo_mode = True
    assert "demo-pass-1" in stage.client.get("/console/login").text


def test_language_is_the_users_choice_else_accept_language_else_chinese(stage):
    assert "登录" in stage.client.get("/console/login").text
    assert 'lang="zh-CN"' in stage.client.get("/console/login", headers={"accept-language": "zh-CN,zh;q=0.9"}).text
    english = stage.client.get("/console/login", headers={"accept-language": "en-GB,en;q=0.9"}).text
    assert 'lang="en"' in english and "Sign in" in english and "登录" not in english
    r = stage.client.post("/console/language", data={"language": "zh_CN", "next": "/console/login",
                                                     "csrf": _csrf(stage)}, follow_redirects=False)
    assert r.status_code == 303
    assert "登录" in stage.client.get("/console/login", headers={"accept-language": "en"}).text
    assert negotiate(None, "fr;q=1, en;q=0.5") == "en" and negotiate(None, "de") == "zh_CN"


def test_a_signed_in_users_language_is_kept_on_the_account(stage):
    # given ops chose English on one browser
    _sign_in(stage, "ops@test.tuangou")
    r = stage.client.post("/console/language", data={"language": "en", "next": "/console/ops",
                                                     "csrf": _csrf(stage, "/console/ops")}, follow_redirects=False)
    assert r.status_code == 303
    # when they sign in on another (a fresh cookie jar, a Chinese browser)
    _sign_in(stage, "ops@test.tuangou")
    page = stage.client.get("/console/ops", headers={"accept-language": "zh-CN"}).text
    # then the console is in English
    assert "Work queue" in page and "工作队列" not in page


def test_merchant_today_shows_a_red_gauge_past_the_line_with_yuan(stage):
    _, merchant = stage.merchant()
    deal = stage.deal(merchant, stage.store(merchant), daily_cap=20, title="Taro mille-feuille")
    buyer = stage.buyer()
    for _ in range(9):
        stage.paid_order(buyer, deal, 2)  # 18 of 20: past the 85% red line
    _sign_in(stage, "m1@test.tuangou")
    page = stage.client.get("/console/merchant", headers={"accept-language": "en"}).text
    assert "Taro mille-feuille" in page and "18 / 20 sold, 2 left" in page and 'class="gauge red"' in page
    assert "¥10.00" in page and "Past the red line" in page
    zh = stage.client.get("/console/merchant/gauges").text
    assert "已售 18 / 20，剩余 2" in zh


def test_buyer_sees_times_in_the_store_time_zone_and_a_qr_code(stage):
    _, merchant = stage.merchant()
    deal = stage.deal(merchant, stage.store(merchant), title="Noodles")
    stage.buyer()
    order = stage.paid_order(stage.login("buyer2@test.tuangou"), deal, 1)
    _sign_in(stage, "buyer2@test.tuangou")
    page = stage.client.get(f"/console/buyer/orders/{order['id']}").text
    assert order["vouchers"][0]["code"] in page and "<svg" in page and "二维码" in page
    listing = stage.client.get("/console/buyer").text
    # valid until 30 days after 10:00 Shanghai, shown in Shanghai time (not 02:00 UTC)
    assert "2026-12-23 10:00" in listing and "2026-12-23 02:00" not in listing


def test_suppliers_and_leaders_never_reach_the_ops_console(stage):
    for role in (Role.SUPPLIER, Role.LEADER):
        email = f"{role.value}@test.tuangou"
        accounts.create_user(UnitOfWork(stage.db, stage.clock), None, email, PASSWORD, role, role.value)
        assert _sign_in(stage, email).headers["location"] == "/console/partner"
        for path in ("/console/ops", "/console/ops/audit", "/console/ops/merchants", "/console/merchant"):
            r = stage.client.get(path)
            assert r.status_code == 404 and "create_merchant" not in r.text
        assert stage.client.get("/console/partner").status_code == 200


def test_ops_console_shows_merchants_and_the_searchable_audit_log(stage):
    stage.merchant("Lao Wang Noodles")
    _sign_in(stage, "ops@test.tuangou")
    assert "Lao Wang Noodles" in stage.client.get("/console/ops/merchants").text
    assert "create_merchant" in stage.client.get("/console/ops/audit?action=create_merchant").text
    assert "create_merchant" not in stage.client.get("/console/ops/audit?action=no_such_action").text


def test_api_docs_load_their_assets_from_this_server(stage):
    for path in ("/docs", "/redoc"):
        html = stage.client.get(path).text
        urls = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert urls and all(u.startswith("/") for u in urls), urls
        assert "fonts.googleapis" not in html and "cdn.jsdelivr" not in html
    assert '"validatorUrl": null' in stage.client.get("/docs").text
    redoc = stage.client.get("/docs-offline/redoc.js")
    assert redoc.status_code == 200 and b"cdn.redoc.ly" not in redoc.content
    assert stage.client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
