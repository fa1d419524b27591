"""Stores: opening one, listing and reading them, and the store facts other capabilities ask for.

Also the ownership and merchant-standing checks that deal commands share (a deal belongs to a store).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tuangou.accounts import service as accounts
from tuangou.catalog import rules
from tuangou.catalog.models import Store
from tuangou.catalog.views import StoreView, store_view
from tuangou.core.auth import Principal, Role
from tuangou.core.db import UnitOfWork
from tuangou.core.errors import Forbidden, NotFound, ValidationFailed
from tuangou.core.outbox import record_event


def own_store(uow: UnitOfWork, actor: Principal, store_id: int) -> Store:
    store = uow.session.get(Store, store_id)
    if store is None:
        raise NotFound(f"store {store_id} not found")
    actor.require_merchant(store.merchant_id)
    return store


def require_active_merchant(uow: UnitOfWork, merchant_id: int) -> None:
    if accounts.merchant_status(uow, merchant_id) != "active":
        raise Forbidden("this merchant is not active", code="merchant_inactive")


def create_store(uow: UnitOfWork, actor: Principal, name: str, category: str, timezone: str,
                 address: str = "", merchant_id: int | None = None) -> StoreView:
    with uow:
        owner = merchant_id if actor.role == Role.OPS else actor.merchant_id
        if owner is None:
            raise ValidationFailed("merchant_id is required when ops create a store")
        actor.require_merchant(owner)
        if category not in rules.Category.__members__.values():
            raise ValidationFailed(f"unknown category {category!r}")
        if not rules.valid_timezone(timezone):
            raise ValidationFailed(f"unknown time zone {timezone!r}")
        require_active_merchant(uow, owner)
        store = Store(merchant_id=owner, name=name.strip(), category=category, timezone=timezone,
                      address=address, created_at=uow.now)
        uow.session.add(store)
        uow.session.flush()
        record_event(uow.session, "StoreCreated", {"store_id": store.id}, uow.now, merchant_id=owner)
        uow.commit()
        return store_view(store)


def list_stores(uow: UnitOfWork, actor: Principal | None, merchant_id: int | None = None) -> list[StoreView]:
    with uow:
        q = select(Store).order_by(Store.id)
        if actor is not None and actor.role == Role.MERCHANT:
            q = q.where(Store.merchant_id == actor.merchant_id)
        elif merchant_id is not None:
            q = q.where(Store.merchant_id == merchant_id)
        return [store_view(s) for s in uow.session.scalars(q)]


def get_store(uow: UnitOfWork, store_id: int) -> StoreView:
    with uow:
        store = uow.session.get(Store, store_id)
        if store is None:
            raise NotFound(f"store {store_id} not found")
        return store_view(store)


def store_facts(uow: UnitOfWork, store_id: int, actor: Principal | None = None) -> dict[str, Any]:
    """Inside an open unit of work: a store's facts; with `actor`, only if ops or its merchant."""
    store = own_store(uow, actor, store_id) if actor is not None else uow.session.get(Store, store_id)
    if store is None:
        raise NotFound(f"store {store_id} not found")
    return {"id": store.id, "merchant_id": store.merchant_id, "name": store.name, "category": store.category,
            "timezone": store.timezone}


def store_category(uow: UnitOfWork, store_id: int) -> str:
    """Inside an open unit of work: a store's category (violation points are per category)."""
    store = uow.session.get(Store, store_id)
    if store is None:
        raise NotFound(f"store {store_id} not found")
    return store.category
