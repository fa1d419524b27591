"""Reads behind a review and the deal page: the evidence graph of a case (which accounts, devices,
addresses and payment accounts are linked to it), the ring a confirmed case acts on, and a store's
reputation as buyers see it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from tuangou.catalog import service as catalog
from tuangou.core.db import InTransaction
from tuangou.disputes import reads as dispute_reads
from tuangou.disputes import rules as dispute_rules
from tuangou.merchants import service as merchants
from tuangou.orders import risk_reads as orders
from tuangou.risk import rules
from tuangou.risk.models import MerchantLink, RiskCase

KINDS = ("device", "address", "payment")
REPUTATION_DAYS = 90
LATE_KINDS = (dispute_rules.DisputeKind.LATE, dispute_rules.DisputeKind.NOT_TODAY,
              dispute_rules.DisputeKind.CANNOT_FULFIL)


@dataclass
class Ring:
    accounts: set[int] = field(default_factory=set)
    values: dict[str, set[str]] = field(default_factory=lambda: {k: set() for k in KINDS})
    orders: list[orders.OrderFacts] = field(default_factory=list)


def _seeds(uow: InTransaction, c: RiskCase, limit: int) -> list[orders.OrderFacts]:
    if c.order_id is not None:
        found = orders.order(uow, c.order_id)
        return [found] if found is not None else []
    if c.kind == rules.CaseKind.COUPON_FUNNEL:
        _, scope, value = c.ref.split(":", 2)
        return orders.with_signal(uow, scope, value, limit)
    return orders.of_buyers(uow, {c.buyer_id or 0}, limit)


def ring(uow: InTransaction, c: RiskCase, policy: rules.RiskPolicy) -> Ring:
    """The case's orders, every order sharing a device, address or payment account with them, the
    accounts behind those, and those accounts' orders (at most `graph_orders` of each)."""
    found = Ring()
    for o in _seeds(uow, c, policy.graph_orders):
        found.accounts.add(o.buyer_id)
        for kind in KINDS:
            value = o.signals[kind]
            if value:
                found.values[kind].add(value)
    for o in orders.sharing(uow, found.values, policy.graph_orders):
        found.accounts.add(o.buyer_id)
    found.orders = orders.of_buyers(uow, found.accounts, policy.graph_orders)
    return found


def _many(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 'es' if word.endswith('ss') else 's'}"


def _short(value: str) -> str:
    return value[:10]


def evidence(uow: InTransaction, c: RiskCase, policy: rules.RiskPolicy) -> dict[str, Any]:
    """Nodes (accounts, devices, addresses, payment accounts: hashed values shortened) and edges
    (an account used a value, on so many orders), plus the merchant's links the case touches."""
    found = ring(uow, c, policy)
    edges: Counter[tuple[int, str, str]] = Counter()
    per_account: dict[int, Counter[str]] = {}
    for o in found.orders:
        per_account.setdefault(o.buyer_id, Counter())[o.status] += 1
        for kind in KINDS:
            value = o.signals[kind]
            if value:
                edges[(o.buyer_id, kind, _short(value))] += 1
    values: dict[str, set[str]] = {kind: set() for kind in KINDS}
    for _, kind, value in edges:
        values[kind].add(value)
    links = []
    if c.merchant_id is not None:
        hashes = sorted(set().union(*found.values.values()) | {f"u{a}" for a in found.accounts})
        links = [{"kind": link.kind, "value": _short(link.value_h), "source": link.source}
                 for link in uow.session.scalars(select(MerchantLink).where(
                     MerchantLink.merchant_id == c.merchant_id, MerchantLink.value_h.in_(hashes)))]
    accounts = sorted(per_account)
    return {"summary": ", ".join(_many(n, word) for n, word in (
                (len(accounts), "account"), (len(values["device"]), "device"), (len(values["address"]), "address"),
                (len(values["payment"]), "payment account"), (len(found.orders), "order"))),
            "accounts": [{"id": a, "orders": dict(per_account[a])} for a in accounts],
            "devices": sorted(values["device"]), "addresses": sorted(values["address"]),
            "payments": sorted(values["payment"]),
            "edges": [{"account": a, "kind": k, "value": v, "orders": n} for (a, k, v), n in sorted(edges.items())],
            "merchant_links": links,
            "disputes": [{**d, "device": _short(str(d["device"])) if d["device"] else None,
                          "ip": _short(str(d["ip"])) if d["ip"] else None}
                         for d in dispute_reads.disputes_of_buyers(uow, found.accounts)]}


def reputation(uow: InTransaction, deal_id: int) -> dict[str, Any]:
    """What a buyer sees of the store behind a deal: its score band in the deal's category, the share of
    the last 90 days' orders (paid, or refunded by an upheld dispute) not upheld as late or unserved, and
    how many disputes were upheld. Orders refunded for other reasons (a review's fake orders) do not count."""
    deal = catalog.deal_facts(uow, deal_id)
    merchant_id, category = deal["merchant_id"], deal["category"]
    score = merchants.category_score(uow, merchant_id, category)
    since = uow.now - timedelta(days=REPUTATION_DAYS)
    paid = orders.paid_of_merchant(uow, merchant_id, since)
    disputes = dispute_reads.merchant_disputes(uow, merchant_id, since)
    upheld = [k for k, s in disputes if s == dispute_rules.DisputeStatus.CONFIRMED]
    late = sum(1 for k in upheld if k in LATE_KINDS)
    served = paid + len(upheld)  # an upheld dispute's order was refunded: it still was an order to serve
    return {"deal_id": deal_id, "merchant_id": merchant_id, "category": category,
            "score_band": rules.score_band(score), "days": REPUTATION_DAYS, "paid_orders": paid,
            "on_time_share": rules.share(max(0, served - late), served), "disputes": len(disputes),
            "disputes_upheld": len(upheld), "disputes_upheld_share": rules.share(len(upheld), paid)}
