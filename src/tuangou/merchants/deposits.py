"""Merchant deposits (C7): funded through the payment gateway, a minimum per category to publish, and what
deductions took from them.

The deposit is the ledger account `deposit:merchant:{id}` (positive: money the platform holds for the
merchant). A top-up is charged through the gateway with a key of its own and booked once, when the
gateway says yes. A deduction takes what the deposit holds and books the rest against the merchant's
settlement account (`merchant:{id}`, negative = the merchant owes), so the deposit never goes below
zero and nothing of the penalty is lost (docs/adr/0017).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from tuangou.accounts import service as accounts
from tuangou.catalog import service as catalog
from tuangou.core import ledger
from tuangou.core.auth import Principal, Role
from tuangou.core.db import InTransaction, UnitOfWork, insert_ignore
from tuangou.core.errors import Conflict, IdempotencyConflict, ValidationFailed
from tuangou.core.outbox import record_event
from tuangou.merchants import rules
from tuangou.merchants.models import DepositTopUp
from tuangou.merchants.service import deposit_account, load_policy
from tuangou.notify import service as notify
from tuangou.orders.gateway import GatewayResult, GatewayTimeout, PaymentGateway

EXTERNAL_MERCHANTS = "external:merchants"  # money that came from merchants through the gateway
MAX_TOP_UP_CENTS = 10**9


def _view(t: DepositTopUp, replayed: bool = False) -> dict[str, Any]:
    return {"id": t.id, "merchant_id": t.merchant_id, "amount_cents": t.amount_cents, "status": t.status,
            "reference": t.reference, "created_at": t.created_at.isoformat(),
            "settled_at": t.settled_at.isoformat() if t.settled_at else None, "replayed": replayed}


def top_up(uow: UnitOfWork, actor: Principal, merchant_id: int, amount_cents: int, key: str,
           gateway: PaymentGateway, outcome: str | None = None) -> dict[str, Any]:
    """Pay into the deposit. One top-up per (merchant, key): a retry answers with it and is charged at most
    once (the gateway key is the top-up's id); no database lock is held while the gateway thinks. The merchant
    pays its own deposit (ops deduct from it, they do not fund it)."""
    actor.require(Role.MERCHANT)
    actor.require_merchant(merchant_id)
    if not key.strip():
        raise ValidationFailed("send an Idempotency-Key header", code="idempotency_key_required")
    if not 0 < amount_cents <= MAX_TOP_UP_CENTS:
        raise ValidationFailed(f"amount_cents must be from 1 to {MAX_TOP_UP_CENTS}")
    with uow:
        accounts.merchant_status(uow, merchant_id)
        fresh = insert_ignore(uow.session, DepositTopUp.__table__, {
            "merchant_id": merchant_id, "idempotency_key": key, "amount_cents": amount_cents,
            "status": rules.TopUpStatus.PENDING, "reference": "", "created_at": uow.now},
            ["merchant_id", "idempotency_key"])
        row = uow.session.scalars(select(DepositTopUp).where(DepositTopUp.merchant_id == merchant_id,
                                                             DepositTopUp.idempotency_key == key)).one()
        if row.amount_cents != amount_cents:
            raise IdempotencyConflict("this Idempotency-Key was used for a different top-up")
        uow.commit()
        if row.status != rules.TopUpStatus.PENDING:
            return _view(row, replayed=True)
        top_up_id = row.id
    try:
        result: GatewayResult | None = gateway.charge(f"deposit-top-up:{top_up_id}", amount_cents, outcome)
    except GatewayTimeout:
        result = None
    with uow:
        if result is not None:
            _settle(uow, top_up_id, merchant_id, amount_cents, result)
        uow.commit()
        settled = uow.session.get(DepositTopUp, top_up_id, populate_existing=True)
        assert settled is not None
        return _view(settled, replayed=not fresh)


def _settle(uow: InTransaction, top_up_id: int, merchant_id: int, amount_cents: int, result: GatewayResult) -> None:
    """Book the gateway's answer once: the guarded UPDATE lets one of two racing retries through."""
    status = rules.TopUpStatus.SUCCEEDED if result.ok else rules.TopUpStatus.FAILED
    moved = uow.session.execute(update(DepositTopUp).where(
        DepositTopUp.id == top_up_id, DepositTopUp.status == rules.TopUpStatus.PENDING).values(
        status=status, reference=result.reference[:128], settled_at=uow.now)).rowcount  # type: ignore[attr-defined]
    if not moved or not result.ok:
        return
    ledger.post(uow.session, "deposit_top_up", [(EXTERNAL_MERCHANTS, -amount_cents),
                                                (deposit_account(merchant_id), amount_cents)],
                uow.now, ref=f"deposit_top_up:{top_up_id}")
    record_event(uow.session, "DepositToppedUp", {"merchant_id": merchant_id, "top_up_id": top_up_id,
                 "amount_cents": amount_cents}, uow.now, merchant_id=merchant_id)
    notify.notify_merchant(uow, merchant_id, "deposit_topped_up", "Deposit topped up",
                           f"{amount_cents / 100:.2f} yuan were added to your deposit.", {"top_up_id": top_up_id})


def deposit(uow: UnitOfWork, actor: Principal, merchant_id: int) -> dict[str, Any]:
    """The deposit held, what is owed from settlements, the minimums in force and every movement."""
    actor.require_merchant(merchant_id)
    with uow:
        accounts.merchant_status(uow, merchant_id)
        policy = load_policy(uow)
        account = deposit_account(merchant_id)
        balances = ledger.balances_of(uow.session, [account, ledger.merchant_account(merchant_id)])
        entries = [{"kind": line.kind, "amount_cents": line.amount_cents, "ref": line.ref, "at": line.at.isoformat()}
                   for line in uow.session.scalars(select(ledger.LedgerLine).where(ledger.LedgerLine.account == account)
                                                   .order_by(ledger.LedgerLine.id))]
        return {"merchant_id": merchant_id, "balance_cents": balances[account],
                "owed_cents": owed_cents(uow, merchant_id),
                "settlement_balance_cents": balances[ledger.merchant_account(merchant_id)],
                "min_deposit_cents": dict(policy.min_deposit_cents),
                "min_deposit_cents_other": policy.min_deposit_cents_other, "entries": entries}


def owed_cents(uow: InTransaction, merchant_id: int) -> int:
    """Penalty money a deposit could not cover and that still stands (booked against settlements)."""
    from_settlement = ledger.merchant_account(merchant_id)
    lines = uow.session.scalars(select(ledger.LedgerLine.amount_cents).where(
        ledger.LedgerLine.account == from_settlement,
        ledger.LedgerLine.kind.in_(["penalty_deposit_deduction", "penalty_deposit_deduction_returned"])))
    return -sum(lines)


def check_deposit(tx: InTransaction, deal_id: int, merchant_id: int) -> None:
    """Inside an open unit of work: refuse publishing while the deposit is below the deal category's
    minimum. Costs no query while no minimum is set (the default)."""
    policy = load_policy(tx)
    if not policy.min_deposit_cents and not policy.min_deposit_cents_other:
        return
    needed = rules.min_deposit(catalog.deal_category(tx, deal_id), policy)
    held = ledger.balance(tx.session, deposit_account(merchant_id))
    if held < needed:
        raise Conflict(f"a deposit of {needed / 100:.2f} yuan is needed to publish in this category; "
                       f"{held / 100:.2f} yuan are held", code="deposit_below_minimum", required_cents=needed,
                       balance_cents=held, shortfall_cents=needed - held)
