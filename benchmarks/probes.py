"""Workload ``probes``: time from "the listener is up" to "the readiness wait returned".

Each operation starts a child that sleeps a little, then listens on a free TCP port on
127.0.0.1; the child records the monotonic time just before its ``listen()`` in a file. The
contender waits for the port and records the time its wait returned. The difference (the
latency a readiness wait adds on top of the service's own start-up) is what is measured.
Spawning, the child's sleep and the shutdown are outside the clock.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import anyio

from benchmarks.harness import Contender, Workload, in_loop_self_timed, procfound_attr

# Sleeps before the child listens, cycled: long enough that every contender is already waiting.
DELAYS: Final = (0.15, 0.17, 0.19, 0.21, 0.23, 0.25)
WAIT_TIMEOUT: Final = 10.0

CHILD: Final = """
import socket, sys, time
port, stamp, delay, chatty = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4]
time.sleep(delay)
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
up = time.monotonic()
server.listen()
if chatty == "1":
    sys.stdout.write("listening on %d\\n" % port)
    sys.stdout.flush()
with open(stamp + ".tmp", "w") as f:
    f.write(repr(up))
import os
os.rename(stamp + ".tmp", stamp)
time.sleep(30)
"""


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as server:
        return int(server.getsockname()[1])


def listened_at(stamp: Path) -> float:
    """The child's time just before listen() (it writes the file right after)."""
    deadline = time.monotonic() + WAIT_TIMEOUT
    while not stamp.exists():
        if time.monotonic() > deadline:
            raise AssertionError("the child never recorded its listen time")
        time.sleep(0.001)
    return float(stamp.read_text())


class Service:
    """One operation's child: its argv, port and stamp file."""

    def __init__(self, directory: Path, index: int, *, chatty: bool = False) -> None:
        self.port = free_port()
        self.stamp = directory / f"up-{index}"
        delay = DELAYS[index % len(DELAYS)]
        self.argv = [
            sys.executable,
            "-c",
            CHILD,
            str(self.port),
            str(self.stamp),
            str(delay),
            "1" if chatty else "0",
        ]

    def latency(self, returned: float) -> float:
        up = listened_at(self.stamp)
        if returned < up:
            raise AssertionError(f"the wait returned {up - returned:.6f}s before the listen")
        return returned - up


def polling_loop(n: int, pause: float) -> float:
    """What a user writes: connect, and on failure sleep ``pause`` and try again."""
    total = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(n):
            service = Service(Path(tmp), index)
            child = subprocess.Popen(service.argv, stdin=subprocess.DEVNULL)
            try:
                give_up = time.monotonic() + WAIT_TIMEOUT
                while True:
                    try:
                        socket.create_connection(("127.0.0.1", service.port), timeout=1).close()
                        break
                    except OSError:
                        if time.monotonic() > give_up:
                            raise
                        time.sleep(pause)
                total += service.latency(time.monotonic())
            finally:
                child.kill()
                child.wait()
    return total


def anyio_polling_loop(n: int, pause: float) -> float:
    """The same loop in async code: ``anyio.connect_tcp`` and ``anyio.sleep``."""

    async def work() -> float:
        total = 0.0
        with tempfile.TemporaryDirectory() as tmp:
            for index in range(n):
                service = Service(Path(tmp), index)
                child = subprocess.Popen(service.argv, stdin=subprocess.DEVNULL)
                try:
                    with anyio.fail_after(WAIT_TIMEOUT):
                        while True:
                            try:
                                stream = await anyio.connect_tcp("127.0.0.1", service.port)
                            except OSError:
                                await anyio.sleep(pause)
                                continue
                            await stream.aclose()
                            break
                    total += service.latency(time.monotonic())
                finally:
                    child.kill()
                    child.wait()
        return total

    return in_loop_self_timed("anyio[asyncio]", work)


def procfound_probe(n: int, how: Any, *, sync: bool = False, chatty: bool = False) -> float:
    managed_process = procfound_attr("ManagedProcess")
    wait_for_port: Callable[..., Any] = procfound_attr("wait_for_port")

    async def work() -> float:
        total = 0.0
        with tempfile.TemporaryDirectory() as tmp:
            for index in range(n):
                service = Service(Path(tmp), index, chatty=chatty)
                proc = managed_process(service.argv)
                try:
                    proc.launch()
                    if sync:
                        proc.wait_ready(port=service.port, timeout=WAIT_TIMEOUT)
                    else:
                        await wait_for_port(proc, service.port, timeout=WAIT_TIMEOUT)
                    total += service.latency(time.monotonic())
                finally:
                    try:
                        proc.terminate_gracefully(timeout=2.0)
                    finally:
                        proc.cleanup()
        return total

    return in_loop_self_timed(how, work)


def workload(quick: bool) -> Workload:
    n = 3 if quick else 6
    return Workload(
        name="probes",
        title=(
            f'probes: from "listener is up" to "wait returned" ({n} services per sample), time each'
        ),
        unit="op",
        work=n,
        contenders=[
            Contender(
                "loop: socket.create_connection, time.sleep(0.05)",
                "stdlib",
                lambda: polling_loop(n, 0.05),
                "baseline",
            ),
            Contender(
                "loop: socket.create_connection, time.sleep(0.01)",
                "stdlib",
                lambda: polling_loop(n, 0.01),
            ),
            Contender(
                "loop: anyio.connect_tcp, anyio.sleep(0.01)",
                "anyio[asyncio]",
                lambda: anyio_polling_loop(n, 0.01),
            ),
            Contender(
                "await wait_for_port",
                "procfound[asyncio]",
                lambda: procfound_probe(n, "anyio[asyncio]"),
            ),
            Contender(
                "await wait_for_port",
                "procfound[trio]",
                lambda: procfound_probe(n, "anyio[trio]"),
            ),
            Contender(
                "ManagedProcess.wait_ready(port=...) (sync)",
                "procfound",
                lambda: procfound_probe(n, "anyio[asyncio]", sync=True),
            ),
            Contender(
                'await wait_for_port, the server logs "listening" after listen()',
                "procfound[asyncio]",
                lambda: procfound_probe(n, "anyio[asyncio]", chatty=True),
            ),
        ],
        note=(
            "The child sleeps 0.15-0.25 s, records the monotonic time just before `listen()`, "
            "then listens; the clock runs from that time to the moment the wait returned "
            "(spawn, the sleep and the shutdown are outside it). wait_for_port retries after "
            "2% of the time waited so far (1-20 ms), and at once when the child writes output "
            "(last row)."
        ),
    )
