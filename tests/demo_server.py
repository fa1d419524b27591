"""`tuangou demo` as a subprocess on a fresh SQLite file, for the tests that drive the real product from
outside (the README tour, the browser journeys): one way to start it, wait for it and stop it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_demo(workdir: Path) -> Iterator[int]:
    """Start the demo (demo data, the worker in process) on a free port; yield the port once it answers
    /healthz; stop it afterwards. A demo that exits while starting fails with its output."""
    port = free_port()
    env = {**os.environ, "TUANGOU_DATABASE_URL": f"sqlite:///{workdir / 'demo.db'}", "TUANGOU_PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "tuangou.cli", "demo"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for _ in range(600):  # a generous bound: a busy machine starts the demo slowly
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise AssertionError(proc.stdout.read().decode() if proc.stdout else "demo exited")
            time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
