"""The atomic capacity counters of the hot path.

They run inside the caller's unit of work and never commit; each is one conditional
UPDATE per bucket, taken in the fixed key order `rules.buckets_for_order` gives, so
`sold + reserved <= cap` holds under any concurrency (docs/adr/0002).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from sqlalchemy import select, update

from tuangou.catalog import rules
from tuangou.catalog.models import CapacityBucket
from tuangou.core.db import UnitOfWork, insert_ignore
from tuangou.core.errors import CapExceeded, Conflict, SoldOut

if TYPE_CHECKING:
    from tuangou.catalog.service import DealContext


# ---- the hot path counters ------------------------------------------------------------------------

def _default_cap(ctx: DealContext, key: str) -> int | None:
    if key in (rules.STOCK_BUCKET, rules.TOTAL_BUCKET):
        return None
    _, _, slot = key.partition("@")
    return ctx.slots.get(slot) if slot else ctx.daily_cap


def reserve(uow: UnitOfWork, ctx: DealContext, keys: list[str], qty: int) -> list[rules.BucketState]:
    """Hold `qty` units in every bucket of `keys` (sorted), or raise and hold none.

    Each bucket moves with one conditional UPDATE … RETURNING; a date bucket that
    does not exist yet is created with the deal's default cap first
    (insert-if-absent, atomic). Returns the buckets' counters after the hold.
    """
    session = uow.session
    after = []
    for key in keys:
        stmt = (update(CapacityBucket)
                .where(CapacityBucket.deal_id == ctx.id, CapacityBucket.key == key, CapacityBucket.open,
                       CapacityBucket.sold + CapacityBucket.reserved + qty <= CapacityBucket.cap)
                .values(reserved=CapacityBucket.reserved + qty)
                .returning(CapacityBucket.cap, CapacityBucket.sold, CapacityBucket.reserved))
        row = session.execute(stmt).first()
        if row is None:
            default = _default_cap(ctx, key)
            if default is not None and insert_ignore(session, CapacityBucket.__table__, {
                    "deal_id": ctx.id, "key": key, "cap": default, "sold": 0, "reserved": 0, "open": True},
                    ["deal_id", "key"]):
                row = session.execute(stmt).first()
        if row is None:
            _refuse(uow, ctx, key, qty)
        after.append(rules.BucketState(key, row.cap, row.sold, row.reserved, True))
    return after


# ---- benchmark baseline only (bench flash-sale --reserve for_update) -----------------------------

def reserve_for_update(uow: UnitOfWork, ctx: DealContext, keys: list[str], qty: int) -> list[rules.BucketState]:
    """The locking baseline the flash-sale benchmark compares `reserve` with (Saleor's way):
    SELECT … FOR UPDATE each bucket in key order, check in Python, then UPDATE. Correct (the
    row stays locked until commit) but one more round trip under the lock. Never on the real path."""
    after = []
    for key in keys:
        bucket = uow.session.scalar(select(CapacityBucket).where(
            CapacityBucket.deal_id == ctx.id, CapacityBucket.key == key).with_for_update())
        if bucket is None or not bucket.open or bucket.sold + bucket.reserved + qty > bucket.cap:
            _refuse(uow, ctx, key, qty)
        bucket.reserved += qty
        uow.session.flush()
        after.append(rules.BucketState(key, bucket.cap, bucket.sold, bucket.reserved, True))
    return after


def _refuse(uow: UnitOfWork, ctx: DealContext, key: str, qty: int) -> NoReturn:
    bucket = uow.session.scalar(select(CapacityBucket).where(CapacityBucket.deal_id == ctx.id,
                                                             CapacityBucket.key == key))
    if bucket is None:
        raise Conflict(f"deal {ctx.id} is not on sale for {key}", code="not_on_sale")
    if not bucket.open:
        raise Conflict(f"deal {ctx.id} is not on sale for {key}", code="not_on_sale")
    remaining = max(0, bucket.cap - bucket.sold - bucket.reserved)
    if remaining == 0:
        raise SoldOut(f"deal {ctx.id} is sold out for {key}", remaining=0)
    raise CapExceeded(f"only {remaining} left for {key}, asked for {qty}", remaining=remaining)


def _move(uow: UnitOfWork, deal_id: int, keys: list[str], values: dict[str, Any]) -> None:
    for key in sorted(keys):
        uow.session.execute(update(CapacityBucket).where(CapacityBucket.deal_id == deal_id,
                                                         CapacityBucket.key == key).values(**values))


def release_reserved(uow: UnitOfWork, deal_id: int, keys: list[str], qty: int) -> None:
    _move(uow, deal_id, keys, {"reserved": CapacityBucket.reserved - qty})


def confirm_sold(uow: UnitOfWork, deal_id: int, keys: list[str], qty: int) -> None:
    _move(uow, deal_id, keys, {"reserved": CapacityBucket.reserved - qty, "sold": CapacityBucket.sold + qty})


def release_sold(uow: UnitOfWork, deal_id: int, keys: list[str], qty: int) -> None:
    _move(uow, deal_id, keys, {"sold": CapacityBucket.sold - qty})


def buckets_of(uow: UnitOfWork, deal_id: int) -> list[rules.BucketState]:
    """Inside an open unit of work: every bucket of a deal."""
    return [rules.BucketState(b.key, b.cap, b.sold, b.reserved, b.open) for b in uow.session.scalars(
        select(CapacityBucket).where(CapacityBucket.deal_id == deal_id).order_by(CapacityBucket.key)
        .execution_options(populate_existing=True))]


def take_sold(uow: UnitOfWork, deal_id: int, key: str, qty: int, default_cap: int) -> bool:
    """Inside an open unit of work: add `qty` sold units to a bucket if they fit under its cap.

    Used to move a paid order to another date even while the deal is delisted, so
    the `open` flag is not checked; a missing bucket is created with `default_cap`.
    """
    insert_ignore(uow.session, CapacityBucket.__table__, {
        "deal_id": deal_id, "key": key, "cap": default_cap, "sold": 0, "reserved": 0, "open": False},
        ["deal_id", "key"])
    moved = uow.session.execute(update(CapacityBucket).where(
        CapacityBucket.deal_id == deal_id, CapacityBucket.key == key,
        CapacityBucket.sold + CapacityBucket.reserved + qty <= CapacityBucket.cap)
        .values(sold=CapacityBucket.sold + qty)).rowcount  # type: ignore[attr-defined]
    return bool(moved)
