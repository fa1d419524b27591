"""Every console page at 1280 px and 390 px: a screenshot of each (test-artifacts/screenshots/pages), no
page answers 500, none scrolls sideways on a phone, and nothing is fetched from another host (the API
docs included: their assets come from a Python package)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlparse

import pytest

WIDTHS = (1280, 390)
PAGES = {
    "merchant1@demo.tuangou": ["/console/merchant", "/console/merchant/redeem", "/console/merchant/capacity",
                               "/console/merchant/orders", "/console/merchant/disputes", "/console/merchant/standing",
                               "/console/merchant/capacity?daily_reception=50&activity_days=7", "/console/merchant/deals",
                               "/console/merchant/exam", "/console/merchant/campaigns"],
    "buyer1@demo.tuangou": ["/console/buyer", "/console/buyer/deals/1", "/console/buyer/orders", "/console/buyer/me",
                            "/console/buyer/groups"],
    "ops@demo.tuangou": ["/console/ops", "/console/ops/merchants", "/console/ops/incidents", "/console/ops/policies",
                         "/console/ops/charts", "/console/ops/users", "/console/ops/audit"],
}
DETAILS = {  # list pages whose first detail link is visited too
    "buyer1@demo.tuangou": ("/console/buyer/orders", r"^/console/buyer/orders/\d+$"),
    "ops@demo.tuangou": ("/console/ops", r"^/console/ops/(disputes|appeals)/\d+$"),
}


class Visitor:
    def __init__(self, browser: Any, base: str, width: int) -> None:
        self.ctx = browser.new_context(viewport={"width": width, "height": 900}, locale="zh-CN")
        self.ctx.set_default_timeout(10_000)
        self.outside: list[str] = []
        self.ctx.route("**/*", self._only_local)
        self.page = self.ctx.new_page()
        self.base, self.width = base, width

    def _only_local(self, route: Any) -> None:
        if urlparse(route.request.url).hostname not in ("127.0.0.1", "localhost"):
            self.outside.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    def visit(self, path: str, shots: Any, name: str, full_page: bool = True) -> None:
        response = self.page.goto(self.base + path)
        assert response is not None and response.status < 500, f"{path} answered {response and response.status}"
        self.page.wait_for_load_state("load")
        self.page.screenshot(path=str(shots / f"{name}-{self.width}.png"), full_page=full_page)
        if self.width <= 390:
            scroll = self.page.evaluate("document.documentElement.scrollWidth")
            assert scroll <= self.width, f"{path} scrolls sideways at {self.width} px ({scroll} px wide)"

    def sign_in(self, email: str) -> None:
        self.page.goto(self.base + "/console/login")
        self.page.fill("#email", email)
        self.page.fill("#password", "demo-pass-1")
        self.page.locator("form[action='/console/login'] button[type=submit]").click()
        self.page.wait_for_load_state()
        assert "/console/login" not in self.page.url


def _slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.strip("/").lower()) or "root"


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_renders_without_500_or_sideways_scroll(browser, demo_url, shots, width):
    folder = shots / "pages"
    folder.mkdir(exist_ok=True)
    anon = Visitor(browser, demo_url, width)
    anon.visit("/console/login", folder, "login")
    anon.visit("/docs", folder, "docs", full_page=False)  # the API docs are very long pages: first screen only
    anon.page.locator(".swagger-ui .info").first.wait_for()
    anon.visit("/redoc", folder, "redoc", full_page=False)
    anon.page.get_by_text("tuangou").first.wait_for()
    assert not anon.outside, f"requests to other hosts: {anon.outside}"
    anon.ctx.close()
    for email, paths in PAGES.items():
        v = Visitor(browser, demo_url, width)
        v.sign_in(email)
        role = email.split("@")[0]
        for path in paths:
            v.visit(path, folder, f"{role}-{_slug(path)}")
        if email in DETAILS:
            listing, pattern = DETAILS[email]
            v.page.goto(demo_url + listing)
            hrefs = [h for h in v.page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
                     if re.match(pattern, h)]
            for href in hrefs[:2]:
                v.visit(href, folder, f"{role}-{_slug(href)}")
        assert not v.outside, f"requests to other hosts: {v.outside}"
        v.ctx.close()
