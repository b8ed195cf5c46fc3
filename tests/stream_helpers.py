"""What the streaming tests share: the children they stream (a tree that ticks, a stderr flood,
interleaved output) and the checks that a tree is gone."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterable
from contextlib import suppress

import anyio
import pytest
from conftest import pid_alive, python, wait_gone


def ticking_tree(interval: float) -> list[str]:
    """A child that starts a grandchild (holding the pipes), prints both pids, then ticks."""
    return python(
        f"""
        import os, subprocess, time
        grandchild = subprocess.Popen(["sleep", "30"])
        print(f"child={{os.getpid()}} grandchild={{grandchild.pid}}", flush=True)
        i = 0
        while True:
            print(f"tick {{i}}", flush=True)
            i += 1
            time.sleep({interval})
        """
    )


def tree_pids(line: str) -> list[int]:
    """The child and grandchild pids from a ``ticking_tree``'s first line."""
    found = re.fullmatch(r"child=(\d+) grandchild=(\d+)", line)
    assert found, f"unexpected first line {line!r}"
    return [int(found[1]), int(found[2])]


def kill_leftovers(pids: Iterable[int]) -> None:
    """SIGKILL whatever survived (a failing test must not leave orphans behind)."""
    for pid in pids:
        if pid_alive(pid):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def seconds_until_gone(pids: Iterable[int], since: float, limit: float = 5.0) -> float:
    """Seconds from ``since`` until every pid is gone (about ``limit`` if one never goes)."""
    for pid in pids:
        wait_gone(pid, max(0.0, since + limit - time.monotonic()))
    return time.monotonic() - since


async def seconds_until_gone_async(pids: Iterable[int], since: float, limit: float = 5.0) -> float:
    """Like :func:`seconds_until_gone`, but lets the event loop run while it polls."""
    for pid in pids:
        while pid_alive(pid) and time.monotonic() < since + limit:
            await anyio.sleep(0.01)
    return time.monotonic() - since


def assert_same_lines(got: list[str], expected: list[str]) -> None:
    """Compare long line lists with a short message (pytest's diff of 1M items is slow)."""
    if got == expected:
        return
    first = next(
        (i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b),
        min(len(got), len(expected)),
    )
    pytest.fail(
        f"{len(got)} lines, expected {len(expected)}; first difference at index {first}: "
        f"got {got[first : first + 3]!r}, expected {expected[first : first + 3]!r}"
    )


SLOW_SECOND_LINE = python("print('a', flush=True); import time; time.sleep(3); print('b')")

# A reader that never drains stderr would leave this child blocked in its write; the alarm ends
# it after 20 s so such a bug fails the test instead of hanging the suite.
STDERR_FLOOD_FIRST = python(
    """
    import signal, sys
    signal.alarm(20)
    sys.stderr.buffer.write(b"e" * (4 << 20))
    sys.stderr.flush()
    print("out after 4 MiB of stderr", flush=True)
    print("second out")
    """
)

STDERR_FLOOD_LINES = ["out after 4 MiB of stderr", "second out"]

INTERLEAVED = python(
    """
    import os
    for i in range(200):
        os.write(1, f"out {i}\\n".encode())
        os.write(2, f"err {i}\\n".encode())
    """
)

INTERLEAVED_MERGED = [f"{kind} {i}" for i in range(200) for kind in ("out", "err")]

TIMEOUT = 1.0

TIMEOUT_TREE = ticking_tree(0.2)

CHATTY_TREE = ticking_tree(0.005)

LEAVE_LIMIT = 1.5  # the contract says 1 s; a little slack for a loaded machine
