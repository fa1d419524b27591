"""Events written in the same transaction as the data they describe.

The worker relays them to webhooks after commit; nothing is sent before commit
and nothing committed is lost, because the row is the message.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Connection, Index, Integer, String, insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from tuangou.core.db import Base, UTCDateTime, table


class OutboxEvent(Base):
    __tablename__ = "outbox_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    merchant_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    relayed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (Index("ix_outbox_unrelayed", "relayed_at", "id"),)


def record_event(session: Session, type_: str, payload: dict[str, Any], now: datetime, *,
                 merchant_id: int | None = None) -> str:
    """Add event `type_` (past tense, e.g. `OrderPaid`) to the current transaction."""
    event_id = str(uuid.uuid4())
    session.add(OutboxEvent(event_id=event_id, type=type_, payload=payload, occurred_at=now,
                            merchant_id=merchant_id))
    return event_id


def event_row(type_: str, payload: dict[str, Any], now: datetime, *, merchant_id: int | None = None
              ) -> dict[str, Any]:
    """The outbox row of an event, for a Core INSERT on the hot path (no ORM flush)."""
    return {"event_id": str(uuid.uuid4()), "type": type_, "payload": payload, "occurred_at": now,
            "merchant_id": merchant_id, "relayed_at": None}


_EVENTS_MANY = insert(table(OutboxEvent)).returning(table(OutboxEvent).c.id)


def insert_events(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Events made by event_row() written as multi-row INSERTs (RETURNING makes SQLAlchemy batch the rows into
    multi-row statements, compiled once), for jobs that record a batch of events at once."""
    if rows:
        conn.execute(_EVENTS_MANY, rows)
