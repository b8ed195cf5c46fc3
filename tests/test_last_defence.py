"""The last line of defence: however a call ends, its tree is killed before the program exits.

Issue #22, item 1. A stream left by ``break`` whose child ignores SIGTERM and still has unread
output: ``asyncio.run`` finalises the abandoned generator and then cancels its ``aclose()`` with
a native ``Task.cancel()``, which AnyIO's shield cannot stop. The kill path used to be cut at its
first await (no SIGKILL, no reap). Now its last step is synchronous, so every ending below leaves
nothing, and asyncio prints nothing about the generator.

Each scenario runs in a fresh interpreter that prints the child's pid; the test checks that the
pid is gone once that interpreter has exited, and that no cgroup of the scenario is left.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from conftest import wait_gone

# The child: ignores SIGTERM, prints its pid, leaves more output unread, then sleeps.
CHILD = (
    "import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print(os.getpid(), flush=True); print('x' * 100000, flush=True); time.sleep(60)"
)

HEADER = f"""
import asyncio, contextlib, sys
import procfound
CMD = [sys.executable, "-c", {CHILD!r}]
def report(line):
    print("PID", line, flush=True)
"""

SCENARIOS = {
    # Abandoned, then a native cancel of the finaliser's aclose() task at asyncio.run's exit.
    "asyncio-break-then-native-cancel": """
async def main():
    async for line in procfound.async_stream(CMD, kill_grace=1.5):
        report(line)
        break
    await asyncio.sleep(0.05)  # the finaliser's aclose() task starts its grace
asyncio.run(main())
""",
    # Abandoned, the loop ends at once: asyncio.run's shutdown_asyncgens closes it.
    "asyncio-break-then-return": """
async def main():
    async for line in procfound.async_stream(CMD, kill_grace=1.5):
        report(line)
        break
asyncio.run(main())
""",
    # Several abandoned streams still referenced when the loop ends: shutdown_asyncgens closes
    # every tracked generator at once (nested generators said "already running").
    "asyncio-held-until-shutdown": """
async def main():
    held = []
    for _ in range(3):
        lines = procfound.async_stream(CMD, kill_grace=0.3)
        held.append(lines)
        async for line in lines:
            report(line)
            break
    globals()["HELD"] = held
asyncio.run(main())
""",
    "asyncio-batches-break-then-native-cancel": """
async def main():
    async for batch in procfound.async_stream_batches(CMD, kill_grace=1.5):
        report(batch[0])
        break
    await asyncio.sleep(0.05)
asyncio.run(main())
""",
    # aclose() itself cancelled natively, mid-grace.
    "asyncio-aclosing-cancelled": """
async def consume():
    async with contextlib.aclosing(procfound.async_stream(CMD, kill_grace=1.5)) as lines:
        async for line in lines:
            report(line)
            break
async def main():
    task = asyncio.ensure_future(consume())
    await asyncio.sleep(1.0)  # the body broke out; aclose() is in its grace now
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
asyncio.run(main())
""",
    "trio-break": """
import trio
async def main():
    async for line in procfound.async_stream(CMD, kill_grace=1.5):
        report(line)
        break
    await trio.sleep(0.05)
trio.run(main)
""",
    "trio-cancelled-during-aclose": """
import trio
async def consume():
    async with contextlib.aclosing(procfound.async_stream(CMD, kill_grace=1.5)) as lines:
        async for line in lines:
            report(line)
            break
async def main():
    with trio.move_on_after(1.0):
        await consume()
trio.run(main)
""",
    "sync-stream-left-in-a-global": """
LINES = procfound.stream(CMD, kill_grace=1.5)
report(next(iter(LINES)))
""",
}


def _cgroups_of(pid: int) -> set[str]:
    root = "/sys/fs/cgroup/unified"
    if not os.path.isdir(root):
        return set()
    return {name for name in os.listdir(root) if name.startswith(f"procfound-{pid}-")}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_ending_kills_the_tree_before_the_program_exits(name: str) -> None:
    script = HEADER + textwrap.dedent(SCENARIOS[name])
    with subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PROCFOUND_CONTAIN": "tree"},
    ) as proc:
        try:
            out, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
    pids = [int(line.split()[1]) for line in out.splitlines() if line.startswith("PID")]
    assert pids, (out, err)
    for pid in pids:
        assert wait_gone(pid, 5), f"{name}: child {pid} outlived the program"
    assert proc.returncode == 0, err
    assert "already running" not in err, err
    assert "error occurred" not in err, err
    assert "Traceback" not in err, err
    assert not _cgroups_of(proc.pid), f"{name}: cgroups left: {_cgroups_of(proc.pid)}"
