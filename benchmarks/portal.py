"""Workload ``portal``: what a sync call over an AnyIO blocking portal costs (reference rows)."""

from __future__ import annotations

import shutil
import subprocess
import time

from anyio.from_thread import start_blocking_portal

from benchmarks.harness import Contender, Workload, timed


async def noop() -> None:
    pass


def workload(quick: bool) -> Workload:
    cmd = [shutil.which("true") or "/bin/true"]
    n = 100 if quick else 500

    def spawn() -> float:
        return timed(lambda: [subprocess.run(cmd, capture_output=True) for _ in range(n)])

    def warm_call(backend: str) -> float:
        with start_blocking_portal(backend) as portal:
            portal.call(noop)
            start = time.perf_counter()
            for _ in range(n):
                portal.call(noop)
            return time.perf_counter() - start

    def start_stop(backend: str) -> float:
        def work() -> None:
            for _ in range(n):
                with start_blocking_portal(backend):
                    pass

        return timed(work)

    return Workload(
        name="portal",
        title=f"portal: AnyIO blocking portal costs ({n} per sample), time per operation",
        unit="op",
        work=n,
        contenders=[
            Contender("subprocess.run([true]) for scale", "stdlib", spawn, "baseline"),
            Contender(
                "warm portal.call(no-op coroutine) [asyncio]",
                "reference",
                lambda: warm_call("asyncio"),
                "reference",
            ),
            Contender(
                "warm portal.call(no-op coroutine) [trio]",
                "reference",
                lambda: warm_call("trio"),
                "reference",
            ),
            Contender(
                "start_blocking_portal start + stop [asyncio]",
                "reference",
                lambda: start_stop("asyncio"),
                "reference",
            ),
            Contender(
                "start_blocking_portal start + stop [trio]",
                "reference",
                lambda: start_stop("trio"),
                "reference",
            ),
        ],
        note="A sync procfound call costs its async core plus about one warm portal call.",
    )
