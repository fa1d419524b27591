"""Cold chain (B6) and emergency plans (B8): a broken cold chain is replenished from a backup warehouse
or refunded and compensated; a carrier that goes down has its waiting parcels re-routed to the
merchant's backup carrier, and the buyer chooses between waiting, an upgrade and a coupon."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from tuangou.core.auth import Principal, Role
from tuangou.core.db import UnitOfWork, retry_on_deadlock
from tuangou.core.errors import Conflict, DomainError, NotFound, ValidationFailed
from tuangou.core.money import yuan
from tuangou.core.outbox import record_event
from tuangou.disputes import service as disputes
from tuangou.logistics import records, rules
from tuangou.logistics.models import (
    Carrier,
    EmergencyPlan,
    Shipment,
    ShippingOrder,
    Warehouse,
    WarehouseStock,
)
from tuangou.logistics.policy import current_policy
from tuangou.notify import service as notify
from tuangou.orders import service as orders
from tuangou.orders import shipping_reads

S = rules.ShipmentStatus


def excursions(uow: UnitOfWork, batch: int = 500) -> list[int]:
    with uow:
        return list(uow.session.scalars(select(Shipment.id).where(Shipment.status == S.EXCURSION)
                                        .order_by(Shipment.id).limit(batch)))


def handle_excursions(uow: UnitOfWork, batch: int = 500) -> dict[str, int]:
    counts = {"replaced": 0, "refunded": 0}
    for sid in excursions(uow, batch):
        outcome = handle_excursion(uow, sid)
        if outcome:
            counts[outcome] += 1
    return counts


def _backup_warehouses(uow: UnitOfWork, s: Shipment) -> list[int]:
    plan = uow.session.get(EmergencyPlan, s.merchant_id)
    planned = [w for w in (plan.backup_warehouse_ids if plan else []) if w != s.warehouse_id]
    others = [w for w in uow.session.scalars(select(Warehouse.id).where(Warehouse.merchant_id == s.merchant_id)
                                             .order_by(Warehouse.id)) if w != s.warehouse_id and w not in planned]
    return planned + others


@retry_on_deadlock
def handle_excursion(uow: UnitOfWork, shipment_id: int) -> str | None:
    """One spoiled parcel, once: a replacement from the first backup warehouse with stock, else a refund of
    its units plus compensation (platform first, recovered from the merchant)."""
    with uow:
        policy = current_policy(uow)
        s = uow.session.get(Shipment, shipment_id)
        if s is None or s.status != S.EXCURSION:
            return None
        for wid in _backup_warehouses(uow, s):
            took = uow.session.execute(update(WarehouseStock).where(
                WarehouseStock.warehouse_id == wid, WarehouseStock.deal_id == s.deal_id,
                WarehouseStock.units >= s.units).values(units=WarehouseStock.units - s.units)).rowcount  # type: ignore[attr-defined]
            if took:
                if not _claim(uow, s, S.REPLACED):
                    uow.rollback()
                    return None
                record = uow.session.get(ShippingOrder, s.order_id)
                assert record is not None
                carrier = uow.session.get(Carrier, s.carrier)
                assert carrier is not None
                new = records.add_shipment(uow, record, carrier=carrier, tracking_number=None, units=s.units,
                                           warehouse_id=wid, policy=policy, replaces=s.id, reason="cold_chain")
                notify.notify_user(uow, s.buyer_id, "cold_chain_replaced", f"Order #{s.order_id}: a fresh parcel",
                                   "Your parcel left its temperature range on the way; a replacement ships from "
                                   "another warehouse.", {"order_id": s.order_id, "shipment_id": new.id})
                notify.notify_merchant(uow, s.merchant_id, "cold_chain_replaced",
                                       f"Shipment #{s.id} spoiled: label the replacement #{new.id}", "",
                                       {"shipment_id": new.id, "order_id": s.order_id}, severity="warning")
                record_event(uow.session, "ShipmentReplaced", {"shipment_id": s.id, "replacement_id": new.id,
                             "warehouse_id": wid}, uow.now, merchant_id=s.merchant_id)
                uow.commit()
                return "replaced"
        if not _claim(uow, s, S.REFUNDED):
            return None
        _refund_units(uow, s, policy)
        uow.commit()
        return "refunded"


def _claim(uow: UnitOfWork, s: Shipment, to: rules.ShipmentStatus) -> bool:
    return bool(uow.session.execute(update(Shipment).where(Shipment.id == s.id, Shipment.status == S.EXCURSION)
                                    .values(status=to)).rowcount)  # type: ignore[attr-defined]


def _refund_units(uow: UnitOfWork, s: Shipment, policy: rules.LogisticsPolicy) -> None:
    record = uow.session.get(ShippingOrder, s.order_id)
    assert record is not None
    codes = shipping_reads.issued_voucher_codes(uow, s.order_id)[:s.units]
    refunded = 0
    if codes:
        try:
            refunded = orders.refund_in_uow(uow, s.order_id, codes, f"cold chain broken on shipment #{s.id}")
        except DomainError:
            refunded = 0  # already refunded by other means: nothing more to give back
    amount = rules.late_compensation(refunded, policy) if refunded else 0
    records.compensate(uow, record, amount, f"cold:{s.id}", f"cold chain broken on order #{s.order_id}")
    uow.session.execute(update(ShippingOrder).where(ShippingOrder.order_id == s.order_id)
                        .values(defect=True, compensation_cents=ShippingOrder.compensation_cents + amount))
    notify.notify_user(uow, s.buyer_id, "cold_chain_refunded", f"Order #{s.order_id}: refunded, parcel spoiled",
                       f"Refund {yuan(refunded)} and compensation {yuan(amount)}; no warehouse could replace it.",
                       {"order_id": s.order_id, "shipment_id": s.id})
    record_event(uow.session, "ShipmentRefunded", {"shipment_id": s.id, "refund_cents": refunded,
                                                   "compensation_cents": amount}, uow.now, merchant_id=s.merchant_id)


# ---- emergency re-routing (B8) --------------------------------------------------------------------

def reroute(uow: UnitOfWork, carrier_code: str, merchant_id: int | None, policy: rules.LogisticsPolicy) -> int:
    """Inside an open unit of work (an accepted outage): the carrier is down; parcels it has not picked up
    move to each merchant's backup carrier, and their buyers are asked what they prefer."""
    carrier = records.carrier_of(uow, carrier_code)
    carrier.down = True
    q = select(Shipment).where(Shipment.carrier == carrier.code, Shipment.status.in_(
        (S.AWAITING_SCAN, S.LABEL_PENDING))).order_by(Shipment.id)
    if merchant_id is not None:
        q = q.where(Shipment.merchant_id == merchant_id)
    plans: dict[int, EmergencyPlan | None] = {}
    n = 0
    for s in list(uow.session.scalars(q)):
        if s.merchant_id not in plans:
            plans[s.merchant_id] = uow.session.get(EmergencyPlan, s.merchant_id)
        plan = plans[s.merchant_id]
        backup = uow.session.get(Carrier, plan.backup_carrier) if plan and plan.backup_carrier else None
        if backup is None or backup.down or backup.code == carrier.code:
            notify.notify_merchant(uow, s.merchant_id, "carrier_down", f"{carrier.name} is down",
                                   f"Shipment #{s.id} has no backup carrier in your emergency plan.",
                                   {"shipment_id": s.id}, severity="warning")
            continue
        if not uow.session.execute(update(Shipment).where(Shipment.id == s.id, Shipment.status.in_(
                (S.AWAITING_SCAN, S.LABEL_PENDING))).values(status=S.REROUTED, scan_checked=True)).rowcount:  # type: ignore[attr-defined]
            continue
        record = uow.session.get(ShippingOrder, s.order_id)
        assert record is not None
        new = records.add_shipment(uow, record, carrier=backup, tracking_number=None, units=s.units,
                                   warehouse_id=s.warehouse_id, policy=policy, replaces=s.id, reason="carrier_down")
        n += 1
        notify.notify_user(uow, s.buyer_id, "shipment_rerouted", f"Order #{s.order_id} moves to {backup.name}",
                           f"{carrier.name} is down. Choose: wait, a faster delivery at our cost, or a "
                           f"{yuan(policy.outage_coupon_cents)} coupon (POST /api/v1/shipments/{new.id}/choice).",
                           {"order_id": s.order_id, "shipment_id": new.id, "choices": [c.value for c in rules.BuyerChoice]})
        notify.notify_merchant(uow, s.merchant_id, "shipment_rerouted", f"Shipment #{s.id} re-routed to {backup.name}",
                               f"Label the new parcel #{new.id}.", {"shipment_id": new.id})
    return n


