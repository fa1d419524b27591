"""The atomic capacity counters of the hot path.

They run inside the caller's unit of work and never commit; each is one conditional
UPDATE per bucket, taken in the fixed key order `rules.buckets_for_order` gives, so
`sold + reserved <= cap` holds under any concurrency (docs/adr/0002).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from sqlalchemy import ColumnElement, Connection, and_, bindparam, exists, literal, or_, select, update

from tuangou.catalog import rules
from tuangou.catalog.models import CapacityBucket, Deal, Store
from tuangou.core.db import InTransaction, UnitOfWork, insert_ignore, table, upsertable_insert
from tuangou.core.errors import CapExceeded, Conflict, NotFound, SoldOut

if TYPE_CHECKING:
    from tuangou.catalog.views import DealContext


# ---- the hot path: one snapshot query, one guarded UPDATE per bucket ----------------------------

_deals = table(Deal).c
_buckets = table(CapacityBucket)
_b = _buckets.c


def deal_columns() -> Any:
    """The deals table's columns, for order participants that add a correlated column to the snapshot."""
    return _deals


def snapshot_query(extra: dict[str, ColumnElement[Any]]) -> Any:
    """The snapshot statement, built once per set of participant columns and reused: a statement
    object that is reused keeps its SQL compiled and its cache key computed (docs/adr/0010)."""
    s = table(Store).c
    cols = [_deals.id, _deals.merchant_id, _deals.store_id, _deals.kind, _deals.status, _deals.price_cents,
            _deals.per_buyer_limit, _deals.daily_cap, _deals.total_cap, _deals.slots, s.timezone,
            _deals.valid_from, _deals.valid_until, _deals.title, _deals.category,
            _b.key, _b.cap, _b.sold, _b.reserved, _b.open]
    labelled = [c.label(f"x_{name}") for name, c in extra.items()]
    keys: Any = bindparam("keys", expanding=True)
    return (select(*cols, *labelled).select_from(table(Deal).join(table(Store), s.id == _deals.store_id)
                                                  .outerjoin(_buckets, (_b.deal_id == _deals.id) & _b.key.in_(keys)))
            .where(_deals.id == bindparam("deal_id")))


def snapshot(conn: Connection, query: Any, deal_id: int, keys: list[str], extra: list[str],
             params: dict[str, Any] | None = None) -> rules.DealSnapshot:
    """One query (made by snapshot_query): the deal's terms, its store's time zone, the buckets among
    `keys` that exist, and the participants' `extra` columns. Raises NotFound for an unknown deal."""
    rows = conn.execute(query, {"deal_id": deal_id, "keys": keys, **(params or {})}).all()
    if not rows:
        raise NotFound(f"deal {deal_id} not found")
    r = rows[0]
    buckets = {row.key: rules.BucketState(row.key, row.cap, row.sold, row.reserved, bool(row.open))
               for row in rows if row.key is not None}
    return rules.DealSnapshot(
        r.id, r.merchant_id, r.store_id, rules.DealKind(r.kind), rules.DealStatus(r.status), r.price_cents,
        r.per_buyer_limit, r.daily_cap, r.total_cap is not None, {k: int(v) for k, v in (r.slots or {}).items()},
        r.timezone, r.valid_from, r.valid_until, r.title, r.category, buckets,
        {name: r._mapping[f"x_{name}"] for name in extra})


_HOLD = (update(_buckets)
         .where(_b.deal_id == bindparam("d"), _b.key == bindparam("k"), _b.open,
                _b.sold + _b.reserved + bindparam("q") <= _b.cap)
         .values(reserved=_b.reserved + bindparam("q")).returning(_b.cap, _b.sold, _b.reserved))
_CONFIRM = (update(_buckets).where(_b.deal_id == bindparam("d"), _b.key == bindparam("k"))
            .values(reserved=_b.reserved - bindparam("q"), sold=_b.sold + bindparam("q")))


def hold(tx: InTransaction, snap: rules.DealSnapshot, keys: list[str], qty: int) -> list[rules.BucketState]:
    """Hold `qty` units in every bucket of `keys` (sorted), or raise and hold none.

    One conditional UPDATE … RETURNING per bucket. A date bucket that does not exist yet is
    made with the deal's default cap by an INSERT guarded on the deal being on sale (so a
    delisted deal never gets an open bucket), then the UPDATE runs once more.
    """
    conn = tx.conn
    after = []
    for key in keys:
        params = {"d": snap.id, "k": key, "q": qty}
        row = conn.execute(_HOLD, params).first()
        if row is None and key not in snap.buckets:
            default = snap.default_cap(key)
            if default is not None and _make_bucket(conn, snap.id, key, default):
                row = conn.execute(_HOLD, params).first()
        if row is None:
            _refuse_conn(conn, snap.id, key, qty)
        after.append(rules.BucketState(key, row.cap, row.sold, row.reserved, True))
    return after


