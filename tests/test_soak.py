"""Soak (issue 8): thousands of mixed runs, streams and managed launches, with random timeouts
and cancellations, at bounded concurrency; at the end no fd growth, no zombie, RSS growth under
10 MiB.

Deselected by default: it runs when ``PROCFOUND_SOAK=1`` is set, or when the marker is asked for
explicitly (``pytest -m soak``, as ``nox -s soak`` does). ``PROCFOUND_SOAK_N`` sets the number
of operations per backend (default 10,000); ``PROCFOUND_SOAK_SEED`` the random seed.
"""

from __future__ import annotations

import gc
import os
import random
import sys
import time
from collections import Counter
from contextlib import aclosing
from typing import Final

import anyio
import anyio.to_thread
import pytest
from conftest import children_of

from procfound import (
    ManagedProcess,
    ProcessError,
    ProcessTimeoutError,
    async_run,
    async_stream,
    run,
    wait_for_process_output,
)

pytestmark = [
    pytest.mark.soak,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc checks"),
]

COUNT: Final = int(os.environ.get("PROCFOUND_SOAK_N", "10000"))
SEED: Final = int(os.environ.get("PROCFOUND_SOAK_SEED", "20261124"))
CONCURRENCY: Final = 32
WARMUP: Final = 200
RSS_GROWTH_LIMIT: Final = 10 * 1024 * 1024


def soak_requested(config: pytest.Config) -> bool:
    if os.environ.get("PROCFOUND_SOAK") == "1":
        return True
    markexpr = str(config.getoption("markexpr", "") or "")
    return "soak" in markexpr and "not soak" not in markexpr


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd")) - 1  # minus the one listdir used


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def children() -> dict[int, str]:
    return children_of(os.getpid())


async def one_operation(rng: random.Random, outcomes: Counter[str]) -> None:
    """One random operation; its outcome (or the exception it raised) is counted."""
    kind = rng.choices(
        [
            "run",
            "run-timeout",
            "run-cancel",
            "run-input",
            "run-fails",
            "stream",
            "stream-break",
            "stream-timeout",
            "managed",
            "sync-run",
            "spawn-error",
        ],
        weights=[20, 8, 8, 6, 4, 12, 6, 4, 8, 8, 2],
    )[0]
    try:
        if kind == "run":
            result = await async_run(["echo", "soak"])
            assert result.stdout == "soak\n"
        elif kind == "run-timeout":
            await async_run(
                ["sh", "-c", f"sleep {rng.uniform(0, 0.2):.3f}; echo x"],
                timeout=rng.uniform(0.01, 0.2),
            )
        elif kind == "run-cancel":
            with anyio.move_on_after(rng.uniform(0, 0.1)):
                await async_run(["sh", "-c", "sleep 5 & sleep 5"])
        elif kind == "run-input":
            data = rng.randbytes(rng.randrange(0, 256 * 1024))
            result = await async_run(["cat"], input=data, text=False)
            assert result.stdout == data
        elif kind == "run-fails":
            await async_run(["sh", "-c", "echo out; echo err >&2; exit 3"])
        elif kind in ("stream", "stream-break", "stream-timeout"):
            count = rng.randrange(1, 5000)
            timeout = rng.uniform(0.01, 0.1) if kind == "stream-timeout" else None
            command = ["sh", "-c", f"seq {count}; sleep 1"] if timeout else ["seq", str(count)]
            stop_at = rng.randrange(1, count + 1) if kind == "stream-break" else None
            seen = 0
            async with aclosing(async_stream(command, timeout=timeout)) as lines:
                async for _ in lines:
                    seen += 1
                    if seen == stop_at:
                        break
            assert seen == (stop_at or count)
        elif kind == "managed":
            async with ManagedProcess(
                ["sh", "-c", "echo ready; exec sleep 5"], stderr_relay=False
            ) as proc:
                await wait_for_process_output(proc, ["ready"], timeout=10)
        elif kind == "sync-run":
            result = await anyio.to_thread.run_sync(run, ["echo", "sync"])
            assert result.stdout == "sync\n"
        else:
            await async_run(["/nonexistent/procfound-soak"])
        outcomes[f"{kind}: ok"] += 1
    except ProcessTimeoutError:
        outcomes[f"{kind}: timeout"] += 1
    except ProcessError:
        outcomes[f"{kind}: error"] += 1


async def soak(count: int, rng: random.Random, outcomes: Counter[str]) -> None:
    """``count`` operations by CONCURRENCY workers pulling from one counter."""
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await one_operation(rng, outcomes)

    async with anyio.create_task_group() as tg:
        for _ in range(CONCURRENCY):
            tg.start_soon(worker)


@pytest.mark.anyio
@pytest.mark.timeout(3600)
async def test_soak_mixed_operations_leave_no_fd_no_zombie_and_little_memory(
    request: pytest.FixtureRequest, anyio_backend: str
) -> None:
    if not soak_requested(request.config):
        pytest.skip("soak: set PROCFOUND_SOAK=1 or select it with -m soak (nox -s soak)")
    rng = random.Random(f"{SEED}-{anyio_backend}")
    outcomes: Counter[str] = Counter()
    await soak(WARMUP, rng, outcomes)  # warm: portal, thread pools, pipe buffers, caches
    gc.collect()
    fds_before, rss_before = fd_count(), rss_bytes()
    outcomes.clear()
    started = time.monotonic()
    await soak(COUNT, rng, outcomes)
    seconds = time.monotonic() - started
    with anyio.fail_after(10):
        while children():
            await anyio.sleep(0.05)
    gc.collect()
    fds_after, rss_after = fd_count(), rss_bytes()
    print(
        f"\nsoak[{anyio_backend}]: {sum(outcomes.values())} operations in {seconds:.1f}s "
        f"({sum(outcomes.values()) / seconds:.0f}/s), concurrency {CONCURRENCY}; "
        f"fds {fds_before} -> {fds_after}; "
        f"RSS {rss_before / 2**20:.1f} MiB -> {rss_after / 2**20:.1f} MiB "
        f"({(rss_after - rss_before) / 2**20:+.1f} MiB); zombies/children left: {children()}"
    )
    for outcome, n in sorted(outcomes.items()):
        print(f"  {outcome:28} {n}")
    assert sum(outcomes.values()) == COUNT
    assert fds_after <= fds_before, f"fd growth: {fds_before} -> {fds_after}"
    assert children() == {}
    assert rss_after - rss_before < RSS_GROWTH_LIMIT