@retry_on_deadlock
def choose(uow: UnitOfWork, buyer: Principal, shipment_id: int, choice: str) -> dict[str, Any]:
    """The buyer of a re-routed parcel picks once: wait, an upgrade to express, or a coupon (the platform's)."""
    buyer.require(Role.BUYER)
    if choice not in rules.BuyerChoice.__members__.values():
        raise ValidationFailed(f"choice must be one of {', '.join(rules.BuyerChoice)}", code="invalid_choice")
    with uow:
        policy = current_policy(uow)
        s = uow.session.get(Shipment, shipment_id)
        if s is None or s.buyer_id != buyer.user_id:
            raise NotFound(f"shipment {shipment_id} not found")
        if s.reason != "carrier_down":
            raise Conflict("this parcel offers no choice", code="no_choice_offered")
        values: dict[str, Any] = {"buyer_choice": choice}
        if choice == rules.BuyerChoice.UPGRADE:
            values["service"] = "express"
        if not uow.session.execute(update(Shipment).where(Shipment.id == s.id, Shipment.buyer_choice.is_(None))
                                   .values(**values)).rowcount:  # type: ignore[attr-defined]
            raise Conflict(f"you chose {s.buyer_choice} already", code="already_chosen")
        coupon = None
        if choice == rules.BuyerChoice.COUPON:
            coupon = disputes.issue_compensation_coupon(uow, buyer_id=s.buyer_id, amount_cents=policy.outage_coupon_cents,
                                                        reason=f"carrier outage on order #{s.order_id}",
                                                        ref=f"shipment:{s.id}:outage")
        uow.session.refresh(s)
        uow.commit()
        return {**records.shipment_view(uow, s), "coupon": coupon}
