"""The consoles show each role what it needs, behind a sign-in."""

from __future__ import annotations


def _csrf(stage) -> str:
    stage.client.get("/console/login")  # the page sets the CSRF cookie its form carries
    return str(stage.client.cookies.get("tuangou_csrf"))


def _sign_in(stage, email):
    r = stage.client.post("/console/login", data={"email": email, "password": "secret-pass-1", "csrf": _csrf(stage)},
                          follow_redirects=False)
    assert r.status_code == 303
    return r.cookies


def test_console_needs_sign_in_and_rejects_bad_password(stage):
    assert stage.client.get("/console", follow_redirects=False).headers["location"] == "/console/login"
    r = stage.client.post("/console/login", data={"email": "ops@test.tuangou", "password": "wrong-password",
                                                  "csrf": _csrf(stage)})
    assert r.status_code == 401 and "wrong email or password" in r.text


def test_merchant_sees_a_sales_gauge_and_buyer_sees_what_is_left(stage):
    _, merchant = stage.merchant()
    deal = stage.deal(merchant, stage.store(merchant), daily_cap=20, title="Taro mille-feuille")
    buyer = stage.buyer()
    for _ in range(9):
        stage.paid_order(buyer, deal, 2)  # 18 of 20: past the 85% red line
    stage.client.cookies.clear()
    stage.client.cookies.update(_sign_in(stage, "m1@test.tuangou"))
    page = stage.client.get("/console").text
    assert "Taro mille-feuille" in page and "18 / 20 sold (90%)" in page and "#d93025" in page
    stage.client.cookies.clear()
    stage.client.cookies.update(_sign_in(stage, "buyer2@test.tuangou"))
    page = stage.client.get("/console").text
    assert "Taro mille-feuille" in page and "¥10.00" in page and "Paid ¥20.00" in page


def test_ops_console_shows_the_audit_log(stage):
    stage.merchant("Lao Wang Noodles")
    stage.client.cookies.update(_sign_in(stage, "ops@test.tuangou"))
    page = stage.client.get("/console").text
    assert "Lao Wang Noodles" in page and "create_merchant" in page
