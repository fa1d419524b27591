"""Capacity governance while selling. STUB interface until that work lands."""

from __future__ import annotations

from typing import Any

from tuangou.core.db import UnitOfWork


def oversale_incident_for_order(uow: UnitOfWork, order_id: int) -> dict[str, Any] | None:
    """Inside an open unit of work: the over-sale incident that hit this order, if any."""
    return None
