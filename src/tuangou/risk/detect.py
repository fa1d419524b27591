"""After-the-fact rules, run by the worker (idempotent ticks): buyers whose disputes per order are far
above the platform's norm, and compensation coupons funnelled to many accounts behind one device,
address or payment account. Each finding opens one case (insert-if-absent on its ref)."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from tuangou.core.auth import Principal, Role
from tuangou.core.db import UnitOfWork, insert_ignore
from tuangou.core.outbox import record_event
from tuangou.disputes import reads as disputes
from tuangou.orders import risk_reads as orders
from tuangou.risk import rules
from tuangou.risk.models import RiskCase
from tuangou.risk.service import current_policy


def _open(uow: UnitOfWork, ref: str, kind: rules.CaseKind, buyer_id: int | None, words: str, rule: str) -> bool:
    opened = bool(insert_ignore(uow.session, RiskCase.__table__, {
        "ref": ref, "kind": kind.value, "status": rules.CaseStatus.OPEN.value, "order_id": None, "buyer_id": buyer_id,
        "merchant_id": None, "hits": [{"rule": rule, "words": words, "action": rules.Action.HOLD.value}],
        "outcome": None, "decided_by": None, "decision_note": "", "effects": {}, "opened_at": uow.now,
        "decided_at": None}, ["ref"]))
    if opened:
        record_event(uow.session, "RiskCaseOpened", {"ref": ref, "kind": kind.value, "words": words}, uow.now)
    return opened


def scan(uow: UnitOfWork) -> dict[str, Any]:
    """Open cases for what the after-the-fact rules see now; a finding already open is not opened twice."""
    with uow:
        policy = current_policy(uow)
        since = uow.now - timedelta(days=policy.abuse_lookback_days)
        paid = orders.paid_by_buyer(uow, since)
        opened = disputes.disputes_by_buyer(uow, since)
        coupons = disputes.compensation_coupons(uow, since)
        cents: dict[int, int] = defaultdict(int)
        for _, buyer_id, amount in coupons:
            cents[buyer_id] += amount
        records = [rules.BuyerRecord(b, paid.get(b, 0), opened.get(b, 0), cents.get(b, 0))
                   for b in sorted(set(paid) | set(opened))]
        abuse = [b for b, words in rules.abusers(records, policy)
                 if _open(uow, f"abuse:buyer:{b}", rules.CaseKind.COMPENSATION_ABUSE, b, words, "compensation_abuse")]
        funnels = []
        by_buyer: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for coupon_id, buyer_id, amount in coupons:
            by_buyer[buyer_id].append((coupon_id, amount))
        behind: dict[tuple[str, str], set[int]] = defaultdict(set)
        for buyer_id, scope, value in orders.signals_of_buyers(uow, set(by_buyer)):
            behind[(scope, value)].add(buyer_id)
        for (scope, value), accounts in sorted(behind.items()):
            if len(accounts) < policy.funnel_accounts:
                continue
            given = [c for a in accounts for c in by_buyer[a]]
            words = rules.funnel_words(scope, len(accounts), len(given), sum(v for _, v in given))
            if _open(uow, f"funnel:{scope}:{value}", rules.CaseKind.COUPON_FUNNEL, None, words,
                     f"coupon_funnel.{scope}"):
                funnels.append(f"{scope}:{value[:10]}")
        uow.commit()
    return {"abuse_cases": abuse, "funnel_cases": funnels}


def scan_now(uow: UnitOfWork, actor: Principal) -> dict[str, Any]:
    """Ops run the after-the-fact rules at once instead of waiting for the worker."""
    actor.require(Role.OPS)
    return scan(uow)
