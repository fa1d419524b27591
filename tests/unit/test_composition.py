"""Every entry point installs the same order participants, in the same order; nothing is
installed by importing a module, and placing orders without a composition root fails loudly."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tuangou.composition import compose
from tuangou.core.config import Settings
from tuangou.orders.participants import NotComposed, Registry, registry

EXPECTED = ["monitoring.line_pause", "merchants.intake", "disputes.coupon", "campaigns.join", "risk.check",
            "governance.red_line", "logistics.shipping_clock"]


@pytest.fixture
def empty_registry():
    saved = registry._items
    registry._items = None
    yield registry
    registry._items = saved


def test_create_app_installs_every_participant(empty_registry, tmp_path):
    from tuangou.app import create_app
    create_app(Settings(database_url=f"sqlite:///{tmp_path}/a.db", secret_key="x" * 32))
    assert empty_registry.names() == EXPECTED


def test_the_worker_installs_every_participant(empty_registry, tmp_path):
    from tuangou.core.clock import SystemClock
    from tuangou.core.db import Database
    from tuangou.worker import job_context
    settings = Settings(database_url=f"sqlite:///{tmp_path}/w.db", secret_key="x" * 32)
    job_context(settings, Database(settings.database_url), SystemClock(), None, {})
    assert empty_registry.names() == EXPECTED


def test_every_cli_command_runs_with_every_participant(empty_registry):
    from tuangou import cli
    cli.compose_participants()
    assert empty_registry.names() == EXPECTED


def test_importing_capabilities_installs_nothing():
    # in a fresh interpreter: every capability and the composition module imported, nothing composed
    code = ("from tuangou.core.registry import load_models, api_modules, job_modules; load_models(); "
            "api_modules(); job_modules(); import tuangou.composition; "
            "from tuangou.orders.participants import registry; print(registry.names())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_placing_before_composition_is_an_error_not_a_silent_skip():
    with pytest.raises(NotComposed):
        _ = Registry("order").items


def test_compose_is_repeatable_and_names_are_unique():
    assert compose() == compose() == EXPECTED


def test_compose_installs_the_deal_capacity_over_sale_and_cancellation_participants_too():
    from tuangou.campaigns.participants import registry as cancellations
    from tuangou.capacity.participants import registry as capacity
    from tuangou.catalog.participants import registry as deals
    from tuangou.governance.participants import registry as oversales
    compose()
    assert deals.names() == ["monitoring.line_pause_listings", "merchants.standing", "capacity.on_publish"]
    assert capacity.names() == ["governance.circuit_breaker"]
    assert oversales.names() == ["disputes.oversale_coupon"]
    assert cancellations.names() == ["disputes.cancelled_group_coupon"]
