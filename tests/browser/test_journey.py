"""The whole journey in a real browser, once in zh-CN and once in en:
merchant declares capacity -> buyer buys and pays on a 390 px phone -> merchant redeems the voucher by
code -> buyer opens a dispute -> ops confirm it on the dispute desk -> merchant sees the deduction and
files an appeal -> ops uphold it."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

PHONE = {"width": 390, "height": 844}
DESK = {"width": 1280, "height": 860}
TEXT = {  # what each language must show (the zh-CN run asserts Chinese text)
    "zh-CN": {"sign_in": "登录", "declare": "申报产能", "declared": "产能已申报", "order": "下单", "pay": "支付",
              "paid": "支付成功", "redeem": "核销", "redeemed": "核销成功", "again": "这张券已经核销过了",
              "dispute": "发起纠纷", "disputed": "纠纷已提交", "confirm": "确认：立即退款并补偿",
              "recorded": "决定已记录", "appeal": "对这次扣分申诉", "file": "提交申诉", "appealed": "申诉已提交",
              "uphold": "支持申诉：恢复分数", "upheld": "申诉成功", "deduction": "扣分记录", "catering": "餐饮"},
    "en": {"sign_in": "Sign in", "declare": "Declare capacity", "declared": "Capacity declared", "order": "Place order",
           "pay": "Pay", "paid": "Paid.", "redeem": "Redeem", "redeemed": "Redeemed:", "again": "already redeemed",
           "dispute": "Open a dispute", "disputed": "Dispute opened", "confirm": "Confirm: refund and compensate now",
           "recorded": "Decision recorded", "appeal": "Appeal this deduction", "file": "File appeal",
           "appealed": "Appeal filed", "uphold": "Uphold: give the points back", "upheld": "upheld",
           "deduction": "Deductions", "catering": "catering"},
}


class Role:
    """One signed-in person: their own browser context (cookies), viewport and language."""

    def __init__(self, browser: Any, base: str, lang: str, viewport: dict[str, int], shots: Path, name: str) -> None:
        self.ctx = browser.new_context(viewport=viewport, locale=lang)
        self.ctx.set_default_timeout(10_000)
        self.outside: list[str] = []
        self.ctx.route("**/*", self._only_local)
        self.page = self.ctx.new_page()
        self.failures: list[str] = []
        self.page.on("response", lambda r: r.status >= 500 and self.failures.append(f"{r.status} {r.url}"))
        self.base, self.lang, self.shots, self.name, self.width = base, lang, shots, name, viewport["width"]
        self.t = TEXT[lang]

    def _only_local(self, route: Any) -> None:
        if urlparse(route.request.url).hostname not in ("127.0.0.1", "localhost"):
            self.outside.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    def go(self, path: str) -> None:
        response = self.page.goto(self.base + path)
        assert response is not None and response.status < 500, f"{path} answered {response and response.status}"

    def shot(self, step: str) -> None:
        self.page.wait_for_load_state("load")
        self.page.screenshot(path=str(self.shots / f"journey-{self.lang}-{step}-{self.width}.png"), full_page=True)

    def fits(self) -> None:
        self.page.wait_for_load_state("load")
        assert self.page.evaluate("document.documentElement.scrollWidth") <= self.width, \
            f"{self.page.url} scrolls sideways at {self.width} px"

    def sign_in(self, email: str) -> None:
        self.go("/console/login")
        self.page.fill("#email", email)
        self.page.fill("#password", "demo-pass-1")
        self.page.get_by_role("button", name=self.t["sign_in"], exact=True).click()
        self.page.wait_for_load_state()
        assert "/console/login" not in self.page.url

    def sees(self, text: str) -> None:
        self.page.get_by_text(text, exact=False).first.wait_for(timeout=10_000)

    def close(self) -> None:
        assert not self.outside, f"requests to other hosts: {self.outside}"
        assert not self.failures, f"server errors: {self.failures}"
        self.ctx.close()


@pytest.mark.parametrize(("lang", "buyer_email"), [("zh-CN", "buyer1@demo.tuangou"), ("en", "buyer2@demo.tuangou")])
def test_the_journey_from_capacity_to_an_upheld_appeal(browser, demo_url, shots, lang, buyer_email):
    merchant = Role(browser, demo_url, lang, DESK, shots, "merchant")
    buyer = Role(browser, demo_url, lang, PHONE, shots, "buyer")
    ops = Role(browser, demo_url, lang, DESK, shots, "ops")
    t = TEXT[lang]

    # the merchant declares the noodle shop's capacity
    merchant.sign_in("merchant1@demo.tuangou")
    merchant.go("/console/merchant/capacity")
    form = merchant.page.locator("form[action$='/capacity']").first
    form.locator("input[name=staff]").fill("3")
    form.locator("input[name=per_staff_per_hour]").fill("10")
    form.locator("input[name=machine_name]").fill("wok")
    form.locator("input[name=machine_per_hour]").fill("20")
    form.get_by_role("button", name=t["declare"]).click()
    merchant.sees(t["declared"])
    merchant.shot("capacity")

    # the buyer buys one noodle set and pays, on a phone
    buyer.sign_in(buyer_email)
    buyer.page.get_by_role("link", name="beef noodles for two").click()
    buyer.page.get_by_role("button", name=t["order"]).wait_for()
    buyer.fits()
    buyer.shot("deal")
    buyer.page.get_by_role("button", name=t["order"]).click()
    buyer.page.get_by_role("button", name=t["pay"]).click()
    buyer.sees(t["paid"])
    buyer.fits()
    buyer.shot("vouchers")
    assert buyer.page.locator(".qr svg").count() == 1
    code = buyer.page.locator(".voucher-code").first.inner_text().strip()
    order_url = buyer.page.url

    # the merchant redeems it by typing the code; a second try is refused in words
    merchant.go("/console/merchant/redeem")
    merchant.page.fill("#code", code)
    merchant.page.get_by_role("button", name=t["redeem"], exact=True).click()
    merchant.sees(t["redeemed"])
    merchant.shot("redeemed")
    merchant.page.fill("#code", code)
    merchant.page.get_by_role("button", name=t["redeem"], exact=True).click()
    merchant.sees(t["again"])

    # the buyer opens a dispute: no table at arrival
    buyer.page.goto(order_url)
    buyer.page.select_option("#kind", "cannot_fulfil")
    buyer.page.fill("#description", "no table at arrival")
    buyer.page.get_by_role("button", name=t["dispute"]).click()
    buyer.sees(t["disputed"])
    buyer.fits()
    buyer.shot("disputed")

    # ops confirm it on the dispute desk as the merchant's over-selling
    ops.sign_in("ops@demo.tuangou")
    ops.go("/console/ops?kind=dispute")
    ops.shot("queue")
    ops.page.locator("a[href^='/console/ops/disputes/']").first.click()
    ops.page.check("input[name=oversale]")
    ops.page.fill("#reason", "tables sold twice")
    ops.page.get_by_role("button", name=t["confirm"]).click()
    ops.sees(t["recorded"])
    ops.shot("dispute-desk")

    # the merchant sees the deduction and appeals it with a chat log
    merchant.go("/console/merchant/standing")
    merchant.sees(t["deduction"])
    merchant.sees(t["catering"])
    merchant.page.get_by_text(t["appeal"]).first.click()
    appeal = merchant.page.locator("form[action='/console/merchant/appeals']").first
    appeal.locator("textarea[name=statement]").fill("the buyer agreed to come the next day")
    appeal.locator("input[type=file]").set_input_files(
        files=[{"name": "chat.txt", "mimeType": "text/plain", "buffer": b"buyer: fine, tomorrow then"}])
    appeal.get_by_role("button", name=t["file"]).click()
    merchant.sees(t["appealed"])
    merchant.shot("standing")

    # ops uphold the appeal; the merchant's appeal shows as upheld
    ops.go("/console/ops?kind=appeal")
    ops.page.locator("a[href^='/console/ops/appeals/']").first.click()
    ops.page.fill("#reason", "the chat log confirms it")
    ops.page.get_by_role("button", name=t["uphold"]).click()
    ops.sees(t["recorded"])
    ops.shot("appeal")
    merchant.go("/console/merchant/standing")
    merchant.sees(t["upheld"])

    for role in (merchant, buyer, ops):
        role.close()
