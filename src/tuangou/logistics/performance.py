"""Seller performance rates (7/30/60 days), as the largest marketplaces publish them, with the orders
behind each number; crossing a target warns the merchant once a day."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from tuangou.core.auth import Principal, Role
from tuangou.core.db import UnitOfWork, insert_ignore
from tuangou.core.errors import Forbidden
from tuangou.logistics import rules
from tuangou.logistics.models import PerformanceWarning, Shipment, ShippingOrder, Watermark
from tuangou.logistics.policy import current_policy
from tuangou.notify import service as notify

HORIZON = timedelta(days=max(rules.WINDOWS))


def _records(uow: UnitOfWork, merchant_id: int) -> tuple[list[rules.OrderRecord], list[rules.ShipmentRecord]]:
    since = uow.now - HORIZON
    rows = uow.session.scalars(select(ShippingOrder).where(ShippingOrder.merchant_id == merchant_id,
                                                           ShippingOrder.paid_at >= since))
    orders = [rules.OrderRecord(r.order_id, r.category, r.paid_at, r.due_at, r.shipped_at, r.status, r.defect)
              for r in rows]
    category = {o.order_id: o.category for o in orders}
    shipments = [rules.ShipmentRecord(s.order_id, category.get(s.order_id, "other"), s.created_at, s.scan_due_at,
                                      s.first_scan_at, s.status == rules.ShipmentStatus.VOIDED)
                 for s in uow.session.scalars(select(Shipment).where(
                     Shipment.merchant_id == merchant_id, Shipment.created_at >= since,
                     Shipment.scan_due_at.is_not(None)))
                 if s.scan_due_at is not None]
    return orders, shipments


def _rates(uow: UnitOfWork, merchant_id: int, policy: rules.LogisticsPolicy) -> dict[str, Any]:
    orders, shipments = _records(uow, merchant_id)
    windows = {f"{d}d": rules.performance(orders, shipments, uow.now, d, policy) for d in rules.WINDOWS}
    by_category = {}
    for cat in sorted({o.category for o in orders}):
        os_ = [o for o in orders if o.category == cat]
        ss = [s for s in shipments if s.category == cat]
        by_category[cat] = {f"{d}d": rules.performance(os_, ss, uow.now, d, policy) for d in rules.WINDOWS}
    return {"merchant_id": merchant_id, "as_of": uow.now.isoformat(), "windows": windows, "by_category": by_category}


def merchant_performance(uow: UnitOfWork, actor: Principal, merchant_id: int) -> dict[str, Any]:
    if not (actor.role == Role.OPS or (actor.role == Role.MERCHANT and actor.merchant_id == merchant_id)):
        raise Forbidden("performance rates are shown to their merchant and ops")
    with uow:
        return _rates(uow, merchant_id, current_policy(uow))


def warn_daily(uow: UnitOfWork) -> int:
    """Once a day: every merchant with goods orders in the last 60 days hears about each rate off target."""
    with uow:
        day = uow.now.date().isoformat()
        if not insert_ignore(uow.session, Watermark.__table__, {"name": f"perf:{day}", "at": uow.now}, ["name"]):
            return 0
        policy = current_policy(uow)
        merchants = sorted(set(uow.session.scalars(select(ShippingOrder.merchant_id).where(
            ShippingOrder.paid_at >= uow.now - HORIZON).distinct())))
        n = 0
        for merchant_id in merchants:
            for window, metrics in _rates(uow, merchant_id, policy)["windows"].items():
                for m in metrics:
                    if m["ok"] or not insert_ignore(uow.session, PerformanceWarning.__table__, {
                            "merchant_id": merchant_id, "metric": m["metric"], "days": int(window[:-1]), "day": day,
                            "rate_bps": m["rate_bps"], "created_at": uow.now},
                            ["merchant_id", "metric", "days", "day"]):
                        continue
                    n += 1
                    notify.notify_merchant(uow, merchant_id, "performance_warning",
                                           f"{m['metric']} over {window}: {m['rate_bps'] / 100:.2f}% "
                                           f"(target {m['target']})", f"Orders behind it: {m['order_ids'][:20]}",
                                           {"metric": m["metric"], "window": window}, severity="warning")
        uow.commit()
        return n
