"""Shared test helpers: backends, sync-call contexts, child-process helpers and leak checks."""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import anyio
import pytest
import trio

T = TypeVar("T")


def _take_sigint_again() -> None:
    """Let SIGINT interrupt this process and every interpreter the tests start, however started.

    A non-interactive shell starts a background job (``pytest ... &`` in a script) with SIGINT
    ignored, and an ignored signal stays ignored across fork and exec: the Ctrl-C tests' SIGINT,
    sent to a fresh interpreter or to this one, then did nothing and they timed out. A signal
    with a handler is reset to the default on exec instead, so installing Python's own handler
    here gives this process its KeyboardInterrupt back and every child the default disposition
    (a child interpreter then installs its handler itself), as when started from a terminal.
    Only the tests do this: procfound, like subprocess, passes dispositions on as it finds them.
    Under xdist this runs in the controller (the workers it execs start with the default) and
    again in each worker's main thread.
    """
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    ):
        signal.signal(signal.SIGINT, signal.default_int_handler)


_take_sigint_again()

PY = sys.executable


def python(code: str) -> list[str]:
    """Build argv that runs ``code`` (dedented) in a fresh Python interpreter."""
    return [PY, "-c", textwrap.dedent(code)]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run every ``@pytest.mark.anyio`` test under asyncio and under trio."""
    return str(request.param)


SyncCall = Callable[..., Any]


def _in_asyncio(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    async def main() -> T:
        return fn(*args, **kwargs)

    return asyncio.run(main())


def _in_trio(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    async def main() -> T:
        return fn(*args, **kwargs)

    return trio.run(main)


def _plain(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return fn(*args, **kwargs)


@pytest.fixture(params=["plain", "in-asyncio-loop", "in-trio-loop"])
def sync_call(request: pytest.FixtureRequest) -> SyncCall:
    """Call a sync procfound function from plain code, or from inside a running event loop.

    ``sync_call(run, ["echo", "hi"])`` runs ``run(...)`` directly, inside ``asyncio.run`` or
    inside ``trio.run`` depending on the parameter. Exceptions propagate unchanged.
    """
    return {"plain": _plain, "in-asyncio-loop": _in_asyncio, "in-trio-loop": _in_trio}[
        request.param
    ]


@pytest.fixture(params=["fork_exec", "popen"])
def spawn_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Spawn through ``_posixsubprocess.fork_exec``, or through the Popen fallback.

    procfound calls the private ``fork_exec`` only on the CPython versions whose signature it
    knows (3.11 to 3.13); later ones take the Popen fallback. Forcing the fallback here tests
    that path on every version (the spawn helper of the containment levels included).
    """
    import procfound.engine.spawn

    if request.param == "popen":
        monkeypatch.setattr(procfound.engine.spawn, "_FORK_EXEC", None)
    elif procfound.engine.spawn._FORK_EXEC is None:
        pytest.skip("this interpreter's fork_exec is not one procfound knows")
    return str(request.param)


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def wait_gone(pid: int, timeout: float = 5.0) -> bool:
    """Poll until ``pid`` is gone (or a zombie); True if it went within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.02)
    return not pid_alive(pid)


def children_of(parent: int) -> dict[int, str]:
    """Map the pid of every direct child of ``parent`` (zombies included) to its state letter."""
    found: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            found[int(entry)] = fields[0]
    return found


# The same scan, as source for scripts run in a fresh interpreter: there ``children()`` lists
# ``[pid, state]`` of that interpreter's own children (JSON-friendly).
CHILDREN_OF_ME = (
    inspect.getsource(children_of)
    + "\n\ndef children():\n"
    + "    return [[pid, state] for pid, state in children_of(os.getpid()).items()]\n"
)


def _children() -> dict[int, str]:
    return children_of(os.getpid())


def _tracked_fds() -> dict[int, str]:
    """The fds a run can leak: pipes, pidfds, /dev/null and terminals (a pty's master is
    /dev/ptmx, its slave /dev/pts/N); loops' own fds are sockets and epolls."""
    found: dict[int, str] = {}
    for entry in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{entry}")
        except OSError:
            continue
        if (
            target.startswith(("pipe:", "/dev/pts/"))
            or "pidfd" in target
            or target in ("/dev/null", "/dev/ptmx")
        ):
            found[int(entry)] = target
    return found


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves a child process, a zombie, a pipe or a pidfd behind."""
    if not sys.platform.startswith("linux") or request.node.get_closest_marker("allow_leaks"):
        yield
        return
    fds_before = _tracked_fds()
    children_before = set(_children())
    yield
    deadline = time.monotonic() + 3.0
    while True:
        leaked_children = {
            pid: state for pid, state in _children().items() if pid not in children_before
        }
        leaked_fds = {fd: t for fd, t in _tracked_fds().items() if fds_before.get(fd) != t}
        if not leaked_children and not leaked_fds:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for pid in leaked_children:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except OSError:
            pass
    pytest.fail(f"leaked children {leaked_children} / fds {leaked_fds}")


class Ticker:
    """A task that counts its turns every 10 ms: proof that the event loop stayed free meanwhile.

    Start ``ticker.run`` in a task group around the operation, cancel the group after it, then
    check ``ticker.ticks``.
    """

    def __init__(self) -> None:
        self.ticks = 0

    async def run(self) -> None:
        while True:
            await anyio.sleep(0.01)
            self.ticks += 1


# Reads stdin slowly (64 KiB every 5 ms) and prints how many bytes it got at end of file: a
# child whose pipe stays full while a writer waits.
SLOW_READER = """
import sys, time
total = 0
while True:
    chunk = sys.stdin.buffer.read1(65536)
    if not chunk:
        break
    total += len(chunk)
    time.sleep(0.005)
sys.stdout.write(f"{total}\\n")
sys.stdout.flush()
"""
