"""The two clocks of a running command: its deadline and its idle timer.

The idle timer is an observer of the owner's reads: after each wake-up the caller tells the
:class:`Watch` (:meth:`Watch.moved`), which compares the bytes its sinks have read so far with
what it saw last; any new byte on stdout or stderr restarts the timer. Every wait of the owner
is bounded by :meth:`Watch.until`, so a child that goes quiet (or a grandchild that holds the
pipe and says nothing) is noticed within the idle time, whatever it does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final, Literal

import anyio

from procfound.engine.session import ChildSession

__all__ = ["Ending", "Watch", "watch_until_exit"]

Ending = Literal["exit", "timeout", "idle"]
_NEVER: Final = math.inf


class Watch:
    """A deadline (``timeout`` seconds from now) and an idle limit (``idle`` seconds without a
    new byte, as counted by ``activity``); either may be None."""

    __slots__ = ("_activity", "_seen", "deadline", "idle", "idle_at")

    def __init__(
        self, timeout: float | None, idle: float | None, activity: Callable[[], int]
    ) -> None:
        now = anyio.current_time()
        self.deadline = _NEVER if timeout is None else now + timeout
        self.idle = idle
        self.idle_at = _NEVER if idle is None else now + idle
        self._activity = activity
        self._seen = activity()

    def until(self) -> float:
        """When the next wait must end."""
        return min(self.deadline, self.idle_at)

    def expired(self) -> Ending:
        """Which clock ran out (called when a wait bounded by :meth:`until` was cut)."""
        return "timeout" if self.deadline <= self.idle_at else "idle"

    def moved(self) -> None:
        """After a wake-up: restart the idle timer if a byte arrived since the last one."""
        if self.idle is None:
            return
        seen = self._activity()
        if seen != self._seen:
            self._seen = seen
            self.idle_at = anyio.current_time() + self.idle

    def restart(self) -> None:
        """Restart the idle timer (after the consumer held the stream: its time is not the
        child's silence)."""
        if self.idle is not None:
            self._seen = self._activity()
            self.idle_at = anyio.current_time() + self.idle


async def watch_until_exit(session: ChildSession, watch: Watch) -> Ending:
    """Move bytes until the child exits and its pipes are drained, or a clock runs out."""
    exited = False
    while not exited:
        with anyio.move_on_at(watch.until()) as scope:
            exited = await session.step()
        if scope.cancelled_caught:
            return watch.expired()
        watch.moved()
    with anyio.move_on_at(watch.deadline) as scope:
        await session.drain()
    return "timeout" if scope.cancelled_caught else "exit"
