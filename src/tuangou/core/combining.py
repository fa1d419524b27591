"""Group commit: concurrent commands on the same hot row share one transaction (docs/adr/0010).

On PostgreSQL a hot deal's bucket row is locked from its UPDATE to the COMMIT, and every other order
of that deal waits for it: throughput is one order per lock hold. Threads of one process that want the
same row queue here; the first becomes the leader, takes everyone queued (up to `max_batch`) and runs
them as one transaction (one guarded UPDATE for their sum), then hands the lead to the next thread
queued meanwhile, so nobody leads for ever. While a batch runs, the next one fills: batching costs no
waiting of its own.

The leader runs its own command inside the lead even when nobody joined it: whoever arrives while it
runs queues behind it and forms the next batch. A batch that cannot run whole (one of its commands is refused, the sum does not fit where each alone
might) answers ALONE for every member, and each thread then runs its own command as if nothing had been
combined: a refusal is always the command's own.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class _Alone:
    def __repr__(self) -> str:
        return "ALONE"


ALONE: Any = _Alone()  # the member must run its command by itself


@dataclass
class _Member(Generic[T]):
    item: T
    ready: threading.Event = field(default_factory=threading.Event)
    lead: bool = False  # woken to lead the next batch, not with an outcome
    outcome: Any = ALONE


class Combiner(Generic[T]):
    """Per key, at most one batch runs at a time; what arrives meanwhile forms the next batch."""

    def __init__(self, max_batch: int = 32) -> None:
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._queues: dict[Hashable, deque[_Member[T]]] = {}

    def submit(self, key: Hashable, item: T, run_batch: Callable[[list[T]], list[Any]],
               run_alone: Callable[[T], Any]) -> Any:
        """Run `item` with whatever else is queued under `key`; returns this item's outcome or ALONE.

        The leader runs a batch of one with `run_alone` (its error is raised to its caller), a larger
        batch with `run_batch(items)`, which returns one outcome per item (ALONE for every item when the
        batch could not run whole); either way it still leads while it runs, so arrivals queue meanwhile."""
        me: _Member[T] = _Member(item)
        with self._lock:
            queue = self._queues.get(key)
            follower = queue is not None
            if queue is None:
                queue = self._queues[key] = deque()
            queue.append(me)
        if follower:
            me.ready.wait()
            if not me.lead:
                return me.outcome
        # leading: this member is at the head of the queue
        with self._lock:
            batch = [queue.popleft() for _ in range(min(len(queue), self.max_batch))]
        outcomes: list[Any] = [ALONE] * len(batch)
        try:
            if len(batch) == 1:
                outcomes = [run_alone(item)]
            else:
                try:
                    outcomes = run_batch([m.item for m in batch])
                except Exception:  # each member runs alone and meets its own error there
                    outcomes = [ALONE] * len(batch)
        finally:
            for member, outcome in zip(batch, outcomes, strict=True):
                member.outcome = outcome
                if member is not me:
                    member.ready.set()
            with self._lock:
                if queue:
                    queue[0].lead = True
                    queue[0].ready.set()
                else:
                    del self._queues[key]
        return me.outcome
