"""What the composition roots assemble: the participants of every lower capability, in a stated order.

`create_app`, the worker and the CLI each call `compose()`; nothing is registered by importing
a module (tests/unit/test_composition.py checks every entry point ends with the same set).
The order is the order participants run in while an order is placed or paid:

1. monitoring.line_pause — a business line paused at the red KPI level takes no orders.
2. merchants.intake — the merchant's daily intake cap while limited.
3. disputes.coupon — a coupon used at checkout takes its discount off the amount.
4. campaigns.join — a group-buy deal's order joins its campaign (never past the maximum).
5. risk.check — counts the order against its sliding windows (account, device, network address,
   delivery address, phone, payment account) and passes, holds (units kept, not payable, a case for
   ops) or rejects it. It does so in `on_inserted`, which every participant gets before the units are
   held, so its statement never lengthens a hot deal's bucket lock; its place here (before
   governance.red_line, which must only warn about orders that stand) orders its on_placing, which
   does nothing. Left out when the settings turn risk checks off (the flash-sale benchmark's risk-off
   sale).
6. governance.red_line — warns the merchant when a line was crossed, once the order stands.
7. logistics.shipping_clock — paying a goods order starts its shipping clock (after campaigns.join, which may
   refund a payment that came too late: such an order gets no clock).

Deals (catalog): monitoring.line_pause_listings and merchants.standing check a publish in that order
(merchants.standing also ranks the listings); capacity.on_publish applies audits and caps once published.
Capacity: governance.circuit_breaker reacts to a cap below what is sold.
Over-sales (governance): disputes.oversale_coupon compensates the buyers the breaker moved or refunded.
Called-off group-buys (campaigns): disputes.cancelled_group_coupon compensates each participant.
"""

from __future__ import annotations

from tuangou.campaigns.participant import CampaignJoin
from tuangou.campaigns.participants import registry as cancellations
from tuangou.capacity.participant import CapacityOnPublish
from tuangou.capacity.participants import registry as capacity
from tuangou.catalog.participants import DealParticipant
from tuangou.catalog.participants import registry as deals
from tuangou.disputes.participant import CouponAtCheckout, CouponForCancelledGroup, CouponForOversale
from tuangou.governance.participant import CircuitBreaker, RedLineWarning
from tuangou.governance.participants import registry as oversales
from tuangou.logistics.participant import ShippingClock
from tuangou.merchants.participant import IntakeCap, StandingOnDeals
from tuangou.monitoring.participant import LinePause, LinePauseOnPublish
from tuangou.orders.participants import OrderParticipant, registry
from tuangou.risk.participant import RiskCheck


def order_participants(redis_url: str | None = None, risk: bool = True) -> list[OrderParticipant]:
    checks: list[OrderParticipant] = [RiskCheck(redis_url)] if risk else []
    return [LinePause(), IntakeCap(), CouponAtCheckout(), CampaignJoin(), *checks, RedLineWarning(), ShippingClock()]


def deal_participants() -> list[DealParticipant]:
    return [LinePauseOnPublish(), StandingOnDeals(), CapacityOnPublish()]


def compose(redis_url: str | None = None, risk: bool = True) -> list[str]:
    """Install every registry's participants; returns the order participants' names. Safe to call again.

    `redis_url`: risk's window counters live in Redis instead of the database; `risk=False` leaves
    the risk checks out (settings `TUANGOU_REDIS_URL`, `TUANGOU_RISK_CHECKS`)."""
    registry.install(order_participants(redis_url, risk))
    deals.install(deal_participants())
    capacity.install([CircuitBreaker()])
    oversales.install([CouponForOversale()])
    cancellations.install([CouponForCancelledGroup()])
    return registry.names()
