"""Workload ``latency``: sequential runs of ``true``, time per run."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from typing import Any

import anyio

from benchmarks.harness import (
    Contender,
    LoopKind,
    LoopThread,
    Unavailable,
    Workload,
    bridge_backend,
    in_loop,
    procfound_attr,
    require_pidfd,
    spawn_and_await_pidfd,
    spawn_and_wait_blocking,
    timed,
)


def workload(quick: bool) -> Workload:
    true = shutil.which("true") or "/bin/true"
    cmd = [true]
    n = 50 if quick else 300

    def stdlib(capture: bool) -> float:
        def work() -> None:
            for _ in range(n):
                subprocess.run(cmd, capture_output=capture, check=True)

        return timed(work)

    async def asyncio_peer() -> None:
        for _ in range(n):
            proc = await asyncio.create_subprocess_exec(
                *cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            await proc.communicate()
            assert proc.returncode == 0

    async def anyio_peer() -> None:
        for _ in range(n):
            await anyio.run_process(cmd)

    async def trio_peer() -> None:
        import trio

        for _ in range(n):
            await trio.run_process(cmd, capture_stdout=True, capture_stderr=True)

    def raw_blocking() -> float:
        """Physical reference: bare posix_spawn + os.wait4 per run, no event loop."""

        def work() -> None:
            for _ in range(n):
                spawn_and_wait_blocking(cmd)

        return timed(work)

    def raw_in_loop(how: LoopKind) -> float:
        """Physical reference: bare posix_spawn, the pidfd awaited in the loop, no library."""
        require_pidfd()

        async def work() -> None:
            for _ in range(n):
                await spawn_and_await_pidfd(cmd)

        return in_loop(how, work)

    def procfound_sync() -> float:
        run = procfound_attr("run")

        def work() -> None:
            for _ in range(n):
                run(cmd)

        return timed(work)

    def procfound_engine_in_portal() -> float:
        """Reference: the same async_run loop run inside procfound's portal thread, one call.

        ``procfound.run`` minus this row is what the sync shim costs per call.
        """
        async_run = procfound_attr("async_run")
        try:
            from procfound.bridge.sync import call_in_portal
        except ImportError as exc:
            raise Unavailable(f"procfound.bridge.sync.call_in_portal: {exc}") from exc

        async def work() -> None:
            for _ in range(n):
                await async_run(cmd)

        return timed(lambda: call_in_portal(work))

    backend = bridge_backend()

    def bare_round_trip() -> float:
        """Physical reference: n cross-thread round trips through the bridge's own primitives.

        A token goes to a bare event-loop thread of the portal's backend with the loop's
        thread-safe call and comes back through a ``threading.Lock``, as in
        ``procfound.bridge.sync.call_in_portal``: the floor the sync shim is held to.
        """
        with LoopThread(backend) as loop:
            loop.round_trip()  # the thread is running and warm before the clock starts
            return timed(lambda: [loop.round_trip() for _ in range(n)])

    def raw_across_threads() -> float:
        """Physical reference: the pidfd-awaited spawn in a bare loop thread, called across.

        What a sync ``run`` costs at the floor with an event-loop thread: the loop floor plus
        one round trip around a child (a thread idle for a whole child wakes slower than one
        handing tokens back and forth).
        """
        require_pidfd()

        async def one() -> None:
            await spawn_and_await_pidfd(cmd)

        with LoopThread(backend) as loop:
            loop.call(one)
            return timed(lambda: [loop.call(one) for _ in range(n)])

    def bridge_round_trip() -> float:
        """Reference: procfound's own round trip, ``call_in_portal`` of a no-op coroutine."""
        try:
            from procfound.bridge.sync import call_in_portal
        except ImportError as exc:
            raise Unavailable(f"procfound.bridge.sync.call_in_portal: {exc}") from exc

        async def noop() -> None:
            pass

        call_in_portal(noop)  # the portal is started and warm before the clock starts
        return timed(lambda: [call_in_portal(noop) for _ in range(n)])

    def procfound_async(how: Any) -> float:
        async_run = procfound_attr("async_run")

        async def work() -> None:
            for _ in range(n):
                await async_run(cmd)

        return in_loop(how, work)

    return Workload(
        name="latency",
        title=f"latency: `true` run sequentially ({n} runs per sample), time per run",
        unit="op",
        work=n,
        contenders=[
            Contender(
                "subprocess.run(capture_output=True)", "stdlib", lambda: stdlib(True), "baseline"
            ),
            Contender("subprocess.run (no capture)", "stdlib", lambda: stdlib(False), "reference"),
            Contender(
                "os.posix_spawn + os.wait4, blocking, no event loop (physical)",
                "reference",
                raw_blocking,
                "reference",
            ),
            Contender(
                "posix_spawn + pidfd awaited in the loop, no library [asyncio] (physical)",
                "reference",
                lambda: raw_in_loop("anyio[asyncio]"),
                "reference",
            ),
            Contender(
                "posix_spawn + pidfd awaited in the loop, no library [trio] (physical)",
                "reference",
                lambda: raw_in_loop("anyio[trio]"),
                "reference",
            ),
            Contender(
                "asyncio.create_subprocess_exec + communicate",
                "asyncio",
                lambda: in_loop("asyncio", asyncio_peer),
            ),
            Contender(
                "anyio.run_process", "anyio[asyncio]", lambda: in_loop("anyio[asyncio]", anyio_peer)
            ),
            Contender(
                "anyio.run_process", "anyio[trio]", lambda: in_loop("anyio[trio]", anyio_peer)
            ),
            Contender("trio.run_process(capture_*)", "trio", lambda: in_loop("trio", trio_peer)),
            Contender("procfound.run", "procfound sync", procfound_sync),
            Contender(
                "procfound.async_run looped inside the portal thread (run minus this = the shim)",
                "reference",
                procfound_engine_in_portal,
                "reference",
            ),
            Contender(
                f"bare cross-thread round trip, {backend} loop's thread-safe call in, "
                "Lock out (physical; the shim's floor)",
                "reference",
                bare_round_trip,
                "reference",
            ),
            Contender(
                "procfound call_in_portal(no-op coroutine): the bridge's own round trip "
                f"[{backend}]",
                "reference",
                bridge_round_trip,
                "reference",
            ),
            Contender(
                f"posix_spawn + pidfd awaited in a bare {backend} loop thread, called across "
                "threads (physical sync floor)",
                "reference",
                raw_across_threads,
                "reference",
            ),
            Contender(
                "procfound.async_run",
                "procfound[asyncio]",
                lambda: procfound_async("anyio[asyncio]"),
            ),
            Contender(
                "procfound.async_run", "procfound[trio]", lambda: procfound_async("anyio[trio]")
            ),
        ],
    )
