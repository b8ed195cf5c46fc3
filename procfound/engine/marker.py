"""The environment marker of ``contain="tree"`` where no cgroup can be made, and the pinned signal.

:class:`MarkerBox` gives every process of one call an environment variable unique to the call
(its *name* is unique, so a procfound inside the command adds its own marker next to ours
instead of replacing it). The processes we may signal (every uid as root, our own otherwise)
are found through ``/proc/<pid>/environ``; each is pinned with a pidfd and checked again before
it is signalled (:func:`signal_pinned`, which the cgroup box uses too), so a pid reused by an
unrelated process is never hit. :mod:`procfound.engine.contain` chooses between the boxes.
"""

from __future__ import annotations

import itertools
import os
import secrets
import signal
from collections.abc import Iterator
from typing import Final, Protocol

__all__ = [
    "MARKER_NAME",
    "MarkerBox",
    "box_numbers",
    "in_group",
    "signal_if_marked",
    "signal_pinned",
]

# The prefix of every marker's name: the name of one call's marker is
# PROCFOUND_TREE_<pid>_<n> (a valid shell name, so no shell in the tree drops it).
MARKER_NAME: Final = "PROCFOUND_TREE"
# One number per box of this process, cgroup or marker.
box_numbers: Final = itertools.count()


class MarkerBox:
    """An environment variable unique to one call, swept in /proc (see the module docstring)."""

    name = "marker"

    def __init__(self, variable: str | None = None) -> None:
        n = next(box_numbers)
        # A name of its own per call: an inner procfound adds its marker instead of replacing
        # the outer call's, so the outer sweep still finds what the inner one starts.
        self.variable = variable or f"{MARKER_NAME}_{os.getpid()}_{n}"
        self.value = f"{os.getpid()}-{n}-{secrets.token_hex(8)}"
        self._entry = f"{self.variable}={self.value}".encode()

    def prepare(
        self, argv: list[str], env: dict[str, str] | None
    ) -> tuple[list[str], dict[str, str] | None]:
        full = dict(os.environ) if env is None else dict(env)
        full[self.variable] = self.value
        return argv, full

    def members(self) -> list[int]:
        return [pid for pid in _pids_we_may_signal() if _environ_has(pid, self._entry)]

    def is_empty(self) -> bool:
        return not self.members()

    def signal(self, sig: int, skip_group: int | None = None) -> None:
        for pid in self.members():
            if sig == signal.SIGKILL or not in_group(pid, skip_group):
                signal_if_marked(pid, self._entry, sig)

    def close(self) -> None:
        pass


def in_group(pid: int, group: int | None) -> bool:
    if group is None:
        return False
    try:
        return os.getpgid(pid) == group
    except OSError:
        return False


def _pids_we_may_signal() -> Iterator[int]:
    """Every process but us that we may signal: all of them as root, our uid's otherwise.

    A descendant that runs under another uid (``user=``, a root service whose workers drop
    privileges) is only reachable by root, and root reaches it.
    """
    me = os.getpid()
    uid = None if os.geteuid() == 0 else os.getuid()
    try:
        entries = os.scandir("/proc")
    except OSError:
        return
    with entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            if pid == me:
                continue
            if uid is not None:
                try:
                    if entry.stat().st_uid != uid:
                        continue
                except OSError:
                    continue
            yield pid


def _environ_has(pid: int, entry: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ:
            data = environ.read()
    except OSError:  # gone, or not ours to read
        return False
    return entry in data.split(b"\0")


def signal_if_marked(pid: int, entry: bytes, sig: int) -> bool:
    """Signal ``pid`` only if, pinned by a pidfd, its environment still holds ``entry``.

    The pidfd names one process for good: if ``pid`` was reused after the scan, either the
    pidfd names the new process, whose environment lacks the marker (not signalled), or the
    open fails (gone). Returns True when the signal was sent.
    """
    return signal_pinned(pid, sig, lambda pid: _environ_has(pid, entry))


def signal_pinned(pid: int, sig: int, still_ours: _Check) -> bool:
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:  # no pidfd (not Linux): nothing can be pinned, so nothing is sent
        return False
    try:
        pidfd = pidfd_open(pid)
    except OSError:
        return False
    try:
        if not still_ours(pid):
            return False
        signal.pidfd_send_signal(pidfd, sig)
        return True
    except OSError:
        return False
    finally:
        os.close(pidfd)


class _Check(Protocol):
    def __call__(self, pid: int, /) -> bool: ...
