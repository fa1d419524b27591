"""How fast can one uvicorn process answer N requests sent at the same instant, with nothing of ours in the
way? `.venv/bin/python bench/ceiling/burst.py 2200` (2,000 placements + 200 payments of a burst). Prints the
answer p99, the last answer and the server's CPU. Uses the flash-sale benchmark's own client."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from tuangou.benchmarks.loadgen import Connection

HERE = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def main(n: int) -> None:
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "app:app", "--port", str(port), "--loop", "uvloop",
                               "--http", "httptools", "--no-access-log", "--log-level", "warning",
                               "--backlog", "4096"], cwd=HERE)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                await asyncio.sleep(0.1)
        connections = [Connection("127.0.0.1", port, "none") for _ in range(n)]
        for c in connections:
            await c.request("/x", b'{"deal_id":1}')  # connected and warm, as the burst's buyers are
        cpu = _cpu_seconds(server.pid)
        start = time.monotonic()
        answers: list[float] = []

        async def one(c: Connection) -> None:
            await c.request("/x", b'{"deal_id":1,"quantity":1}')
            answers.append((time.monotonic() - start) * 1000)

        await asyncio.gather(*(one(c) for c in connections))
        answers.sort()
        print(json.dumps({"requests": n, "answer_p99_ms": round(answers[int(0.99 * n) - 1], 1),
                          "last_answer_ms": round(answers[-1], 1),
                          "server_cpu_ms_per_request": round((_cpu_seconds(server.pid) - cpu) * 1000 / n, 3),
                          "loadavg": os.getloadavg()[0]}))
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2200))
