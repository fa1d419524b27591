"""The load generator: one separate process, raw asyncio sockets, HTTP/1.1 keep-alive.

Why not httpx: on a 2-core machine the generator shares the CPU with the servers,
and httpx spends ~5x more CPU per request than a hand-written request line plus
`Content-Length` read on uvloop. A heavy client would lower both phases and hide
the server's ceiling, so the client is kept as thin as a socket allows.

Each simulated buyer owns one keep-alive connection to one server port (buyers
are spread over the ports like a load balancer would) and loops: place an order
with a fresh Idempotency-Key, pay it, repeat, until the deal sells out or time
ends. A dropped connection (a server killed by --chaos) is counted, reconnected,
and the same request is sent again with the same key: the retry must return the
same order, never a second one.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

CONNECT_GIVE_UP_S = 30.0


class Dropped(Exception):
    """The connection broke before a full response arrived."""


class Connection:
    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port = host, port
        self.auth = f"Authorization: Bearer {token}\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, path: str, body: bytes, extra: str = "") -> tuple[int, bytes]:
        try:
            if self.writer is None:
                await self._open()
            assert self.reader is not None and self.writer is not None
            self.writer.write((f"POST {path} HTTP/1.1\r\nHost: bench\r\n{self.auth}{extra}"
                               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                               ).encode() + body)
            status_line = await self.reader.readline()
            if not status_line:
                raise Dropped("closed")
            status = int(status_line.split(b" ", 2)[1])
            length = 0
            keep = True
            while True:
                line = await self.reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                lname = name.strip().lower()
                if lname == b"content-length":
                    length = int(value)
                elif lname == b"connection" and value.strip().lower() == b"close":
                    keep = False
            payload = await self.reader.readexactly(length) if length else b""
            if not keep:
                self.close()
            return status, payload
        except (OSError, asyncio.IncompleteReadError, Dropped, ValueError, IndexError) as exc:
            self.close()
            raise Dropped(str(exc)) from exc


@dataclass
class Tally:
    placed: int = 0  # orders whose placement answered 201 (distinct order ids)
    paid: int = 0  # orders whose payment answered 200
    units: int = 0  # units of successfully placed orders
    sold_out: int = 0  # 409 sold_out / cap_exceeded answers
    errors_5xx: int = 0
    errors_4xx: int = 0  # other refusals (should stay 0)
    resets: int = 0  # connections dropped under us (a killed server), then retried
    replays: int = 0  # a retried placement answered with the already placed order
    duplicates: int = 0  # one idempotency key answered with two different order ids
    sequences: int = 0  # noop phase: place-shaped + pay-shaped request pairs
    latencies_ms: list[float] = field(default_factory=list)  # per HTTP request
    order_latencies_ms: list[float] = field(default_factory=list)  # place + pay
    elapsed_s: float = 0.0
    client_cpu_s: float = 0.0  # the generator's own CPU in this phase
    first_4xx: str = ""
    answers_ms: list[float] = field(default_factory=list)  # burst: common start -> a buyer's last answer
    refusals: int = 0  # burst: buyers told sold out
    last_refusal_ms: float = 0.0  # burst: common start -> the last refusal


async def _send(conn: Connection, tally: Tally, path: str, body: bytes, extra: str, deadline: float
                ) -> tuple[int, bytes]:
    """Send until a response arrives; a dropped connection is retried with the same request."""
    while True:
        t0 = time.perf_counter()
        try:
            status, payload = await conn.request(path, body, extra)
        except Dropped:
            tally.resets += 1
            if time.monotonic() > deadline + CONNECT_GIVE_UP_S:
                raise
            await asyncio.sleep(0.05)
            continue
        tally.latencies_ms.append((time.perf_counter() - t0) * 1000)
        if status >= 500:
            tally.errors_5xx += 1
        return status, payload


async def _buyer_orders(conn: Connection, n: int, deal_id: int, deadline: float, tally: Tally,
                        stop: asyncio.Event, quantity: int, progress: Any) -> None:
    body = json.dumps({"deal_id": deal_id, "quantity": quantity}).encode()
    pay_body = b'{"outcome": "succeed"}'
    seen: dict[str, int] = {}
    i = 0
    while time.monotonic() < deadline and not stop.is_set():
        i += 1
        key = f"b{n}-{i}"
        t0 = time.perf_counter()
        status, payload = await _send(conn, tally, "/api/v1/orders", body,
                                      f"Idempotency-Key: {key}\r\nX-Device-Id: bench-phone-{n}\r\n", deadline)
        if status == 409 and (b"sold_out" in payload or b"cap_exceeded" in payload):
            tally.sold_out += 1
            stop.set()  # one sold-out answer ends the sale for everybody
            return
        if status not in (200, 201):
            if status < 500:
                tally.errors_4xx += 1
                tally.first_4xx = tally.first_4xx or payload[:300].decode(errors="replace")
            continue
        order_id = int(json.loads(payload)["id"])
        if key in seen and seen[key] != order_id:
            tally.duplicates += 1
        seen[key] = order_id
        if status == 200:
            tally.replays += 1
        tally.placed += 1
        tally.units += quantity
        while True:
            status, payload = await _send(conn, tally, f"/api/v1/orders/{order_id}/pay", pay_body,
                                          f"Idempotency-Key: pay-{key}\r\n", deadline)
            if status == 200:
                tally.paid += 1
                progress.value += 1  # only this process writes it; the parent reads it for --chaos
                tally.order_latencies_ms.append((time.perf_counter() - t0) * 1000)
                break
            if status == 202 or status >= 500:  # unknown outcome: ask again with the same key
                continue
            tally.errors_4xx += 1
            tally.first_4xx = tally.first_4xx or payload[:300].decode(errors="replace")
            break


async def _burst_buyer(conn: Connection, n: int, deal_id: int, start: float, deadline: float, tally: Tally,
                       progress: Any) -> None:
    """One buyer of a burst: one order, paid if placed. Records when the buyer had its final answer."""
    key = f"burst{n}"
    body = json.dumps({"deal_id": deal_id, "quantity": 1}).encode()
    status, payload = await _send(conn, tally, "/api/v1/orders", body,
                                  f"Idempotency-Key: {key}\r\nX-Device-Id: bench-phone-{n}\r\n", deadline)
    if status == 409 and (b"sold_out" in payload or b"cap_exceeded" in payload):
        tally.sold_out += 1
        tally.refusals += 1
        done = (time.monotonic() - start) * 1000
        tally.last_refusal_ms = max(tally.last_refusal_ms, done)
        tally.answers_ms.append(done)
        return
    if status not in (200, 201):
        if status < 500:
            tally.errors_4xx += 1
            tally.first_4xx = tally.first_4xx or payload[:300].decode(errors="replace")
        tally.answers_ms.append((time.monotonic() - start) * 1000)
        return
    order_id = int(json.loads(payload)["id"])
    tally.placed += 1
    tally.units += 1
    if status == 200:
        tally.replays += 1
    while True:
        status, payload = await _send(conn, tally, f"/api/v1/orders/{order_id}/pay", b'{"outcome": "succeed"}',
                                      f"Idempotency-Key: pay-{key}\r\n", deadline)
        if status == 200:
            tally.paid += 1
            progress.value += 1
            break
        if (status == 202 or status >= 500) and time.monotonic() < deadline:
            continue
        tally.errors_4xx += status < 500
        tally.first_4xx = tally.first_4xx or payload[:300].decode(errors="replace")
        break
    tally.answers_ms.append((time.monotonic() - start) * 1000)


async def _burst(ports: list[int], tokens: list[str], deal_id: int, seconds: float, progress: Any) -> Tally:
    """Every buyer connects first; then all send at the same instant."""
    tally = Tally()
    conns = [Connection("127.0.0.1", ports[i % len(ports)], t) for i, t in enumerate(tokens)]
    for i in range(0, len(conns), 100):  # connect in slices: the listen backlog is finite
        await asyncio.gather(*(c._open() for c in conns[i:i + 100]))
    start = time.monotonic()
    cpu0 = time.process_time()
    await asyncio.gather(*(_burst_buyer(c, i, deal_id, start, start + seconds, tally, progress)
                           for i, c in enumerate(conns)))
    tally.elapsed_s = time.monotonic() - start
    tally.client_cpu_s = time.process_time() - cpu0
    for c in conns:
        c.close()
    return tally


async def _buyer_noop(conn: Connection, deal_id: int, deadline: float, tally: Tally) -> None:
    body = json.dumps({"deal_id": deal_id, "quantity": 1}).encode()
    while time.monotonic() < deadline:
        await _send(conn, tally, "/api/v1/bench/noop", body, "Idempotency-Key: noop\r\n", deadline)
        await _send(conn, tally, "/api/v1/bench/noop", b'{"quantity": 1}', "Idempotency-Key: noop\r\n", deadline)
        tally.sequences += 1


async def _phase(kind: str, ports: list[int], tokens: list[str], deal_id: int, seconds: float,
                 quantity: int, progress: Any) -> Tally:
    tally = Tally()
    conns = [Connection("127.0.0.1", ports[i % len(ports)], t) for i, t in enumerate(tokens)]
    stop = asyncio.Event()
    start = time.monotonic()
    cpu0 = time.process_time()
    deadline = start + seconds
    if kind == "orders":
        jobs = [_buyer_orders(c, i, deal_id, deadline, tally, stop, quantity, progress) for i, c in enumerate(conns)]
    else:
        jobs = [_buyer_noop(c, deal_id, deadline, tally) for c in conns]
    await asyncio.gather(*jobs)
    tally.elapsed_s = time.monotonic() - start
    tally.client_cpu_s = time.process_time() - cpu0
    for c in conns:
        c.close()
    return tally


def run_phases(plan: dict[str, Any], started: Any, out: Any, progress: Any) -> None:
    """Process entry point: run each phase of `plan` and put one result dict per phase on `out`.

    `started` (a multiprocessing Event) is set when the order phase begins and `progress`
    (a shared int) counts paid orders, so the parent can kill a server mid-sale (--chaos).
    """
    try:
        import uvloop
        uvloop.install()
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        pass

    async def main() -> None:
        for kind, seconds in plan["phases"]:
            if kind in ("orders", "burst"):
                started.set()
            if kind == "burst":
                tally = await _burst(plan["ports"], plan["tokens"], plan["deal_id"], seconds, progress)
            else:
                tokens = plan["tokens"][:plan.get("steady_buyers", len(plan["tokens"]))]
                tally = await _phase(kind if kind == "orders" else "noop", plan["ports"], tokens, plan["deal_id"],
                                     seconds, plan.get("quantity", 1), progress)
            out.put((kind, tally.__dict__))

    asyncio.run(main())
