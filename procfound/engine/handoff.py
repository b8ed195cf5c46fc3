"""What outlives a session's own kill path: the registry of open sessions and the hand-off.

Every open :class:`~procfound.engine.session.ChildSession` is in one registry, so two ends are
covered that no caller can reach: at interpreter exit (after the portal has stopped) whatever
still runs is killed, reaped and closed (:func:`close_all_sessions`), and in a child forked while
sessions are open, their copies are *disowned*: the child closes its copies of their fds at once
(so none holds a parent's pipe open) and every later call on them does nothing, so it can never
signal, reap, read or unregister anything of the parent's (a shared epoll would be changed for
both). What an interrupted kill path could not finish (a child not reaped yet, a box not empty
yet) is handed off here and finished by the next session's start or at interpreter exit.

It does not import the session module: sessions register themselves.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import Final, Protocol

from procfound.engine.contain import Containment
from procfound.lifecycle import CLOSE_SESSIONS, at_exit

__all__ = [
    "CLOSE_NOW_WAIT",
    "close_all_sessions",
    "finish_handed_off",
    "handed_off",
    "open_sessions",
    "reap_stragglers",
    "unreaped",
]


class _Session(Protocol):
    """What the registry needs of a session (a ChildSession)."""

    def close_now(self) -> None: ...

    def disown(self) -> None: ...


# How long close_now() waits for a SIGKILLed child before leaving it to a later reap.
CLOSE_NOW_WAIT: Final = 2.0

# Children that outlived SIGKILL (uninterruptible sleep); reaped whenever a later session starts.
unreaped: set[int] = set()

# What an interrupted kill path left to finish (see ChildSession._kill_now): a SIGKILLed child
# not reaped yet (pid, None), or a SIGKILLed box not empty yet (None, box). Finished without
# blocking when the next session starts, and with a bounded wait at interpreter exit.
handed_off: list[tuple[int | None, Containment | None]] = []

# Every session whose fds are open, by id (see the module docstring).
open_sessions: dict[int, _Session] = {}


def reap_stragglers() -> None:
    for pid in list(unreaped):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            unreaped.discard(pid)
    finish_handed_off(wait=0.0)


def finish_handed_off(wait: float) -> None:
    """Reap the children and remove the boxes an interrupted kill path handed off.

    ``wait``: seconds to wait for them (0: only what is done already). SIGKILL was sent when
    they were handed off; a box is swept again in case something forked meanwhile.
    """
    give_up = time.monotonic() + wait
    while handed_off:
        for item in list(handed_off):
            pid, box = item
            if pid is not None:
                try:
                    done = os.waitpid(pid, os.WNOHANG)[0] != 0
                except ChildProcessError:
                    done = True
            else:
                assert box is not None
                box.signal(signal.SIGKILL)
                done = box.is_empty()
                if done:
                    box.close()
            if done:
                handed_off.remove(item)
        if not handed_off or time.monotonic() >= give_up:
            return
        time.sleep(0.005)


def close_all_sessions() -> None:
    """At interpreter exit: kill, reap and close every session still open, whoever owns it,
    and finish what interrupted kill paths handed off."""
    for session in list(open_sessions.values()):
        with contextlib.suppress(Exception):
            session.close_now()
    with contextlib.suppress(Exception):
        finish_handed_off(wait=CLOSE_NOW_WAIT)


def _disown_all_after_fork() -> None:
    for session in list(open_sessions.values()):
        with contextlib.suppress(Exception):
            session.disown()
    open_sessions.clear()
    handed_off.clear()  # the parent's to finish, not ours


at_exit(CLOSE_SESSIONS, close_all_sessions)  # after the portal has stopped (procfound.lifecycle)
os.register_at_fork(after_in_child=_disown_all_after_fork)
