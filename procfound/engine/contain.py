"""Containing a whole process tree: a cgroup v2 per call, or an environment marker swept in /proc.

The process group (the engine's default) reaches every descendant that stays in it. A descendant
that calls ``setsid``, a daemon that double-forks, or a shell with job control leaves it. For
``contain="tree"`` the engine uses the strongest mechanism this machine allows:

* :class:`CgroupBox`: a cgroup v2 directory made for the call. The child enters it before it can
  fork (a spawn helper, ``engine/spawn.py``, writes itself into ``cgroup.procs`` and then
  execs the command), so nothing the command starts can be outside it. The box is the whole
  *subtree*: a descendant that makes a sub-cgroup and moves into it (or a procfound inside the
  command, whose own boxes are sub-cgroups of ours) is still in it. Emptiness is the subtree's
  (``cgroup.events``: ``populated``), waited for with poll/epoll on that file (the kernel
  raises a priority event when it changes); ``cgroup.kill`` kills the subtree; the directories
  are removed bottom-up. It also catches a descendant that clears its environment.
* :class:`MarkerBox` (:mod:`procfound.engine.marker`): where no cgroup can be made, an
  environment variable unique to the call (its *name* is unique, so a procfound inside the
  command adds its own marker next to ours instead of replacing it). Every descendant inherits
  it unless it clears its environment. The processes we may signal (every uid as root, our own
  otherwise) are found through ``/proc/<pid>/environ``; each is pinned with a pidfd and its
  marker read again before it is signalled, so a pid reused by an unrelated process is never hit.

``PR_SET_CHILD_SUBREAPER`` is not used: it is process-wide and would adopt (and steal the exit
statuses of) every orphan of the user's own code.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import sys
import time
from typing import Final, Protocol

import anyio

from procfound.engine.marker import (
    MARKER_NAME,
    MarkerBox,
    box_numbers,
    in_group,
    signal_if_marked,
    signal_pinned,
)

__all__ = [
    "CONTAIN_LEVELS",
    "MARKER_NAME",
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
_IS_LINUX: Final = sys.platform.startswith("linux")
# The marker has nothing to wait on: its sweep is repeated, from this interval up to the cap.
_POLL: Final = 0.005
_POLL_CAP: Final = 0.05


class Containment(Protocol):
    """What the kill path needs of a tree-containment mechanism."""

    name: str

    def prepare(
        self, argv: list[str], env: dict[str, str] | None
    ) -> tuple[list[str], dict[str, str] | None]:
        """The argv and environment (None: ours) that start the command inside the box."""
        ...

    def members(self) -> list[int]:
        """Pids of the processes still in the box (a snapshot)."""
        ...

    def is_empty(self) -> bool:
        """True when nothing is left in the box."""
        ...

    def signal(self, sig: int, skip_group: int | None = None) -> None:
        """Send ``sig`` to every process in the box (but those in process group ``skip_group``,
        which the caller has signalled already: a handler must not run twice)."""
        ...

    def close(self) -> None:
        """Release what the box holds (cgroup directories); the box must be empty."""
        ...


# -- the cgroup -------------------------------------------------------------------------------

_cgroup_root: str | bool | None = False  # False: not looked up yet
_cgroup_mount: str | None = None  # the cgroup2 mount point, found with the root


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


def _find_mount() -> str | None:
    global _cgroup_mount
    if _cgroup_mount is None:
        try:
            with open("/proc/self/mountinfo") as mounts:
                _cgroup_mount = next(
                    (line.split()[4] for line in mounts if " - cgroup2 " in line), None
                )
        except OSError:
            return None
    return _cgroup_mount


def _find_cgroup_root() -> str | None:
    if not _IS_LINUX:
        return None
    mount = _find_mount()
    try:
        with open("/proc/self/cgroup") as groups:
            ours = next((line[3:].strip() for line in groups if line.startswith("0::")), None)
    except OSError:
        return None
    if mount is None or ours is None:
        return None
    base = os.path.join(mount, ours.lstrip("/"))
    # Moving a process into a box needs write access to cgroup.procs of the common ancestor
    # (ours), not just to the box's: without it every child would fail to join.
    if not os.access(os.path.join(base, "cgroup.procs"), os.W_OK):
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

    Only directories named for a process that no longer exists are touched (with whatever
    sub-cgroups were made in them), and ``rmdir`` removes a cgroup only when nothing is in it.
    """
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        owner = name.split("-")[1] if name.startswith("procfound-") else ""
        if not owner.isdigit() or os.path.exists(f"/proc/{owner}"):
            continue
        _remove_tree(os.path.join(base, name))


