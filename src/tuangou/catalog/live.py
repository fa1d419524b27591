"""What is on sale, for scheduled jobs that visit every live deal or merchant in bounded batches: each read
skips the subjects a job already handled (`exclude`, a subquery the job builds over its own table), so a tick
reads only its batch, however large the catalogue. Runs inside the caller's unit of work."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tuangou.catalog import rules
from tuangou.catalog.models import Deal, Store
from tuangou.core.db import InTransaction, table

_d = table(Deal).c
_s = table(Store).c


def live_timezones(tx: InTransaction) -> list[str]:
    """The time zones of the stores (a job's local hour is decided per zone)."""
    return sorted(str(tz) for tz in tx.session.scalars(select(_s.timezone).distinct()))


def live_deal_ids(tx: InTransaction, timezone: str, exclude: Any, limit: int) -> list[int]:
    """Up to `limit` published deals of stores in `timezone`, in id order, whose id is not in `exclude`."""
    q = (select(_d.id).join(table(Store), _s.id == _d.store_id)
         .where(_d.status == rules.DealStatus.PUBLISHED.value, _s.timezone == timezone, _d.id.not_in(exclude))
         .order_by(_d.id).limit(limit))
    return [int(d) for d in tx.session.scalars(q)]


def live_merchant_ids(tx: InTransaction, exclude: Any, limit: int) -> list[int]:
    """Up to `limit` merchants with a published deal, in id order, whose id is not in `exclude`."""
    q = (select(_d.merchant_id).distinct().where(_d.status == rules.DealStatus.PUBLISHED.value,
                                                _d.merchant_id.not_in(exclude))
         .order_by(_d.merchant_id).limit(limit))
    return [int(m) for m in tx.session.scalars(q)]


def live_deals_of(tx: InTransaction, merchant_ids: list[int]) -> dict[int, list[int]]:
    """The published deals of `merchant_ids`, in id order, by merchant."""
    out: dict[int, list[int]] = {m: [] for m in merchant_ids}
    if merchant_ids:
        for deal_id, merchant_id in tx.session.execute(
                select(_d.id, _d.merchant_id).where(_d.status == rules.DealStatus.PUBLISHED.value,
                                                    _d.merchant_id.in_(merchant_ids)).order_by(_d.id)):
            out[int(merchant_id)].append(int(deal_id))
    return out
