"""Correlated columns of a deal for other capabilities' snapshot queries (an order participant's
`order_columns`): the deal's facts ride in a query already being made, costing no statement."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select

from tuangou.catalog import rules
from tuangou.catalog.models import Deal
from tuangou.core.db import table


def goods_category(deal_id: Any) -> ColumnElement[Any]:
    """The deal's category when it is a goods deal (shipped), else NULL."""
    d = table(Deal).c
    return select(d.category).where(d.id == deal_id, d.kind == rules.DealKind.GOODS.value).scalar_subquery()