def _subtree(path: str) -> list[str]:
    """``path`` and every cgroup below it, deepest first (the order ``rmdir`` needs)."""
    found = [path]
    with contextlib.suppress(OSError):
        for top, dirs, _ in os.walk(path):
            found.extend(os.path.join(top, name) for name in dirs)
    return found[::-1]


def _remove_tree(path: str) -> None:
    for directory in _subtree(path):
        with contextlib.suppress(OSError):
            os.rmdir(directory)


class _Events:
    """A cgroup's ``cgroup.events``, open, in an epoll set that waits for its priority event.

    The kernel raises that event (POLLPRI) when the file changes. The epoll fd is readable
    while the event is pending, so an event loop, which waits for readability only, can wait
    on it. Each read of the file re-arms the event.
    """

    def __init__(self, path: str) -> None:
        self._fd = os.open(os.path.join(path, "cgroup.events"), os.O_RDONLY | os.O_CLOEXEC)
        try:
            self._epoll = select.epoll()
            self._epoll.register(self._fd, select.EPOLLPRI)
        except BaseException:
            os.close(self._fd)
            raise

    def populated(self) -> bool:
        try:
            return b"populated 1" in os.pread(self._fd, 256, 0)
        except OSError:  # removed under us
            return False

    def fileno(self) -> int:
        return self._epoll.fileno()

    def wait(self, seconds: float) -> None:
        self._epoll.poll(seconds)

    def __enter__(self) -> _Events:
        return self

    def __exit__(self, *exc: object) -> None:
        self._epoll.close()
        os.close(self._fd)


class CgroupBox:
    """A cgroup v2 directory (and everything below it) for one call (see the module docstring)."""

    name = "cgroup"

    def __init__(self, root: str) -> None:
        self.path = os.path.join(root, f"procfound-{os.getpid()}-{next(box_numbers)}")
        os.mkdir(self.path)
        # What the spawn helper writes itself into before it execs the command.
        self.join_file = os.path.join(self.path, "cgroup.procs")
        mount = _find_mount()
        # The box as /proc/<pid>/cgroup names it: what the sweep's re-check compares.
        self.relative = (
            "/" + os.path.relpath(self.path, mount).strip("/")
            if mount and self.path.startswith(mount.rstrip("/") + "/")
            else None
        )

    def prepare(
        self, argv: list[str], env: dict[str, str] | None
    ) -> tuple[list[str], dict[str, str] | None]:
        return argv, env  # the spawn helper joins the box (engine/spawn.py)

    def members(self) -> list[int]:
        pids: list[int] = []
        for directory in _subtree(self.path):
            with (
                contextlib.suppress(OSError),
                open(os.path.join(directory, "cgroup.procs")) as procs,
            ):
                pids.extend(int(line) for line in procs if line.strip())
        return pids

    def is_empty(self) -> bool:
        """True when no process is in the box or a cgroup below it (or the box is gone)."""
        try:
            with open(os.path.join(self.path, "cgroup.events")) as events:
                return "populated 1" not in events.read()
        except OSError:
            return True

    def signal(self, sig: int, skip_group: int | None = None) -> None:
        if sig == signal.SIGKILL:
            # The kernel kills every member of the subtree, forking or not, in one step.
            with (
                contextlib.suppress(OSError),
                open(os.path.join(self.path, "cgroup.kill"), "w") as f,
            ):
                f.write("1")
            return
        for pid in self.members():
            if not in_group(pid, skip_group):
                signal_pinned(pid, sig, self._holds)

    def _holds(self, pid: int) -> bool:
        """True if ``pid`` is in the box or below it (read through /proc/<pid>/cgroup)."""
        try:
            with open(f"/proc/{pid}/cgroup") as groups:
                line = next((line for line in groups if line.startswith("0::")), "")
        except OSError:
            return False
        where = line[3:].strip()
        if self.relative is None:  # no mount found: the old, exact match
            return where != "/" and self.path.endswith(where)
        return where == self.relative or where.startswith(self.relative + "/")

    async def wait_empty(self, seconds: float) -> bool:
        """Wait until the subtree is empty, at most ``seconds``; True if it is."""
        give_up = anyio.current_time() + seconds
        try:
            events = _Events(self.path)
        except OSError:  # the box is gone
            return self.is_empty()
        with events:
            while events.populated():
                left = give_up - anyio.current_time()
                if left <= 0:
                    return False
                with anyio.move_on_after(left):
                    await anyio.wait_readable(events.fileno())
        return True

    def wait_empty_now(self, seconds: float) -> bool:
        """:meth:`wait_empty` without an event loop: a blocking poll, bounded by ``seconds``."""
        give_up = time.monotonic() + seconds
        try:
            events = _Events(self.path)
        except OSError:
            return self.is_empty()
        with events:
            while events.populated():
                left = give_up - time.monotonic()
                if left <= 0:
                    return False
                events.wait(left)
        return True

    def close(self) -> None:
        _remove_tree(self.path)


