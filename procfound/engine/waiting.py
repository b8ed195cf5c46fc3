"""Waiting for a child's pipes and exit with one wake-up: epoll + pidfd, or a polling fallback.

A run needs to wait on up to four things at once (stdout, stderr, stdin for writing, and the
child's exit) without a task per thing, because a task group may not span a ``yield`` in an async
generator (``async_stream``) and tasks cost a wake-up each. So each child gets one readiness set,
and the coroutine awaits that set's single fd with ``anyio.wait_readable``, which works the same
on asyncio and trio and never touches asyncio's child watcher (a thread per child on 3.11).

The implementation is chosen once, in :func:`open_readiness_set`:

* :class:`EpollSet` (Linux): an epoll holding the pipes and the child's pidfd.
* :class:`PollingSet` (macOS, kernels without pidfd): ``select.poll`` for the pipes plus
  ``waitid(WNOWAIT)`` for exit, with a back-off sleep between polls.
"""

from __future__ import annotations

import os
import select
from dataclasses import dataclass, field
from typing import Final, Protocol

import anyio
import anyio.lowlevel

__all__ = ["ReadinessSet", "Ready", "child_has_exited", "open_readiness_set", "peek_returncode"]

_EPOLLIN: Final = getattr(select, "EPOLLIN", 1)
_EPOLLOUT: Final = getattr(select, "EPOLLOUT", 4)
_POLL_BACKOFF_MIN: Final = 0.001
_POLL_BACKOFF_MAX: Final = 0.05


@dataclass(slots=True)
class Ready:
    """What one wait found: readable fds, writable fds, and whether the child has exited."""

    readable: list[int] = field(default_factory=list)
    writable: list[int] = field(default_factory=list)
    exited: bool = False


class ReadinessSet(Protocol):
    """The fds of one child that a coroutine waits on together."""

    def add_reader(self, fd: int) -> None: ...
    def add_writer(self, fd: int) -> None: ...
    def remove(self, fd: int) -> None: ...
    async def wait(self) -> Ready: ...
    def close(self) -> None: ...
    def fileno(self) -> int | None: ...


def child_has_exited(pid: int) -> bool:
    """True once ``pid`` (our child) has exited, without reaping it.

    ``WNOWAIT`` leaves the zombie in place, so the pid and its process-group id stay reserved
    until the tree has been swept and :func:`os.waitpid` reaps it.
    """
    try:
        result = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return result is not None and result.si_pid != 0


def peek_returncode(pid: int) -> int | None:
    """The exit code of our exited child ``pid`` (``-N`` for signal N), without reaping it."""
    try:
        result = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return None
    if result is None or result.si_pid == 0:
        return None
    if result.si_code == os.CLD_EXITED:
        return result.si_status
    return -result.si_status


class EpollSet:
    """An epoll holding one child's pipes and its pidfd (Linux)."""

    __slots__ = ("_epoll", "_pidfd")

    def __init__(self, pidfd: int) -> None:
        self._epoll = select.epoll()
        self._pidfd = pidfd
        self._epoll.register(pidfd, _EPOLLIN)

    def add_reader(self, fd: int) -> None:
        self._epoll.register(fd, _EPOLLIN)

    def add_writer(self, fd: int) -> None:
        self._epoll.register(fd, _EPOLLOUT)

    def remove(self, fd: int) -> None:
        self._epoll.unregister(fd)

    def fileno(self) -> int | None:
        """The epoll's fd: readable while something in the set is ready (it can itself be
        waited on in another epoll, as a pipeline waits on its stages)."""
        return self._epoll.fileno()

    async def wait(self) -> Ready:
        events = self._epoll.poll(0)
        if events:
            # Something is ready already: still give other tasks (and cancellation) a turn.
            await anyio.lowlevel.checkpoint()
        else:
            await anyio.wait_readable(self._epoll.fileno())
            events = self._epoll.poll(0)
        ready = Ready()
        for fd, mask in events:
            if fd == self._pidfd:
                ready.exited = True
            elif mask & _EPOLLOUT:
                ready.writable.append(fd)
            else:  # EPOLLIN, EPOLLHUP or EPOLLERR: a read will tell which
                ready.readable.append(fd)
        return ready

    def close(self) -> None:
        self._epoll.close()


class PollingSet:
    """``select.poll`` for the pipes and ``waitid`` for exit, polled with a back-off."""

    __slots__ = ("_backoff", "_pid", "_poll")

    def __init__(self, pid: int) -> None:
        self._poll = select.poll()
        self._pid = pid
        self._backoff = _POLL_BACKOFF_MIN

    def add_reader(self, fd: int) -> None:
        self._poll.register(fd, select.POLLIN)

    def add_writer(self, fd: int) -> None:
        self._poll.register(fd, select.POLLOUT)

    def remove(self, fd: int) -> None:
        self._poll.unregister(fd)

    def fileno(self) -> int | None:
        """None: exit is polled, so there is no fd that becomes ready when the child exits."""
        return None

    async def wait(self) -> Ready:
        while True:
            ready = Ready(exited=child_has_exited(self._pid))
            for fd, mask in self._poll.poll(0):
                if mask & select.POLLOUT:
                    ready.writable.append(fd)
                else:
                    ready.readable.append(fd)
            if ready.exited or ready.readable or ready.writable:
                self._backoff = _POLL_BACKOFF_MIN
                await anyio.lowlevel.checkpoint()
                return ready
            await anyio.sleep(self._backoff)
            self._backoff = min(self._backoff * 2, _POLL_BACKOFF_MAX)

    def close(self) -> None:
        pass


def open_readiness_set(pid: int, pidfd: int | None) -> ReadinessSet:
    """The best readiness set this platform offers for the child ``pid``."""
    if pidfd is not None and hasattr(select, "epoll"):
        return EpollSet(pidfd)
    return PollingSet(pid)
