"""What the composition roots assemble: the participants of every lower capability, in a stated order.

`create_app`, the worker and the CLI each call `compose()`; nothing is registered by importing
a module (tests/unit/test_composition.py checks every entry point ends with the same set).
The order is the order participants run in while an order is placed or paid:

1. monitoring.line_pause — a business line paused at the red KPI level takes no orders.
2. merchants.intake — the merchant's daily intake cap while limited.
3. disputes.coupon — a coupon used at checkout takes its discount off the amount.
4. campaigns.join — a group-buy deal's order joins its campaign (never past the maximum).
5. governance.red_line — warns the merchant when a line was crossed, once the order stands.
6. logistics.shipping_clock — paying a goods order starts its shipping clock (after campaigns.join, which may
   refund a payment that came too late: such an order gets no clock).

Deals (catalog): monitoring.line_pause_listings and merchants.standing check a publish in that order
(merchants.standing also ranks the listings); capacity.on_publish applies audits and caps once published.
Capacity: governance.circuit_breaker reacts to a cap below what is sold.
Over-sales (governance): disputes.oversale_coupon compensates the buyers the breaker moved or refunded.
"""

from __future__ import annotations

from tuangou.campaigns.participant import CampaignJoin
from tuangou.capacity.participant import CapacityOnPublish
from tuangou.capacity.participants import registry as capacity
from tuangou.catalog.participants import DealParticipant
from tuangou.catalog.participants import registry as deals
from tuangou.disputes.participant import CouponAtCheckout, CouponForOversale
from tuangou.governance.participant import CircuitBreaker, RedLineWarning
from tuangou.governance.participants import registry as oversales
from tuangou.logistics.participant import ShippingClock
from tuangou.merchants.participant import IntakeCap, StandingOnDeals
from tuangou.monitoring.participant import LinePause, LinePauseOnPublish
from tuangou.orders.participants import OrderParticipant, registry


def order_participants() -> list[OrderParticipant]:
    return [LinePause(), IntakeCap(), CouponAtCheckout(), CampaignJoin(), RedLineWarning(), ShippingClock()]


def deal_participants() -> list[DealParticipant]:
    return [LinePauseOnPublish(), StandingOnDeals(), CapacityOnPublish()]


def compose() -> list[str]:
    """Install every registry's participants; returns the order participants' names. Safe to call again."""
    registry.install(order_participants())
    deals.install(deal_participants())
    capacity.install([CircuitBreaker()])
    oversales.install([CouponForOversale()])
    return registry.names()
