"""Turning a validated request into a running child: pipes, process group, pidfd.

Two spawn paths, chosen per request in :func:`spawn`:

* ``os.posix_spawnp`` (vfork + exec in C, no Python code between fork and exec): the fast path,
  used whenever the request needs no working-directory change and no pre-exec work.
* ``subprocess.Popen`` (``_posixsubprocess``) for a ``cwd``, which posix_spawn in Python 3.11 cannot
  express (``POSIX_SPAWN_CHDIR`` is not exposed).

Both put the child in a new process group (so the whole tree can be signalled at once) unless the
caller asked for the terminal (``foreground``), and both report failures as :class:`SpawnError`.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

__all__ = ["Child", "SpawnError", "SpawnRequest", "Stdio", "spawn", "spawn_error"]

_HAS_PIDFD: Final = hasattr(os, "pidfd_open")
_IS_LINUX: Final = sys.platform.startswith("linux")
# A trampoline that makes the child ask for SIGKILL when its parent dies, then checks that the
# parent is still the one that spawned it (it may have died before the request took effect), then
# execs the real command. setpriv(1) does the prctl from C, so no Python runs between fork and
# exec and the fast spawn path still applies; sh does the parent check.
_PDEATHSIG_SCRIPT: Final = '[ "$PPID" = "$0" ] || kill -KILL $$; exec "$@"'


class Stdio(Enum):
    """Where one of the child's standard streams goes."""

    PIPE = "pipe"  # a pipe to us
    DEVNULL = "devnull"  # /dev/null
    INHERIT = "inherit"  # our own fd (the terminal, usually)
    STDOUT = "stdout"  # stderr only: the same pipe as stdout


@dataclass(frozen=True, slots=True)
class SpawnRequest:
    """Everything needed to start one child. Built and validated by the API layer."""

    argv: list[str]
    cwd: str | None = None
    env: dict[str, str] | None = None  # the full environment, or None to inherit ours
    stdin: Stdio = Stdio.DEVNULL
    stdout: Stdio = Stdio.PIPE
    stderr: Stdio = Stdio.PIPE
    new_group: bool = True
    kill_on_parent_death: bool = False


