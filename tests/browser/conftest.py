"""One demo server and one Debian Chromium for the whole browser session (Playwright drives the system
browser through executable_path; no browser is ever downloaded)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.demo_server import running_demo

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
SHOTS = ROOT / "test-artifacts" / "screenshots"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not shutil.which(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("CI needs Debian's Chromium (.ci/run installs it) and Playwright (make install-dev)")
        pytest.skip("no /usr/bin/chromium or playwright here (apt-get install chromium; make install-dev)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def demo_url(tmp_path_factory: Any) -> Iterator[str]:
    """`tuangou demo` on a fresh SQLite file: demo mode, demo data, the worker in process."""
    with running_demo(tmp_path_factory.mktemp("browser-demo")) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS
