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
from sqlalchemy import text

from tuangou.risk import rules

MAX_ACCOUNTS_TEXT = 600  # the accounts seen in one window, as text: enough to know "many"
_statements: dict[tuple[str, int], Any] = {}
# Every right-hand side reads the row as it was before this statement (SQL semantics, both databases).
# `c` is the stored row, `excluded` this order's; a window older than the previous one starts afresh.
_SET = """prev_n = CASE WHEN c.win = excluded.win THEN c.prev_n WHEN c.win = excluded.win - 1 THEN c.n ELSE 0 END,
  prev_units = CASE WHEN c.win = excluded.win THEN c.prev_units WHEN c.win = excluded.win - 1 THEN c.units ELSE 0 END,
  prev_accts = CASE WHEN c.win = excluded.win THEN c.prev_accts
    WHEN c.win = excluded.win - 1 THEN length(c.accts) - length(replace(c.accts, ',', '')) - 1 ELSE 0 END,
  n = CASE WHEN c.win = excluded.win THEN c.n + 1 ELSE 1 END,
  units = CASE WHEN c.win = excluded.win THEN c.units + excluded.units ELSE excluded.units END,
  accts = CASE WHEN c.win <> excluded.win THEN excluded.accts
    WHEN {find}(c.accts, excluded.accts) > 0 OR length(c.accts) > {cap} THEN c.accts
    ELSE c.accts || substr(excluded.accts, 2) END,
  win = excluded.win"""


def _upsert(dialect: str, values: int) -> Any:
    """The upsert for `values` signal values, written once per dialect and count. Plain SQL: SQLAlchemy does not
    cache the compiled form of a multi-row INSERT, and compiling this one cost ~5 ms of CPU per order."""
    stmt = _statements.get((dialect, values))
    if stmt is None:
        rows = ", ".join(f"(:scope{i}, :key{i}, :win, 1, 0, :units, 0, :accts, 0)" for i in range(values))
        sql = (f'INSERT INTO risk_counters AS c (scope, "key", win, n, prev_n, units, prev_units, accts, prev_accts) '
               f'VALUES {rows} ON CONFLICT (scope, "key") DO UPDATE SET '
               + _SET.format(find="strpos" if dialect == "postgresql" else "instr", cap=MAX_ACCOUNTS_TEXT)
               + " RETURNING scope, n, prev_n, units, prev_units, accts, prev_accts")
        stmt = _statements[(dialect, values)] = text(sql)
    return stmt


def count_in_db(conn: Any, keys: dict[str, str], buyer_id: int, units: int, win: int) -> list[rules.Count]:
    """Count one order against each of its signal values; returns every value's counts after it."""
    params: dict[str, Any] = {"win": win, "units": units, "accts": f",{buyer_id},"}
    for i, (scope, key) in enumerate(keys.items()):
        params[f"scope{i}"], params[f"key{i}"] = scope, key
    result = conn.execute(_upsert(conn.dialect.name, len(keys)), params)  # one statement, however many values
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
