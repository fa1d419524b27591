"""Disputes' participants: coupons at checkout (orders), and the coupon a buyer gets from the circuit
breaker (governance). Coupons at checkout as an order participant: used once when an order is placed with one,
usable again when that order ends unpaid. Orders without a coupon cost nothing."""

from __future__ import annotations

from typing import Any

from tuangou.campaigns.participants import CancellationParticipant
from tuangou.catalog import rules as catalog_rules
from tuangou.core.db import InTransaction
from tuangou.disputes import service
from tuangou.governance.participants import OversaleParticipant
from tuangou.orders import rules as order_rules
from tuangou.orders.participants import OrderParticipant, Placing


class CouponAtCheckout(OrderParticipant):
    name = "disputes.coupon"

    def wants_placing(self, snapshot: catalog_rules.DealSnapshot, request: order_rules.OrderRequest) -> bool:
        return request.coupon_code is not None

    def on_placing(self, tx: InTransaction, placing: Placing) -> int:
        assert placing.request.coupon_code is not None
        return service.apply_coupon(tx, buyer_id=placing.request.buyer_id, code=placing.request.coupon_code,
                                    order_id=placing.order_id, merchant_id=placing.snapshot.merchant_id,
                                    order_cents=placing.plan.amount_cents)

    def wants_refund(self, order: order_rules.OrderSnapshot) -> bool:
        return bool(order.extra.get("coupon_code"))

    def on_refund(self, tx: InTransaction, order: order_rules.OrderSnapshot, refunded_before: int,
                  refunded_now: int) -> int:
        return service.coupon_refund_share(tx, order.id, order.quantity, refunded_before, refunded_now)

    def wants_ended(self, order: order_rules.OrderSnapshot) -> bool:
        return bool(order.extra.get("coupon_code"))

    def on_ended(self, tx: InTransaction, order: order_rules.OrderSnapshot) -> None:
        service.restore_coupon(tx, order.id)


class CouponForOversale(OversaleParticipant):
    """A buyer moved or refunded by the circuit breaker gets a no-threshold coupon (A5, A6)."""

    name = "disputes.oversale_coupon"

    def compensate(self, tx: InTransaction, *, buyer_id: int, amount_cents: int, reason: str, ref: str,
                   valid_days: int, liable_merchant_id: int) -> None:
        # the platform pays first and books the coupon against the merchant that over-sold (A7)
        service.issue_compensation_coupon(tx, buyer_id=buyer_id, amount_cents=amount_cents, reason=reason, ref=ref,
                                          threshold_cents=0, valid_days=valid_days,
                                          liable_merchant_id=liable_merchant_id)


class CouponForCancelledGroup(CancellationParticipant):
    """A participant of a formed group-buy that was called off gets a no-threshold coupon on top of the
    refund: the platform pays first and recovers it from the campaign's merchant (B1, A7)."""

    name = "disputes.cancelled_group_coupon"

    def compensate(self, tx: InTransaction, *, buyer_id: int, amount_cents: int, reason: str, ref: str,
                   valid_days: int, liable_merchant_id: int) -> dict[str, Any] | None:
        return service.issue_compensation_coupon(tx, buyer_id=buyer_id, amount_cents=amount_cents, reason=reason,
                                                 ref=ref, threshold_cents=0, valid_days=valid_days,
                                                 liable_merchant_id=liable_merchant_id)