def _make_bucket(conn: Connection, deal_id: int, key: str, cap: int) -> bool:
    on_sale = exists().where(_deals.id == deal_id, _deals.status == rules.DealStatus.PUBLISHED.value)
    source = select(literal(deal_id), literal(key), literal(cap), literal(0), literal(0), literal(True)).where(on_sale)
    stmt = (upsertable_insert(conn.dialect.name, _buckets)
            .from_select(["deal_id", "key", "cap", "sold", "reserved", "open"], source)
            .on_conflict_do_nothing(index_elements=["deal_id", "key"]).returning(_b.key))
    return conn.execute(stmt).first() is not None


def _refuse_conn(conn: Connection, deal_id: int, key: str, qty: int) -> NoReturn:
    row = conn.execute(select(_b.cap, _b.sold, _b.reserved, _b.open)
                       .where(_b.deal_id == deal_id, _b.key == key)).first()
    if row is None or not row.open:
        raise Conflict(f"deal {deal_id} is not on sale for {key}", code="not_on_sale")
    remaining = max(0, row.cap - row.sold - row.reserved)
    if remaining == 0:
        raise SoldOut(f"deal {deal_id} is sold out for {key}", remaining=0)
    raise CapExceeded(f"only {remaining} left for {key}, asked for {qty}", remaining=remaining)


def confirm_held(tx: InTransaction, deal_id: int, keys: list[str], qty: int) -> None:
    """A paid order's held units become sold (Core, one statement per bucket, in key order)."""
    conn = tx.conn
    for key in sorted(keys):
        conn.execute(_CONFIRM, {"d": deal_id, "k": key, "q": qty})


