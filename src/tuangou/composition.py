"""What the composition roots assemble: the order participants, in their stated order.

`create_app`, the worker and the CLI each call `compose()`; nothing is registered by importing
a module (tests/unit/test_composition.py checks every entry point ends with the same set).
The order is the order participants run in while an order is placed or paid:

1. monitoring.line_pause — a business line paused at the red KPI level takes no orders.
2. merchants.intake — the merchant's daily intake cap while limited.
3. disputes.coupon — a coupon used at checkout takes its discount off the amount.
4. campaigns.join — a group-buy deal's order joins its campaign (never past the maximum).
5. governance.red_line — warns the merchant when a line was crossed, once the order stands.
"""

from __future__ import annotations

from tuangou.campaigns.participant import CampaignJoin
from tuangou.disputes.participant import CouponAtCheckout
from tuangou.governance.participant import RedLineWarning
from tuangou.merchants.participant import IntakeCap
from tuangou.monitoring.participant import LinePause
from tuangou.orders.participants import OrderParticipant, registry


def order_participants() -> list[OrderParticipant]:
    return [LinePause(), IntakeCap(), CouponAtCheckout(), CampaignJoin(), RedLineWarning()]


def compose() -> list[str]:
    """Install the participants; returns their names in order. Safe to call again."""
    registry.install(order_participants())
    return registry.names()