# -- choosing, and ending ---------------------------------------------------------------------

# Why mkdir of a cgroup fails, said in words (the errno alone reads "Resource temporarily
# unavailable" for a full cgroup.max.descendants).
_MKDIR_REASONS: Final = {
    errno.EAGAIN: "cgroup.max.descendants or cgroup.max.depth of an ancestor is reached",
    errno.EACCES: "this process may not make cgroups there",
    errno.EPERM: "this process may not make cgroups there",
    errno.ENOSPC: "the cgroup limit of the system is reached",
}


def open_containment(level: str) -> Containment | None:
    """The box for ``level``: None for "group"; cgroup or marker for "tree"; cgroup for "cgroup".

    "tree" falls back to the marker where no cgroup can be used, whether none is writable or
    the call's directory cannot be made (a full ``cgroup.max.descendants``, say).

    Raises:
        LookupError: For "cgroup" where no writable cgroup v2 with ``cgroup.kill`` exists (the
            message names what is missing).
        OSError: For "cgroup", if the call's cgroup directory cannot be made (the message says
            why).
    """
    if level == "group":
        return None
    root = cgroup_root()
    if root is not None:
        try:
            return CgroupBox(root)
        except OSError as exc:
            if level == "cgroup":
                reason = _MKDIR_REASONS.get(exc.errno or 0, exc.strerror or str(exc))
                raise OSError(
                    exc.errno,
                    f"cannot make a cgroup for contain='cgroup' in {root}: {reason}",
                ) from exc
    elif level == "cgroup":
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
    if box.is_empty():
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
    if isinstance(box, CgroupBox):  # cgroup.kill needs no resend: it stops forks too
        return await box.wait_empty(seconds)
    give_up = anyio.current_time() + seconds
    pause = _POLL
    while not box.is_empty():
        if anyio.current_time() >= give_up:
            return False
        await anyio.sleep(pause)
        pause = min(pause * 2, _POLL_CAP)
        if resend:  # a marked process forked after the sweep: sweep again
            box.signal(signal.SIGKILL)
    return True


def empty_box_now(box: Containment, wait: float = 2.0) -> list[int]:
    """:func:`empty_box` without an event loop (interpreter exit): SIGKILL, bounded wait."""
    if isinstance(box, CgroupBox):
        box.signal(signal.SIGKILL)
        return [] if box.wait_empty_now(wait) else box.members()
    give_up = time.monotonic() + wait
    pause = _POLL
    while True:
        box.signal(signal.SIGKILL)
        left = box.members()
        if not left or time.monotonic() >= give_up:
            return left
        time.sleep(pause)
        pause = min(pause * 2, _POLL_CAP)
