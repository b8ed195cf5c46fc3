"""Containing a whole process tree: a cgroup v2 per call, or an environment marker swept in /proc.

The process group (the engine's default) reaches every descendant that stays in it. A descendant
that calls ``setsid``, a daemon that double-forks, or a shell with job control leaves it. For
``contain="tree"`` the engine uses the strongest mechanism this machine allows:

* :class:`CgroupBox`: a cgroup v2 directory made for the call. The child enters it before it can
  fork: a tiny ``/bin/sh`` trampoline writes itself into ``cgroup.procs`` and then execs the
  command, so nothing the command starts can be outside it. It is ended with ``cgroup.kill`` and
  waited on through ``cgroup.events`` ("populated 0"). It also catches a descendant that clears
  its environment.
* :class:`MarkerBox`: where no cgroup is writable, an environment variable unique to the call.
  Every descendant inherits it unless it clears its environment. Processes of our uid are found
  through ``/proc/<pid>/environ``; each is pinned with a pidfd and its marker read again before
  it is signalled, so a pid reused by an unrelated process is never hit.

``PR_SET_CHILD_SUBREAPER`` is not used: it is process-wide and would adopt (and steal the exit
statuses of) every orphan of the user's own code.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import signal
import sys
import time
from collections.abc import Iterator
from typing import Final, Protocol

import anyio

__all__ = [
    "CONTAIN_LEVELS",
    "CgroupBox",
    "Containment",
    "MarkerBox",
    "cgroup_root",
    "empty_box",
    "empty_box_now",
    "open_containment",
    "signal_if_marked",
]

CONTAIN_LEVELS: Final = ("group", "tree", "cgroup")
MARKER_NAME: Final = "PROCFOUND_TREE"
_IS_LINUX: Final = sys.platform.startswith("linux")
_POLL: Final = 0.005
_calls = itertools.count()
# The trampoline that puts the command in its cgroup before it runs: "echo 0" moves the
# writing process itself (the shell), and exec keeps the cgroup.
_CGROUP_SCRIPT: Final = 'echo 0 >"$0" || exit 125; exec "$@"'


class Containment(Protocol):
    """What the kill path needs of a tree-containment mechanism."""

    name: str

    def prepare(
        self, argv: list[str], env: dict[str, str] | None
    ) -> tuple[list[str], dict[str, str]]:
        """The argv and full environment that start the command inside the box."""
        ...

    def members(self) -> list[int]:
        """Pids of the processes still in the box (a snapshot)."""
        ...

    def signal(self, sig: int, skip_group: int | None = None) -> None:
        """Send ``sig`` to every process in the box (but those in process group ``skip_group``,
        which the caller has signalled already: a handler must not run twice)."""
        ...

    def close(self) -> None:
        """Release what the box holds (a cgroup directory); the box must be empty."""
        ...


def _full_env(env: dict[str, str] | None) -> dict[str, str]:
    return dict(os.environ) if env is None else dict(env)


# -- the cgroup -------------------------------------------------------------------------------

_cgroup_root: str | bool | None = False  # False: not looked up yet


def cgroup_root() -> str | None:
    """The writable cgroup v2 directory of this process with ``cgroup.kill``, or None.

    Looked up once: the cgroup2 mount (``/proc/self/mountinfo``, any mount point: hybrid
    systems mount it at ``/sys/fs/cgroup/unified``), our own cgroup in it (``/proc/self/cgroup``,
    the ``0::`` line), and a probe directory made and removed there.
    """
    global _cgroup_root
    if _cgroup_root is False:
        _cgroup_root = _find_cgroup_root()
    return _cgroup_root if isinstance(_cgroup_root, str) else None


def _find_cgroup_root() -> str | None:
    if not _IS_LINUX:
        return None
    try:
        with open("/proc/self/mountinfo") as mounts:
            mount = next(
                (line.split()[4] for line in mounts if " - cgroup2 " in line),
                None,
            )
        with open("/proc/self/cgroup") as groups:
            ours = next((line[3:].strip() for line in groups if line.startswith("0::")), None)
    except OSError:
        return None
    if mount is None or ours is None:
        return None
    base = os.path.join(mount, ours.lstrip("/"))
    if not os.path.exists(os.path.join(base, "cgroup.procs")):
        return None
    _remove_stale_boxes(base)
    probe = os.path.join(base, f"procfound-probe-{os.getpid()}")
    try:
        os.mkdir(probe)
    except OSError:
        return None
    try:
        has_kill = os.path.exists(os.path.join(probe, "cgroup.kill"))  # Linux 5.14+
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(probe)
    return base if has_kill else None


def _remove_stale_boxes(base: str) -> None:
    """Remove the empty cgroups that a procfound process killed outright (SIGKILL) left behind.

    Only directories named for a process that no longer exists are touched, and ``rmdir``
    removes a cgroup only when nothing is in it.
    """
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        owner = name.split("-")[1] if name.startswith("procfound-") else ""
        if not owner.isdigit() or os.path.exists(f"/proc/{owner}"):
            continue
        with contextlib.suppress(OSError):
            os.rmdir(os.path.join(base, name))


class CgroupBox:
    """A cgroup v2 directory for one call (see the module docstring)."""

    name = "cgroup"

    def __init__(self, root: str) -> None:
        self.path = os.path.join(root, f"procfound-{os.getpid()}-{next(_calls)}")
        os.mkdir(self.path)

    def prepare(
        self, argv: list[str], env: dict[str, str] | None
    ) -> tuple[list[str], dict[str, str]]:
        procs = os.path.join(self.path, "cgroup.procs")
        return ["/bin/sh", "-c", _CGROUP_SCRIPT, procs, *argv], _full_env(env)

    def members(self) -> list[int]:
        try:
            with open(os.path.join(self.path, "cgroup.procs")) as procs:
                return [int(line) for line in procs if line.strip()]
        except OSError:
            return []

    def populated(self) -> bool:
        try:
            with open(os.path.join(self.path, "cgroup.events")) as events:
                return "populated 1" in events.read()
        except OSError:
            return False

    def signal(self, sig: int, skip_group: int | None = None) -> None:
        if sig == signal.SIGKILL:
            # The kernel kills every member, forking or not, in one step.
            with (
                contextlib.suppress(OSError),
                open(os.path.join(self.path, "cgroup.kill"), "w") as f,
            ):
                f.write("1")
            return
        for pid in self.members():
            if not _in_group(pid, skip_group):
                _signal_pinned(pid, sig, lambda pid: _in_cgroup(pid, self.path))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.rmdir(self.path)


def _in_cgroup(pid: int, path: str) -> bool:
    try:
        with open(f"/proc/{pid}/cgroup") as groups:
            line = next((line for line in groups if line.startswith("0::")), "")
    except OSError:
        return False
    return path.endswith(line[3:].strip()) and line[3:].strip() != "/"


# -- the environment marker -------------------------------------------------------------------


class MarkerBox:
    """An environment variable unique to one call, swept in /proc (see the module docstring)."""

    name = "marker"

    def __init__(self, variable: str = MARKER_NAME) -> None:
        self.variable = variable
        self.value = f"{os.getpid()}-{next(_calls)}-{secrets.token_hex(8)}"
        self._entry = f"{variable}={self.value}".encode()

    def prepare(
        self, argv: list[str], env: dict[str, str] | None
    ) -> tuple[list[str], dict[str, str]]:
        full = _full_env(env)
        full[self.variable] = self.value
        return argv, full

    def members(self) -> list[int]:
        return [pid for pid in _pids_of_our_uid() if _environ_has(pid, self._entry)]

    def signal(self, sig: int, skip_group: int | None = None) -> None:
        for pid in self.members():
            if sig == signal.SIGKILL or not _in_group(pid, skip_group):
                signal_if_marked(pid, self._entry, sig)

    def close(self) -> None:
        pass


def _in_group(pid: int, group: int | None) -> bool:
    if group is None:
        return False
    try:
        return os.getpgid(pid) == group
    except OSError:
        return False


def _pids_of_our_uid() -> Iterator[int]:
    uid, me = os.getuid(), os.getpid()
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
    return _signal_pinned(pid, sig, lambda pid: _environ_has(pid, entry))


def _signal_pinned(pid: int, sig: int, still_ours: _Check) -> bool:
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


# -- choosing, and ending ---------------------------------------------------------------------


def open_containment(level: str) -> Containment | None:
    """The box for ``level``: None for "group"; cgroup or marker for "tree"; cgroup for "cgroup".

    Raises:
        LookupError: For "cgroup" where no writable cgroup v2 with ``cgroup.kill`` exists (the
            message names what is missing).
        OSError: If the cgroup directory cannot be made.
    """
    if level == "group":
        return None
    root = cgroup_root()
    if root is not None:
        return CgroupBox(root)
    if level == "cgroup":
        raise LookupError(
            "contain='cgroup' needs a writable cgroup v2 hierarchy with cgroup.kill (Linux 5.14+, "
            "a cgroup2 mount, and write access to this process's own cgroup directory); "
            "none was found. contain='tree' falls back to an environment marker."
        )
    if not _IS_LINUX:
        raise LookupError("contain='tree' needs Linux (/proc and pidfd)")
    return MarkerBox()


async def empty_box(
    box: Containment, stop_signal: int, grace: float, kill_wait: float, *, signalled: bool = False
) -> list[int]:
    """Stop everything still in ``box``: ``stop_signal``, ``grace`` seconds, then SIGKILL.

    ``signalled``: the stop signal was already sent (the kill schedule's polite step); only the
    rest of its grace is waited. Bounded by ``grace + kill_wait``; returns the pids that were
    still there at the end (normally none). The caller shields it.
    """
    if not box.members():
        return []
    if grace > 0:
        if not signalled:
            box.signal(stop_signal)
            if stop_signal != signal.SIGCONT:
                box.signal(signal.SIGCONT)  # a stopped process cannot act on the stop signal
        if await _wait_empty(box, grace):
            return []
    box.signal(signal.SIGKILL)
    if await _wait_empty(box, kill_wait, resend=True):
        return []
    return box.members()


async def _wait_empty(box: Containment, seconds: float, resend: bool = False) -> bool:
    give_up = anyio.current_time() + seconds
    while box.members():
        if anyio.current_time() >= give_up:
            return False
        await anyio.sleep(_POLL)
        if resend:  # a marked process forked after the sweep: sweep again
            box.signal(signal.SIGKILL)
    return True


def empty_box_now(box: Containment, wait: float = 2.0) -> list[int]:
    """:func:`empty_box` without an event loop (interpreter exit): SIGKILL, bounded wait."""
    give_up = time.monotonic() + wait
    while True:
        box.signal(signal.SIGKILL)
        left = box.members()
        if not left or time.monotonic() >= give_up:
            return left
        time.sleep(_POLL)