class SpawnError(Exception):
    """The child could not be started. ``filename`` names the missing path when there is one."""

    def __init__(self, reason: str, *, errno_: int | None = None, filename: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.errno = errno_
        self.filename = filename

    @property
    def os_error(self) -> BaseException:
        """The OSError the spawn failed with (what callers chain to), or this error."""
        return self.__cause__ or self


@dataclass(slots=True, eq=False)
class Child:
    """A started child and our ends of its pipes (non-blocking, close-on-exec).

    ``pidfd`` is None where the platform has none; then exit is detected by polling ``waitid``.
    The child is not reaped by anyone but :mod:`procfound.engine.process`, which keeps the pid
    (and so the process group id) reserved until the group has been swept.
    """

    pid: int
    pgid: int | None  # None when the child shares our group (foreground mode)
    pidfd: int | None
    stdin: int | None
    stdout: int | None
    stderr: int | None
    returncode: int | None = field(default=None)


def _set_nonblocking(fd: int) -> None:
    # One fcntl instead of os.set_blocking's get+set pair: our ends carry no other status flags.
    fcntl.fcntl(fd, fcntl.F_SETFL, os.O_NONBLOCK)


def _wrap_pdeathsig(argv: list[str]) -> list[str]:
    from procfound.errors import PlatformError

    if not _IS_LINUX:
        raise PlatformError(
            "kill_on_parent_death needs Linux (PR_SET_PDEATHSIG)", code="PLATFORM_NOT_SUPPORTED"
        )
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise PlatformError(
            "kill_on_parent_death needs setpriv(1) from util-linux "
            "(Debian/Ubuntu: apt-get install util-linux)",
            code="DEPENDENCY_MISSING",
        )
    return [
        setpriv,
        "--pdeathsig",
        "KILL",
        "--",
        "/bin/sh",
        "-c",
        _PDEATHSIG_SCRIPT,
        str(os.getpid()),
        *argv,
    ]


def spawn(request: SpawnRequest) -> Child:
    """Start the child described by ``request``; raise :class:`SpawnError` if it cannot start.

    The caller owns the returned :class:`Child` at once: there is no await between the fork and
    the return, so no cancellation can land while a child exists without a handle.
    """
    argv = _wrap_pdeathsig(request.argv) if request.kill_on_parent_death else request.argv
    to_close: list[int] = []  # the child's ends, closed in the parent after the spawn
    ours: list[int] = []  # our ends, closed only if the spawn fails
    child_fds: dict[int, int] = {}
    parent_fds: dict[int, int] = {}
    try:
        if request.stdin is Stdio.PIPE:
            r, w = os.pipe()  # close-on-exec (PEP 446); our end made non-blocking below
            to_close.append(r)
            ours.append(w)
            child_fds[0], parent_fds[0] = r, w
        if request.stdout is Stdio.PIPE:
            r, w = os.pipe()  # close-on-exec (PEP 446); our end made non-blocking below
            to_close.append(w)
            ours.append(r)
            child_fds[1], parent_fds[1] = w, r
        if request.stderr is Stdio.PIPE:
            r, w = os.pipe()  # close-on-exec (PEP 446); our end made non-blocking below
            to_close.append(w)
            ours.append(r)
            child_fds[2], parent_fds[2] = w, r
        elif request.stderr is Stdio.STDOUT:
            child_fds[2] = child_fds[1]
        if request.cwd is None:
            pid = _posix_spawn(argv, request, child_fds)
        else:
            pid = _popen_spawn(argv, request, child_fds)
        for fd in ours:
            _set_nonblocking(fd)
    except BaseException as exc:
        for fd in ours:
            os.close(fd)
        if isinstance(exc, OSError):  # pipe creation: fd exhaustion, mostly
            raise spawn_error(exc, argv[0], request.cwd) from exc
        raise
    finally:
        for fd in to_close:
            os.close(fd)
    return Child(
        pid=pid,
        pgid=pid if request.new_group else None,
        pidfd=_open_pidfd(pid),
        stdin=parent_fds.get(0),
        stdout=parent_fds.get(1),
        stderr=parent_fds.get(2),
    )


def _open_pidfd(pid: int) -> int | None:
    if not _HAS_PIDFD:
        return None
    try:
        return os.pidfd_open(pid)
    except OSError:
        # Kernels before 5.3, or seccomp sandboxes that forbid it: fall back to polling waitid.
        return None


def _current_environ() -> Mapping[bytes, bytes] | Mapping[str, str]:
    # os.environ keeps the encoded environment in a plain dict (_data, in CPython since 3.2);
    # handing posix_spawn that dict lets it read the variables at C speed, where iterating the
    # os.environ mapping costs tens of microseconds of Python per spawn (profiled).
    data = getattr(os.environ, "_data", None)
    if isinstance(data, dict):
        return data
    return os.environ


def _posix_spawn(argv: list[str], request: SpawnRequest, child_fds: dict[int, int]) -> int:
    actions: list[tuple[int, ...] | tuple[int, int, str, int, int]] = []
    for target, source in child_fds.items():
        actions.append((os.POSIX_SPAWN_DUP2, source, target))
    if request.stdin is Stdio.DEVNULL:
        actions.append((os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0))
    if request.stdout is Stdio.DEVNULL:
        actions.append((os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0))
    if request.stderr is Stdio.DEVNULL:
        actions.append((os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0))
    kwargs: dict[str, object] = {"file_actions": actions}
    if request.new_group:
        kwargs["setpgroup"] = 0
    # Restore default dispositions the way subprocess does (restore_signals=True), so a child
    # of a Python parent does not inherit SIG_IGN for SIGPIPE and friends.
    kwargs["setsigdef"] = _DEFAULT_SIGNALS
    env = _current_environ() if request.env is None else request.env
    try:
        return os.posix_spawnp(argv[0], argv, env, **kwargs)  # type: ignore[arg-type]
    except OSError as exc:
        raise spawn_error(exc, argv[0], None) from exc


_DEFAULT_SIGNALS: Final = tuple(
    sig for name in ("SIGPIPE", "SIGXFZ", "SIGXFSZ") if (sig := getattr(signal, name, None))
)


def _popen_spawn(argv: list[str], request: SpawnRequest, child_fds: dict[int, int]) -> int:
    def stdio(target: int, choice: Stdio) -> int | None:
        if target in child_fds:
            return child_fds[target]
        if choice is Stdio.DEVNULL:
            return subprocess.DEVNULL
        return None

    try:
        popen = subprocess.Popen(
            argv,
            cwd=request.cwd,
            env=request.env,
            stdin=stdio(0, request.stdin),
            stdout=stdio(1, request.stdout),
            stderr=stdio(2, request.stderr),
            process_group=0 if request.new_group else None,
            close_fds=True,
        )
    except OSError as exc:
        raise spawn_error(exc, argv[0], request.cwd) from exc
    # We reap the child ourselves. Mark the Popen finished so neither its __del__ (ResourceWarning)
    # nor subprocess's _cleanup() ever calls waitpid on a pid that may by then belong to another.
    popen.returncode = 0
    return popen.pid


def spawn_error(exc: OSError, program: str, cwd: str | None) -> SpawnError:
    """Describe an OSError from starting ``program`` (in ``cwd``) as a :class:`SpawnError`."""
    if exc.errno == errno.ENOENT:
        if cwd is not None and not os.path.isdir(cwd):
            return SpawnError(f"working directory not found: {cwd}", errno_=exc.errno, filename=cwd)
        return SpawnError(f"executable not found: {program}", errno_=exc.errno, filename=program)
    if exc.errno == errno.EACCES:
        return SpawnError(f"permission denied: {program}", errno_=exc.errno, filename=program)
    if exc.errno == errno.ENOTDIR and cwd is not None:
        return SpawnError(f"not a directory: {cwd}", errno_=exc.errno, filename=cwd)
    if exc.errno in (errno.EMFILE, errno.ENFILE):
        return SpawnError(f"out of file descriptors: {exc.strerror}", errno_=exc.errno)
    return SpawnError(
        f"{exc.strerror or exc}: {exc.filename or program}", errno_=exc.errno, filename=program
    )
