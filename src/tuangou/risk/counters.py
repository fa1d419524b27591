"""Window counters of the order path (docs/adr/0015): one row (or Redis key) per signal value.

Database: one `INSERT … ON CONFLICT DO UPDATE … RETURNING` over all of an order's signal values,
inside the order's transaction. The row lock of each value serialises the orders sharing it, so
concurrent orders racing one window are decided exactly; a refused order rolls back and leaves its
count behind. Redis (when configured): one pipelined round trip of per-window keys, outside the
database; a refused order takes its count back.
"""

from __future__ import annotations

from typing import Any

import redis
from sqlalchemy import case, func, or_

from tuangou.core.db import table, upsertable_insert
from tuangou.risk import rules
from tuangou.risk.models import RiskCounter

_t = table(RiskCounter)
_c = _t.c
MAX_ACCOUNTS_TEXT = 600  # the accounts seen in one window, as text: enough to know "many"
_statements: dict[str, Any] = {}


def _upsert(dialect: str) -> Any:
    stmt = _statements.get(dialect)
    if stmt is not None:
        return stmt
    ins = upsertable_insert(dialect, _t)
    ex = ins.excluded
    same, previous = _c.win == ex.win, _c.win == ex.win - 1
    found = (func.strpos if dialect == "postgresql" else func.instr)(_c.accts, ex.accts)
    seen = func.length(_c.accts) - func.length(func.replace(_c.accts, ",", "")) - 1
    # every right-hand side reads the row as it was before this statement (SQL semantics, both databases)
    stmt = _statements[dialect] = ins.on_conflict_do_update(index_elements=["scope", "key"], set_={
        "prev_n": case((same, _c.prev_n), (previous, _c.n), else_=0),
        "prev_units": case((same, _c.prev_units), (previous, _c.units), else_=0),
        "prev_accts": case((same, _c.prev_accts), (previous, seen), else_=0),
        "n": case((same, _c.n + 1), else_=1),
        "units": case((same, _c.units + ex.units), else_=ex.units),
        "accts": case((same, case((or_(found > 0, func.length(_c.accts) > MAX_ACCOUNTS_TEXT), _c.accts),
                                  else_=_c.accts + func.substr(ex.accts, 2))), else_=ex.accts),
        "win": ex.win}).returning(_c.scope, _c.n, _c.prev_n, _c.units, _c.prev_units, _c.accts, _c.prev_accts)
    return stmt


def count_in_db(conn: Any, keys: dict[str, str], buyer_id: int, units: int, win: int) -> list[rules.Count]:
    """Count one order against each of its signal values; returns every value's counts after it."""
    rows = [{"scope": scope, "key": key, "win": win, "n": 1, "prev_n": 0, "units": units, "prev_units": 0,
             "accts": f",{buyer_id},", "prev_accts": 0} for scope, key in keys.items()]
    result = conn.execute(_upsert(conn.dialect.name).values(rows))  # one statement, however many values
    return [rules.Count(r.scope, r.n, r.prev_n, r.units, r.prev_units, rules.accounts_in(r.accts), r.prev_accts)
            for r in result]


class RedisCounters:
    """The same counters in Redis: per value and window a hash (orders, units) and a set (accounts),
    expiring after two windows. Losing them (a restart) forgets at most one window of history."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=1.0)

    def count(self, keys: dict[str, str], buyer_id: int, units: int, win: int, window_s: int) -> list[rules.Count]:
        pipe = self.client.pipeline(transaction=False)
        for scope, key in keys.items():
            cur, prev = f"risk:{scope}:{key}:{win}", f"risk:{scope}:{key}:{win - 1}"
            pipe.hincrby(cur, "n", 1)
            pipe.hincrby(cur, "units", units)
            pipe.expire(cur, window_s * 2)
            pipe.hmget(prev, "n", "units")
            pipe.sadd(cur + ":a", buyer_id)
            pipe.expire(cur + ":a", window_s * 2)
            pipe.scard(cur + ":a")
            pipe.scard(prev + ":a")
        answers = pipe.execute()
        counts = []
        for i, scope in enumerate(keys):
            n, u, _, (pn, pu), _, _, accounts, prev_accounts = answers[i * 8:(i + 1) * 8]
            counts.append(rules.Count(scope, int(n), int(pn or 0), int(u), int(pu or 0), int(accounts),
                                      int(prev_accounts)))
        return counts

    def take_back(self, keys: dict[str, str], units: int, win: int) -> None:
        """A refused order does not count (its account stays in the set: it did try)."""
        pipe = self.client.pipeline(transaction=False)
        for scope, key in keys.items():
            pipe.hincrby(f"risk:{scope}:{key}:{win}", "n", -1)
            pipe.hincrby(f"risk:{scope}:{key}:{win}", "units", -units)
        pipe.execute()
