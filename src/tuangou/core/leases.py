"""Database leases so that, with several workers, each scheduled tick runs once at a time."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import String, insert, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from tuangou.core.db import Base, UTCDateTime


class Lease(Base):
    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


def try_acquire(session: Session, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    """One conditional statement: take the lease if free, expired or already ours."""
    result = session.execute(update(Lease).where(Lease.name == name, or_(
        Lease.expires_at < now, Lease.holder == holder)).values(holder=holder, expires_at=now + ttl))
    if result.rowcount:  # type: ignore[attr-defined]
        return True
    try:
        with session.begin_nested():
            session.execute(insert(Lease).values(name=name, holder=holder, expires_at=now + ttl))
        return True
    except IntegrityError:
        return False
