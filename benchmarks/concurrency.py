"""Workload ``concurrency``: many ``true`` children at once, time for the whole batch."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio

from benchmarks.harness import (
    Contender,
    LoopKind,
    Workload,
    in_loop,
    procfound_attr,
    require_pidfd,
    spawn_and_await_pidfd,
    timed,
)

POOL_THREADS = 32


def workload(quick: bool) -> Workload:
    cmd = [shutil.which("true") or "/bin/true"]
    n = 50 if quick else 200

    def pool(call: Callable[[], object]) -> float:
        # The pool is created inside the clock: its threads start lazily on submit anyway.
        def work() -> None:
            with ThreadPoolExecutor(POOL_THREADS) as executor:
                for future in [executor.submit(call) for _ in range(n)]:
                    future.result()

        return timed(work)

    async def asyncio_peer() -> None:
        async def one() -> None:
            proc = await asyncio.create_subprocess_exec(
                *cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            await proc.communicate()
            assert proc.returncode == 0

        await asyncio.gather(*(one() for _ in range(n)))

    async def anyio_peer() -> None:
        async with anyio.create_task_group() as tg:
            for _ in range(n):
                tg.start_soon(anyio.run_process, cmd)

    async def trio_peer() -> None:
        import trio

        async def one() -> None:
            await trio.run_process(cmd, capture_stdout=True, capture_stderr=True)

        async with trio.open_nursery() as nursery:
            for _ in range(n):
                nursery.start_soon(one)

    def raw_in_loop(how: LoopKind) -> float:
        """Physical reference: n bare posix_spawn children, each pidfd awaited in a task."""
        require_pidfd()

        async def work() -> None:
            async with anyio.create_task_group() as tg:
                for _ in range(n):
                    tg.start_soon(spawn_and_await_pidfd, cmd)

        return in_loop(how, work)

    def procfound_sync() -> float:
        run = procfound_attr("run")
        return pool(lambda: run(cmd))

    def procfound_async(how: Any) -> float:
        async_run = procfound_attr("async_run")

        async def work() -> None:
            async with anyio.create_task_group() as tg:
                for _ in range(n):
                    tg.start_soon(async_run, cmd)

        return in_loop(how, work)

    return Workload(
        name="concurrency",
        title=f"concurrency: {n} `true` at once, time for the batch",
        unit="op",
        work=1,
        contenders=[
            Contender(
                f"{POOL_THREADS}-thread pool of subprocess.run(capture_output=True)",
                "stdlib",
                lambda: pool(lambda: subprocess.run(cmd, capture_output=True, check=True)),
                "baseline",
            ),
            Contender(
                "task group of posix_spawn + pidfd awaited, no library [asyncio] (physical)",
                "reference",
                lambda: raw_in_loop("anyio[asyncio]"),
                "reference",
            ),
            Contender(
                "task group of posix_spawn + pidfd awaited, no library [trio] (physical)",
                "reference",
                lambda: raw_in_loop("anyio[trio]"),
                "reference",
            ),
            Contender(
                "asyncio.gather(create_subprocess_exec + communicate)",
                "asyncio",
                lambda: in_loop("asyncio", asyncio_peer),
            ),
            Contender(
                "task group of anyio.run_process",
                "anyio[asyncio]",
                lambda: in_loop("anyio[asyncio]", anyio_peer),
            ),
            Contender(
                "task group of anyio.run_process",
                "anyio[trio]",
                lambda: in_loop("anyio[trio]", anyio_peer),
            ),
            Contender(
                "nursery of trio.run_process(capture_*)", "trio", lambda: in_loop("trio", trio_peer)
            ),
            Contender(
                f"{POOL_THREADS}-thread pool of procfound.run", "procfound sync", procfound_sync
            ),
            Contender(
                "task group of procfound.async_run",
                "procfound[asyncio]",
                lambda: procfound_async("anyio[asyncio]"),
            ),
            Contender(
                "task group of procfound.async_run",
                "procfound[trio]",
                lambda: procfound_async("anyio[trio]"),
            ),
        ],
    )
