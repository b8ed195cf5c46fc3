"""The live ManagedProcesses of this interpreter: stopped at its exit, forgotten in a fork.

A launched ManagedProcess is tracked here until it is stopped. At interpreter exit (a hook the
portal runs before it stops) each one still tracked is cleaned up, so no service outlives its
host; in a child forked while they run, they are forgotten: their children are the parent's,
and the forked child must neither wait on their owners (they live in the parent's portal
thread) nor kill them when it exits.
"""

from __future__ import annotations

import contextlib
import os
import weakref
from typing import Protocol

from procfound.bridge.portal import register_shutdown_hook

__all__ = ["Tracked", "track", "untrack"]


class Tracked(Protocol):
    """What the registry needs of a tracked service."""

    def cleanup(self) -> None:
        """Stop the child if it still runs and close everything."""
        ...

    def _disown(self) -> None:
        """Forget the child (in a forked interpreter: it is the parent's)."""
        ...


_live: weakref.WeakSet[Tracked] = weakref.WeakSet()


def track(service: Tracked) -> None:
    """Stop ``service`` at interpreter exit unless it was stopped before (weakly held)."""
    _live.add(service)


def untrack(service: Tracked) -> None:
    """``service`` was stopped: nothing to do for it at exit."""
    _live.discard(service)


def _stop_all_at_exit() -> None:
    for service in list(_live):
        with contextlib.suppress(Exception):
            service.cleanup()


def _forget_after_fork() -> None:
    for service in list(_live):
        service._disown()
    _live.clear()


register_shutdown_hook(_stop_all_at_exit)
os.register_at_fork(after_in_child=_forget_after_fork)
