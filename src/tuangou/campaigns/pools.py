"""Shared stock pools (B4): several campaigns draw from one pool, atomically, with water-level warnings."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from tuangou.accounts import service as accounts
from tuangou.campaigns import rules
from tuangou.campaigns.models import StockPool
from tuangou.core.auth import Principal, Role
from tuangou.core.db import InTransaction, UnitOfWork
from tuangou.core.errors import NotFound, SoldOut, ValidationFailed
from tuangou.core.outbox import record_event
from tuangou.notify import service as notify


def _view(p: StockPool, policy: rules.CampaignPolicy) -> dict[str, Any]:
    return {"id": p.id, "merchant_id": p.merchant_id, "name": p.name, "capacity": p.capacity, "used": p.used,
            "remaining": p.capacity - p.used, "safe_stock": p.safe_stock,
            "level": rules.pool_level(p.capacity, p.used, p.safe_stock, policy.pool_warn_percents)}


def create_pool(uow: UnitOfWork, actor: Principal, policy_of: Any, name: str, capacity: int, safe_stock: int,
                merchant_id: int | None = None) -> dict[str, Any]:
    with uow:
        owner = merchant_id if actor.role == Role.OPS else actor.merchant_id
        if owner is None:
            raise ValidationFailed("merchant_id is required when ops create a pool")
        actor.require_merchant(owner)
        accounts.merchant_status(uow, owner)  # NotFound for an unknown merchant
        if capacity < 0 or not 0 <= safe_stock <= capacity:
            raise ValidationFailed("capacity must be >= 0 and safe_stock between 0 and capacity")
        pool = StockPool(merchant_id=owner, name=name.strip(), capacity=capacity, used=0, safe_stock=safe_stock,
                         warned_level=0, created_at=uow.now)
        uow.session.add(pool)
        uow.session.flush()
        record_event(uow.session, "StockPoolCreated", {"pool_id": pool.id, "capacity": capacity}, uow.now,
                     merchant_id=owner)
        uow.commit()
        return _view(pool, policy_of(uow))


def get_pool(uow: UnitOfWork, actor: Principal, policy_of: Any, pool_id: int) -> dict[str, Any]:
    with uow:
        return _view(own_pool(uow, actor, pool_id), policy_of(uow))


def list_pools(uow: UnitOfWork, actor: Principal, policy_of: Any) -> list[dict[str, Any]]:
    with uow:
        q = select(StockPool).order_by(StockPool.id)
        if actor.role != Role.OPS:
            q = q.where(StockPool.merchant_id == actor.merchant_id)
        policy = policy_of(uow)
        return [_view(p, policy) for p in uow.session.scalars(q)]


def own_pool(uow: UnitOfWork, actor: Principal, pool_id: int) -> StockPool:
    pool = uow.session.get(StockPool, pool_id)
    if pool is None:
        raise NotFound(f"stock pool {pool_id} not found")
    actor.require_merchant(pool.merchant_id)
    return pool


def draw(uow: InTransaction, pool_id: int, qty: int, policy: rules.CampaignPolicy) -> None:
    """Inside an open unit of work: take `qty` from the pool in one conditional UPDATE, or raise sold_out."""
    row = uow.session.execute(update(StockPool).where(StockPool.id == pool_id,
                                                      StockPool.used + qty <= StockPool.capacity)
                              .values(used=StockPool.used + qty)
                              .returning(StockPool.capacity, StockPool.used, StockPool.safe_stock,
                                         StockPool.merchant_id)).first()
    if row is None:
        raise SoldOut(f"the shared stock pool {pool_id} has run out", remaining=0)
    level = rules.pool_level(row.capacity, row.used, row.safe_stock, policy.pool_warn_percents)
    if level == 0:
        return
    # only the transaction that raises the level warns, however many draws cross it at once
    raised = uow.session.execute(update(StockPool).where(StockPool.id == pool_id, StockPool.warned_level < level)
                                 .values(warned_level=level)).rowcount  # type: ignore[attr-defined]
    if raised:
        left = row.capacity - row.used
        below_safe = level > len(policy.pool_warn_percents)
        title = (f"Stock pool #{pool_id} at safe stock: {left} left" if below_safe
                 else f"Stock pool #{pool_id} water level: {left} of {row.capacity} left")
        notify.notify_merchant(uow, row.merchant_id, "pool_low", title, "Restock or stop selling soon.",
                               {"pool_id": pool_id, "remaining": left, "level": level},
                               severity="critical" if below_safe else "warning")
        record_event(uow.session, "StockPoolLow", {"pool_id": pool_id, "remaining": left, "level": level},
                     uow.now, merchant_id=row.merchant_id)


def give_back(uow: InTransaction, pool_id: int, qty: int, policy: rules.CampaignPolicy) -> None:
    """Inside an open unit of work: units return (a lapsed or refunded join); warnings may fire again."""
    row = uow.session.execute(update(StockPool).where(StockPool.id == pool_id)
                              .values(used=StockPool.used - qty)
                              .returning(StockPool.capacity, StockPool.used, StockPool.safe_stock)).first()
    if row is not None:
        level = rules.pool_level(row.capacity, row.used, row.safe_stock, policy.pool_warn_percents)
        uow.session.execute(update(StockPool).where(StockPool.id == pool_id, StockPool.warned_level > level)
                            .values(warned_level=level))
