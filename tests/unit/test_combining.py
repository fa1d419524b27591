"""Group commit's coordinator: whoever queues while a batch runs forms the next batch, every member gets its
own outcome, a failed batch sends every member to run alone, and the lead always passes on."""

from __future__ import annotations

import threading
import time

import pytest

from tuangou.core.combining import ALONE, Combiner


def _alone(item: int) -> object:
    return f"alone {item}"


def _wait_for(condition, bound: float = 30.0) -> None:
    give_up = time.monotonic() + bound
    while not condition():
        assert time.monotonic() < give_up, "condition not reached"
        time.sleep(0.005)


def test_a_lone_command_runs_alone():
    # given nobody else on the key, then the command is told to run alone and no batch runs
    combiner: Combiner[int] = Combiner()
    assert combiner.submit("deal", 1, lambda items: [] if False else 1 / 0, lambda item: f"alone {item}") == "alone 1"
    assert combiner._queues == {}


def test_a_lone_command_that_fails_raises_to_its_caller_and_frees_the_key():
    combiner: Combiner[int] = Combiner()

    def fail(item: int) -> object:
        raise ValueError("sold out")

    with pytest.raises(ValueError):
        combiner.submit("deal", 1, lambda items: [], fail)
    assert combiner._queues == {}


def test_those_who_queue_while_a_batch_runs_form_the_next_batch():
    # given a batch of two held inside its transaction (tried until two threads meet in one batch)
    combiner: Combiner[int] = Combiner()
    batches: list[list[int]] = []
    results: dict[int, object] = {}
    inside, release = threading.Event(), threading.Event()

    def held(items: list[int]) -> list[object]:
        batches.append(sorted(items))
        inside.set()
        release.wait(30)
        return [f"done {i}" for i in items]

    def submit(i: int) -> threading.Thread:
        t = threading.Thread(target=lambda: results.__setitem__(i, combiner.submit("hot", i, held, _alone)))
        t.start()
        return t

    pair: list[threading.Thread] = []
    for attempt in range(500):
        with combiner._lock:  # both wait at the door, so they usually meet in the queue
            pair = [submit(2 * attempt), submit(2 * attempt + 1)]
            time.sleep(0.01)
        if inside.wait(0.05):
            break
        for t in pair:
            t.join(30)
    assert inside.is_set(), "two threads never met in one batch"

    # when three more arrive while it runs
    late = [submit(i) for i in (10_001, 10_002, 10_003)]
    _wait_for(lambda: len(combiner._queues.get("hot", ())) == 3)
    release.set()
    for t in [*pair, *late]:
        t.join(30)

    # then the three ran as the next batch, and every member got its own answer
    assert batches[-1] == [10_001, 10_002, 10_003]
    assert all(results[i] == f"done {i}" for i in [*batches[-2], *batches[-1]])
    assert combiner._queues == {}


def test_a_batch_that_raises_sends_every_member_alone_and_passes_the_lead():
    # given commands queued together whose batch raises (tried until two meet in one batch)
    combiner: Combiner[int] = Combiner()
    raised: list[list[int]] = []
    results: dict[int, object] = {}

    def boom(items: list[int]) -> list[object]:
        raised.append(sorted(items))
        raise RuntimeError("database went away")

    for attempt in range(500):
        pair = (2 * attempt, 2 * attempt + 1)
        threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, combiner.submit("k", i, boom, _alone)))
                   for i in pair]
        with combiner._lock:
            for t in threads:
                t.start()
            time.sleep(0.01)
        for t in threads:
            t.join(30)
        if raised:
            break

    # then both members of the failed batch were told to run alone, and nothing stays queued
    assert raised, "two threads never met in one batch"
    assert {i: results[i] for i in raised[0]} == {i: ALONE for i in raised[0]}
    assert combiner._queues == {}


def test_many_threads_each_get_their_own_outcome():
    # given 40 threads submitting at once, batches answering each item with itself
    combiner: Combiner[int] = Combiner(max_batch=8)
    sizes: list[int] = []
    results: dict[int, object] = {}
    start = threading.Barrier(40)

    def run_batch(items: list[int]) -> list[object]:
        sizes.append(len(items))
        time.sleep(0.002)
        return [i * 10 for i in items]

    def go(i: int) -> None:
        start.wait(30)
        out = combiner.submit("k", i, run_batch, lambda item: item * 10)
        results[i] = i * 10 if out is ALONE else out

    threads = [threading.Thread(target=go, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    # then every thread returned, with its own answer, and no batch exceeded the bound
    assert results == {i: i * 10 for i in range(40)}
    assert all(s <= 8 for s in sizes)
    assert combiner._queues == {}
