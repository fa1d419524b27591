"""Risk on the order path: one order participant (installed by tuangou/composition.py).

What it reads rides in the placing snapshot (the policy row and whether the buyer's account, device,
address or payment account is linked to the deal's merchant: two correlated columns, no query of its
own). What it writes is one statement: the window upsert over all of the order's signal values
(none with Redis: one pipelined round trip). Only a held order costs more (rare): the hold, the case,
the question to the buyer.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Integer, String, bindparam, cast, literal, select

from tuangou.catalog import rules as catalog_rules
from tuangou.core.db import InTransaction, table
from tuangou.core.errors import DomainError
from tuangou.core.policy import PolicyRecord
from tuangou.orders import rules as order_rules
from tuangou.orders.participants import OrderParticipant, extra_of
from tuangou.risk import counters, rules, service
from tuangou.risk.models import MerchantLink

POLICY = service.POLICY


class RiskRejected(DomainError):
    status = 409
    code = "risk_rejected"


class RiskCheck(OrderParticipant):
    name = "risk.check"

    def __init__(self, redis_url: str | None = None) -> None:
        self.redis = counters.RedisCounters(redis_url) if redis_url else None
        self.transactional = self.redis is None  # a Redis count is not rolled back with the order
        self._parsed: tuple[Any, rules.RiskPolicy] = (None, rules.RiskPolicy())

    def _policy(self, raw: Any) -> rules.RiskPolicy:
        if raw != self._parsed[0]:  # parse only when the stored policy changed
            self._parsed = (raw, rules.policy_from_dict(raw))
        return self._parsed[1]

    def snapshot_columns(self, deals: Any) -> dict[str, ColumnElement[Any]]:
        links, policies = table(MerchantLink).c, table(PolicyRecord).c
        staff = literal("u", String) + cast(bindparam("sig_buyer", type_=Integer), String)
        values = [bindparam("sig_device", type_=String), bindparam("sig_address", type_=String),
                  bindparam("sig_payment", type_=String), staff]
        return {"policy": select(policies.data).where(policies.name == POLICY).scalar_subquery(),
                "link": select(links.kind).where(links.merchant_id == deals.merchant_id, links.value_h.in_(values))
                .order_by(links.id).limit(1).scalar_subquery()}

    def wants_placing(self, snapshot: catalog_rules.DealSnapshot, request: order_rules.OrderRequest) -> bool:
        return True

    def on_inserted(self, tx: InTransaction, order_id: int, req: order_rules.OrderRequest,
                    snapshot: catalog_rules.DealSnapshot, outcome: dict[str, Any]) -> None:
        """Before the units are held: the window statement (or Redis round trip) does not lengthen the hot
        bucket row's lock, and a refused order never takes it."""
        seen = extra_of(snapshot.extra, self.name)
        policy = self._policy(seen.get("policy"))
        keys = service.signal_keys(req.buyer_id, req.signals)
        win, into = rules.window_of(tx.now.timestamp(), policy.window_minutes)
        if self.redis is not None:
            counts = self.redis.count(keys, req.buyer_id, req.quantity, win, policy.window_minutes * 60)
        else:
            counts = counters.count_in_db(tx.conn, keys, req.buyer_id, req.quantity, win)
        decision = rules.decide(counts, into, seen.get("link"), policy)
        if decision.action == rules.Action.PASS:
            return
        if decision.action == rules.Action.REJECT:
            if self.redis is not None:
                self.redis.take_back(keys, req.quantity, win)
            raise RiskRejected(f"order refused: {rules.refusal_words(decision)}", hits=decision.as_json())
        service.hold_order(tx, order_id, req.buyer_id, snapshot.merchant_id, decision)
        outcome["status"] = order_rules.OrderStatus.HELD.value
