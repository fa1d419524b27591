"""Seller performance rates (7/30/60 days), as the largest marketplaces publish them, with the orders
behind each number; crossing a target warns the merchant once a day."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select

from tuangou.core.auth import Principal, Role
from tuangou.core.db import UnitOfWork, insert_ignore
from tuangou.core.errors import Forbidden
from tuangou.logistics import rules
from tuangou.logistics.models import PerformanceWarning, Shipment, ShippingOrder, Watermark
from tuangou.logistics.policy import current_policy
from tuangou.notify import service as notify

HORIZON = timedelta(days=max(rules.WINDOWS))


def _records(uow: UnitOfWork, merchant_id: int) -> tuple[list[rules.OrderRecord], list[rules.ShipmentRecord]]:
    """The merchant's last 60 days as plain tuples (Core rows, not ORM objects: a daily pass over every
    merchant reads them all)."""
    since = uow.now - HORIZON
    r, s = ShippingOrder, Shipment
    orders = [rules.OrderRecord(*row) for row in uow.session.execute(
        select(r.order_id, r.category, r.paid_at, r.due_at, r.shipped_at, r.status, r.defect)
        .where(r.merchant_id == merchant_id, r.paid_at >= since))]
    category = {o.order_id: o.category for o in orders}
    shipments = [rules.ShipmentRecord(oid, category.get(oid, "other"), created, due or created, first,
                                      status == rules.ShipmentStatus.VOIDED)
                 for oid, created, due, first, status in uow.session.execute(
                     select(s.order_id, s.created_at, s.scan_due_at, s.first_scan_at, s.status).where(
                         s.merchant_id == merchant_id, s.created_at >= since, s.scan_due_at.is_not(None)))]
    return orders, shipments


def _rates(uow: UnitOfWork, merchant_id: int, policy: rules.LogisticsPolicy, by_category: bool = True
           ) -> dict[str, Any]:
    orders, shipments = _records(uow, merchant_id)
    windows = {f"{d}d": rules.performance(orders, shipments, uow.now, d, policy) for d in rules.WINDOWS}
    categories = {}
    for cat in sorted({o.category for o in orders}) if by_category else []:
        os_ = [o for o in orders if o.category == cat]
        ss = [x for x in shipments if x.category == cat]
        categories[cat] = {f"{d}d": rules.performance(os_, ss, uow.now, d, policy) for d in rules.WINDOWS}
    return {"merchant_id": merchant_id, "as_of": uow.now.isoformat(), "windows": windows, "by_category": categories}


def merchant_performance(uow: UnitOfWork, actor: Principal, merchant_id: int) -> dict[str, Any]:
    if not (actor.role == Role.OPS or (actor.role == Role.MERCHANT and actor.merchant_id == merchant_id)):
        raise Forbidden("performance rates are shown to their merchant and ops")
    with uow:
        return _rates(uow, merchant_id, current_policy(uow))


def _counts(uow: UnitOfWork, days: int) -> dict[int, rules.RateCounts]:
    """Every merchant's counts over the last `days`, in two GROUP BY queries."""
    since, now = uow.now - timedelta(days=days), uow.now
    r, s = ShippingOrder, Shipment
    OS = rules.OrderShipping

    def n(cond: Any) -> Any:
        return func.sum(case((cond, 1), else_=0))
    due = or_(r.due_at <= now, r.shipped_at.is_not(None))
    late = and_(due, or_(and_(r.shipped_at.is_(None), r.status.in_((OS.AWAITING, OS.PARTIAL, OS.CANCELLED))),
                         r.shipped_at > r.due_at))
    orders = {m: (int(a), int(b or 0), int(c or 0), int(d or 0), int(e or 0)) for m, a, b, c, d, e in uow.session.execute(
        select(r.merchant_id, func.count(), n(due), n(late), n(r.status == OS.CANCELLED),
               n(or_(r.defect.is_(True), r.status == OS.CANCELLED))).where(r.paid_at >= since).group_by(r.merchant_id))}
    checked = and_(s.scan_due_at.is_not(None), or_(s.scan_due_at <= now, s.first_scan_at.is_not(None)))
    invalid = and_(checked, or_(s.status == rules.ShipmentStatus.VOIDED, s.first_scan_at.is_(None),
                                s.first_scan_at > s.scan_due_at))
    scans = {m: (int(a or 0), int(b or 0)) for m, a, b in uow.session.execute(
        select(s.merchant_id, n(checked), n(invalid)).where(s.created_at >= since).group_by(s.merchant_id))}
    return {m: rules.RateCounts(*orders.get(m, (0, 0, 0, 0, 0)), *scans.get(m, (0, 0)))
            for m in set(orders) | set(scans)}


def warn_daily(uow: UnitOfWork) -> int:
    """Once a day: every merchant hears about each rate off target over each window (counted in the
    database, so 100,000 open orders cost a few aggregate queries)."""
    with uow:
        day = uow.now.date().isoformat()
        if not insert_ignore(uow.session, Watermark.__table__, {"name": f"perf:{day}", "at": uow.now}, ["name"]):
            return 0
        policy = current_policy(uow)
        n = 0
        for days in rules.WINDOWS:
            for merchant_id, counts in sorted(_counts(uow, days).items()):
                for metric, bps in rules.off_target(counts, policy):
                    if not insert_ignore(uow.session, PerformanceWarning.__table__, {
                            "merchant_id": merchant_id, "metric": metric, "days": days, "day": day,
                            "rate_bps": bps, "created_at": uow.now}, ["merchant_id", "metric", "days", "day"]):
                        continue
                    n += 1
                    notify.notify_merchant(uow, merchant_id, "performance_warning",
                                           f"{metric} over {days} days: {bps / 100:.2f}%",
                                           "GET /api/v1/merchants/{id}/shipping-performance lists the orders behind it.",
                                           {"metric": metric, "window": f"{days}d", "rate_bps": bps},
                                           severity="warning")
        uow.commit()
        return n