# ---- the back-office counters --------------------------------------------------------------------

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
            if default is not None and insert_ignore(session, table(CapacityBucket), {
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


def _move(uow: InTransaction, deal_id: int, keys: list[str], values: dict[str, Any]) -> None:
    for key in sorted(keys):
        uow.session.execute(update(CapacityBucket).where(CapacityBucket.deal_id == deal_id,
                                                         CapacityBucket.key == key).values(**values))


def release_reserved(uow: InTransaction, deal_id: int, keys: list[str], qty: int) -> None:
    _move(uow, deal_id, keys, {"reserved": CapacityBucket.reserved - qty})


_RELEASE = (update(_buckets).where(_b.deal_id == bindparam("d"), _b.key == bindparam("k"))
            .values(reserved=_b.reserved - bindparam("q")))


def release_reserved_many(tx: InTransaction, units: dict[tuple[int, str], int]) -> None:
    """Give back held units of many (deal, bucket) pairs in one executemany, in the fixed (deal, key) order."""
    if units:
        tx.conn.execute(_RELEASE, [{"d": d, "k": k, "q": q} for (d, k), q in sorted(units.items())])


def confirm_sold(uow: InTransaction, deal_id: int, keys: list[str], qty: int) -> None:
    _move(uow, deal_id, keys, {"reserved": CapacityBucket.reserved - qty, "sold": CapacityBucket.sold + qty})


def release_sold(uow: InTransaction, deal_id: int, keys: list[str], qty: int) -> None:
    _move(uow, deal_id, keys, {"sold": CapacityBucket.sold - qty})


def buckets_of(uow: InTransaction, deal_id: int) -> list[rules.BucketState]:
    """Inside an open unit of work: every bucket of a deal."""
    return [rules.BucketState(b.key, b.cap, b.sold, b.reserved, b.open) for b in uow.session.scalars(
        select(CapacityBucket).where(CapacityBucket.deal_id == deal_id).order_by(CapacityBucket.key)
        .execution_options(populate_existing=True))]


def buckets_from(uow: InTransaction, deal_ids: list[int], first_key: str, last_key: str | None = None
                 ) -> dict[int, list[rules.BucketState]]:
    """Inside an open unit of work: the buckets of several deals whose date key lies in [first_key, last_key]
    (ISO dates; `last_key` None: no end), plus their 'stock' and 'total' buckets, by deal."""
    out: dict[int, list[rules.BucketState]] = {d: [] for d in deal_ids}
    if not deal_ids:
        return out
    in_range = _b.key >= first_key if last_key is None else and_(_b.key >= first_key, _b.key <= last_key + "~")
    q = select(_b.deal_id, _b.key, _b.cap, _b.sold, _b.reserved, _b.open).where(
        _b.deal_id.in_(deal_ids), or_(in_range, _b.key.in_([rules.STOCK_BUCKET, rules.TOTAL_BUCKET])))
    for deal_id, key, cap, sold, reserved, is_open in uow.session.execute(q.order_by(_b.deal_id, _b.key)):
        out[deal_id].append(rules.BucketState(key, cap, sold, reserved, is_open))
    return out


# ---- moving a sold unit to another date, pausing one date (orders/ re-dating, governance/ breaker) ---

def move_sold(uow: InTransaction, deal_id: int, from_key: str, to_key: str, qty: int, default_cap: int) -> bool:
    """Inside an open unit of work: move `qty` sold units from one bucket to another if they fit there.

    The target is made if absent (with `default_cap`, open when the deal is on sale), then both rows are
    locked in key order, so two moves between the same dates in opposite directions cannot deadlock;
    the target takes the units with one conditional UPDATE (never past its cap; `open` is not checked:
    an agreed move is not a new sale) and only then does the source give them back. Returns False,
    changing no counter, when they do not fit.
    """
    deal = uow.session.get(Deal, deal_id)
    if deal is None:
        raise NotFound(f"deal {deal_id} not found")
    insert_ignore(uow.session, _buckets, {"deal_id": deal_id, "key": to_key, "cap": default_cap, "sold": 0,
                                          "reserved": 0, "open": deal.status == rules.DealStatus.PUBLISHED.value},
                  ["deal_id", "key"])
    uow.conn.execute(select(_b.id).where(_b.deal_id == deal_id, _b.key.in_(sorted({from_key, to_key})))
                     .order_by(_b.key).with_for_update())
    taken = uow.conn.execute(update(_buckets).where(_b.deal_id == deal_id, _b.key == to_key,
                                                    _b.sold + _b.reserved + qty <= _b.cap)
                             .values(sold=_b.sold + qty).returning(_b.key)).first()
    if taken is None:
        return False
    uow.conn.execute(update(_buckets).where(_b.deal_id == deal_id, _b.key == from_key).values(sold=_b.sold - qty))
    return True


def room_on(uow: InTransaction, deal_id: int, keys: list[str]) -> dict[str, int]:
    """Inside an open unit of work: units still free (cap - sold - held) on those of `keys` that exist."""
    return {r.key: max(0, r.cap - r.sold - r.reserved) for r in uow.conn.execute(
        select(_b.key, _b.cap, _b.sold, _b.reserved).where(_b.deal_id == deal_id, _b.key.in_(keys)))}


def pause_date(uow: InTransaction, deal_id: int, key: str, reason: str) -> bool:
    """Inside an open unit of work: stop sales of one bucket (a date, date@slot) with a reason the merchant
    sees; the deal's other dates stay on sale. True when this call paused it (a second call keeps the
    first reason and time)."""
    return bool(uow.conn.execute(update(_buckets).where(_b.deal_id == deal_id, _b.key == key,
                                                        _b.pause_reason.is_(None))
                                 .values(open=False, pause_reason=reason[:300], paused_at=uow.now)
                                 .returning(_b.key)).first())


def reopen_recovered(uow: InTransaction, deal_id: int, keys: list[str]) -> list[str]:
    """Inside an open unit of work: paused buckets among `keys` whose cap is back above what is sold and
    held reopen (while the deal is on sale); returns their keys."""
    on_sale = exists().where(_deals.id == deal_id, _deals.status == rules.DealStatus.PUBLISHED.value)
    return list(uow.conn.execute(update(_buckets).where(
        _b.deal_id == deal_id, _b.key.in_(keys), _b.pause_reason.is_not(None), _b.sold + _b.reserved < _b.cap, on_sale)
        .values(open=True, pause_reason=None, paused_at=None).returning(_b.key)).scalars())


def paused_dates(uow: InTransaction, deal_id: int) -> dict[str, dict[str, Any]]:
    """Inside an open unit of work: the deal's paused buckets, why and since when."""
    return {r.key: {"reason": r.pause_reason, "since": r.paused_at.isoformat() if r.paused_at else None,
                    "resumes": "when the cap is back above what is sold"}
            for r in uow.conn.execute(select(_b.key, _b.pause_reason, _b.paused_at).where(
                _b.deal_id == deal_id, _b.pause_reason.is_not(None)))}
