"""One double-entry ledger for every yuan that moves.

Each posting is a set of lines that sum to zero. Account names:
- `external:buyers`        money that came from / went back to buyers via the gateway
- `platform:escrow`        buyers' payments held until redemption or refund
- `platform:revenue`       the platform's commission
- `platform:compensation`  money the platform paid first to buyers (and recovered)
- `merchant:{id}`          what the platform owes a merchant (settlement); negative = merchant owes
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Connection, Index, Integer, String, func, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from tuangou.core.db import Base, UTCDateTime, table

EXTERNAL_BUYERS = "external:buyers"
ESCROW = "platform:escrow"
REVENUE = "platform:revenue"
COMPENSATION = "platform:compensation"


def merchant_account(merchant_id: int) -> str:
    return f"merchant:{merchant_id}"


class LedgerLine(Base):
    __tablename__ = "ledger_lines"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    txn_id: Mapped[str] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    account: Mapped[str] = mapped_column(String(64))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    ref: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_ledger_account", "account"), Index("ix_ledger_ref", "ref"))


class UnbalancedPosting(ValueError):
    pass


def post(session: Session, kind: str, lines: list[tuple[str, int]], now: datetime, *, ref: str = "") -> str:
    """Record one balanced posting; `ref` ties it to an order, dispute or claim."""
    if sum(amount for _, amount in lines) != 0:
        raise UnbalancedPosting(f"{kind}: lines sum to {sum(a for _, a in lines)}")
    txn = str(uuid.uuid4())
    for account, amount in lines:
        if amount:
            session.add(LedgerLine(txn_id=txn, kind=kind, account=account, amount_cents=amount,
                                   ref=ref, at=now))
    return txn


_INSERT: list[Any] = []


def _insert_lines() -> Any:
    if not _INSERT:
        _INSERT.append(insert(table(LedgerLine)))
    return _INSERT[0]


def post_rows(conn: Connection, kind: str, lines: list[tuple[str, int]], now: datetime, *, ref: str = "") -> str:
    """The same posting as post(), as one Core INSERT (the hot path: no ORM flush)."""
    if sum(amount for _, amount in lines) != 0:
        raise UnbalancedPosting(f"{kind}: lines sum to {sum(a for _, a in lines)}")
    txn = str(uuid.uuid4())
    conn.execute(_insert_lines(), [{"txn_id": txn, "kind": kind, "account": account,
                                                 "amount_cents": amount, "ref": ref, "at": now}
                                                for account, amount in lines if amount])
    return txn


def balance(session: Session, account: str) -> int:
    value = session.scalar(select(func.coalesce(func.sum(LedgerLine.amount_cents), 0))
                           .where(LedgerLine.account == account))
    return int(value or 0)


def balances_of(session: Session, accounts: list[str]) -> dict[str, int]:
    """Balances of some accounts in one grouped query (an account without lines is 0)."""
    rows = session.execute(select(LedgerLine.account, func.sum(LedgerLine.amount_cents))
                           .where(LedgerLine.account.in_(accounts)).group_by(LedgerLine.account)).all()
    return {a: 0 for a in accounts} | {str(a): int(v or 0) for a, v in rows}


def balances(session: Session) -> dict[str, int]:
    rows = session.execute(select(LedgerLine.account, func.sum(LedgerLine.amount_cents))
                           .group_by(LedgerLine.account)).all()
    return {account: int(total) for account, total in rows}


def total(session: Session) -> int:
    """Sum over every line ever written; zero whenever the ledger is consistent."""
    return int(session.scalar(select(func.coalesce(func.sum(LedgerLine.amount_cents), 0))) or 0)
