"""Turning a validated request into a running child: pipes, process group, pidfd.

**One spawn path, one semantics.** Every child is started by ``_posixsubprocess.fork_exec``, the
C routine ``subprocess`` itself uses (vfork + exec where it is safe, ``close_range`` for the
fds): no fd but 0-2 and ``pass_fds`` reaches the child, the program is looked up in the *child's*
PATH, signal dispositions are restored (``restore_signals``), and an exec failure comes back
through a pipe as the errno that :func:`spawn_error` describes. On an interpreter whose
``fork_exec`` this module does not know (its arguments are private and change between
versions) the same arguments go to :class:`subprocess.Popen`, which calls the same routine.

An earlier design used ``os.posix_spawnp`` for the common case and Popen only for a ``cwd``:
the two paths differed in which fds reached the child and in where the program was looked up.
``fork_exec`` is as fast as posix_spawn was (no copy of the environment, vfork; docs/design.md).

The child gets a new process group (so the whole tree can be signalled at once) unless the caller
asked for the terminal (``foreground``) or for a group of its own choosing (``process_group``).
With a terminal of its own (``SpawnRequest.terminal``, ``pty=True``: ``engine/terminal.py``) it
gets a new session, and the terminal's slave as stdin, stdout, stderr and controlling terminal.

**At most one step between spawn and exec.** A cgroup box (``contain="tree"``/``"cgroup"``),
``kill_on_parent_death`` and a terminal need code in the child before the command runs; the
child then execs one helper (``engine/helper.py``) that takes the terminal, joins the box, drops
the privileges ``user``/``group``/``extra_groups`` ask for, sets the parent-death signal, and
execs the command with ``fork_exec``'s semantics, reporting a failure through a pipe read until
the command's exec, so every error is the one a direct spawn gives. The process group and the
environment marker need no helper; where nothing can differ, a ``/bin/sh`` line does the join
and the terminal step instead (:func:`_sh_join`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, Final, cast

from procfound.engine.contain import CgroupBox, Containment, open_containment
from procfound.engine.helper import Credentials, helper_argv, runs_natively
from procfound.engine.spawn_errors import BEFORE_EXEC, CGROUP_JOIN, SpawnError, spawn_error
from procfound.engine.terminal import open_child_terminal

__all__ = ["Child", "SpawnError", "SpawnRequest", "Stdio", "spawn", "spawn_error"]

_HAS_PIDFD: Final = hasattr(os, "pidfd_open")
_IS_LINUX: Final = sys.platform.startswith("linux")
# The dispositions fork_exec's restore_signals sets back to SIG_DFL (what a Python parent and
# the Python helper ignore).
_RESTORED_SIGNALS: Final = tuple(
    getattr(signal, name) for name in ("SIGPIPE", "SIGXFZ", "SIGXFSZ") if hasattr(signal, name)
)
_F_SETPIPE_SZ: Final = getattr(fcntl, "F_SETPIPE_SZ", None)
_KEEP_OURS: Final = Credentials()  # no user, group or groups to switch to


def _known_fork_exec() -> Any:
    """``_posixsubprocess.fork_exec`` where its 23 arguments are the ones passed below."""
    if sys.version_info[:2] not in ((3, 11), (3, 12), (3, 13)):
        return None
    try:
        import _posixsubprocess
    except ImportError:  # pragma: no cover - every CPython on POSIX has it
        return None
    return _posixsubprocess.fork_exec


# Module-level so a test can take the Popen path on this interpreter too (both must agree).
_FORK_EXEC: Any = _known_fork_exec()


class Stdio(Enum):
    """Where one of the child's standard streams goes (an ``int`` instead: that fd of ours)."""

    PIPE = "pipe"  # a pipe to us
    DEVNULL = "devnull"  # /dev/null
    INHERIT = "inherit"  # our own fd (the terminal, usually)
    STDOUT = "stdout"  # stderr only: wherever stdout goes


@dataclass(frozen=True, slots=True)
class SpawnRequest:
    """Everything needed to start one child. Built and validated by the API layer."""

    argv: list[str]  # as the child sees it; argv[0] is the program unless ``executable`` is set
    cwd: str | None = None
    env: dict[str, str] | None = None  # the full environment, or None to inherit ours
    stdin: Stdio | int = Stdio.DEVNULL
    stdout: Stdio | int = Stdio.PIPE
    stderr: Stdio | int = Stdio.PIPE
    new_group: bool = True
    kill_on_parent_death: bool = False
    executable: str | None = None  # the program to run, when argv[0] is only the name shown
    pass_fds: tuple[int, ...] = ()  # fds of ours the child keeps (as themselves)
    start_new_session: bool = False  # setsid(): a new session, and a group of its own
    process_group: int | None = None  # join this existing group instead of a new one
    credentials: Credentials | None = None  # None: the child keeps ours
    umask: int = -1  # -1: leave ours
    restore_signals: bool = True  # SIGPIPE, SIGXFZ, SIGXFSZ back to their defaults
    pipesize: int = -1  # F_SETPIPE_SZ for the pipes made here (-1: the system's)
    # (rows, cols) of a new pseudo-terminal that is the child's stdin, stdout, stderr and
    # controlling terminal, in a new session (the three stdio fields are then not used).
    terminal: tuple[int, int] | None = None

    @property
    def program(self) -> str:
        """The program that is executed (looked up in the child's PATH unless it has a /)."""
        return self.executable or self.argv[0]

    @property
    def owns_group(self) -> bool:
        """True when the child leads a process group of its own, which the kill path signals."""
        if self.start_new_session or self.terminal is not None:
            return True
        return self.new_group and not self.process_group


@dataclass(slots=True, eq=False)
class Child:
    """A started child and our ends of its pipes (non-blocking, close-on-exec).

    ``pidfd`` is None where the platform has none; then exit is detected by polling ``waitid``.
    The child is not reaped by anyone but the session, which keeps the pid (and so the process
    group id) reserved until the group has been swept.
    """

    pid: int
    pgid: int | None  # None when the child is not the leader of a group of its own
    pidfd: int | None
    stdin: int | None
    stdout: int | None
    stderr: int | None
    box: Containment | None = None  # what contains the whole tree, for contain="tree"
    # With a terminal: ``stdout`` is its master (read: the merged output, EIO at the end) and
    # ``stdin`` a duplicate of it (written: the input); ``stderr`` is None.
    terminal: bool = False


def _set_nonblocking(fd: int) -> None:
    # One fcntl instead of os.set_blocking's get+set pair: our ends carry no other status flags.
    fcntl.fcntl(fd, fcntl.F_SETFL, os.O_NONBLOCK)


@dataclass(frozen=True, slots=True)
class _Helper:
    """The spawn helper a request needs (engine/helper.py): what it does before the exec."""

    join: str | None  # the box's cgroup.procs
    parent: int | None  # our pid, for the parent-death signal
    program: str  # the program and argv the helper execs (request.program, request.argv)
    argv: list[str]
    terminal: str | None = None  # the path of the terminal to take as the controlling one


def _helper_for(
    request: SpawnRequest, box: Containment | None, terminal: str | None
) -> _Helper | None:
    """The helper ``request`` needs: only for a cgroup box, ``kill_on_parent_death`` or a
    terminal (``terminal``: its path)."""
    join = box.join_file if isinstance(box, CgroupBox) else None
    if join is None and not request.kill_on_parent_death and terminal is None:
        return None
    from procfound.errors import PlatformError

    if request.kill_on_parent_death and not _IS_LINUX:
        raise PlatformError(
            "kill_on_parent_death needs Linux (PR_SET_PDEATHSIG)", code="PLATFORM_NOT_SUPPORTED"
        )
    if not sys.executable:
        raise PlatformError(
            "contain='tree'/'cgroup' with a cgroup, kill_on_parent_death and pty=True run a "
            "Python helper before the command and need sys.executable, which is empty here",
            code="DEPENDENCY_MISSING",
        )
    return _Helper(
        join=join,
        parent=os.getpid() if request.kill_on_parent_death else None,
        program=request.program,
        argv=request.argv,
        terminal=terminal,
    )


def spawn(request: SpawnRequest, contain: str = "group") -> Child:
    """Start the child described by ``request``; raise :class:`SpawnError` if it cannot start.

    ``contain`` is the stop policy's containment level (``"group"``, ``"tree"``, ``"cgroup"``):
    for the last two the child starts inside the box that ends with it (``Child.box``).
    The caller owns the returned :class:`Child` at once: there is no await between the fork and
    the return, so no cancellation can land while a child exists without a handle.
    """
    box = _open_box(contain)
    try:
        return _spawn(request, box)
    except BaseException:
        if box is not None:
            box.close()
        raise


def _open_box(contain: str) -> Containment | None:
    if contain == "group":
        return None
    try:
        return open_containment(contain)
    except LookupError as exc:
        from procfound.errors import PlatformError

        raise PlatformError(str(exc), code="PLATFORM_NOT_SUPPORTED") from None
    except OSError as exc:
        raise SpawnError(exc.strerror or str(exc), errno_=exc.errno) from exc


def _command(
    request: SpawnRequest, box: Containment | None, terminal: str | None
) -> tuple[SpawnRequest, _Helper | None]:
    """The request to spawn (the box's environment in it), and the helper it needs, if any."""
    if box is not None:
        argv, env = box.prepare(request.argv, request.env)
        request = replace(request, argv=argv, env=env)
    if terminal is not None:  # setsid(): a session the terminal can belong to
        request = replace(request, start_new_session=True, process_group=None)
    return request, _helper_for(request, box, terminal)


def _helper_command(
    request: SpawnRequest, helper: _Helper, report_fd: int
) -> tuple[str, list[str], SpawnRequest]:
    """The program, argv and request that spawn ``helper``, which reports on ``report_fd``.

    The helper drops the privileges itself, after joining the box: the spawn must not.
    """
    env: Mapping[str, str] = os.environ if request.env is None else request.env
    argv = helper_argv(
        sys.executable,
        report_fd,
        terminal=helper.terminal,
        join=helper.join,
        credentials=request.credentials,
        parent=helper.parent,
        default_signals=tuple(
            sig
            for sig in _RESTORED_SIGNALS
            if request.restore_signals or signal.getsignal(sig) != signal.SIG_IGN
        ),
        lc_ctype=env.get("LC_CTYPE"),
        paths=[os.fsdecode(path) for path in _executables(helper.program, request.env)],
        argv=helper.argv,
    )
    spawned = replace(
        request,
        argv=argv,
        executable=None,
        credentials=None,
        pass_fds=tuple(sorted({*request.pass_fds, report_fd})),
    )
    return sys.executable, argv, spawned


def _executables(program: str, env: Mapping[str, str] | None) -> tuple[bytes, ...]:
    """The files exec tries for ``program``, in order: as execvp would, in the child's PATH."""
    executable = os.fsencode(program)
    if b"/" in executable:
        return (executable,)
    return tuple(os.path.join(os.fsencode(d), executable) for d in os.get_exec_path(env))


def _above_stdio(fd: int) -> int:
    """``fd``, or a dup of it at 3 or above (only when our 0-2 are closed): keep it off the
    child's stdio."""
    low = []
    while fd < 3:
        low.append(fd)
        fd = os.dup(fd)
    for old in low:
        os.close(old)
    return fd


def _spawn(request: SpawnRequest, box: Containment | None) -> Child:
    opened: list[int] = []  # fds made for the child, closed in the parent after the spawn
    ours: list[int] = []  # our ends, closed only if the spawn fails
    child_fds = [-1, -1, -1]  # what becomes the child's 0, 1, 2 (-1: ours, inherited)
    parent_fds: list[int | None] = [None, None, None]
    terminal = None  # the path of the child's terminal, with pty=True
    if request.terminal is not None:
        master, writer, slave, terminal = open_child_terminal(*request.terminal)
        opened.append(slave)
        ours += [master, writer]
        child_fds[:] = [slave, slave, slave]
        parent_fds[:] = [writer, master, None]  # (each in the readiness set on its own)
    argv = request.argv
    try:
        request, helper = _command(request, box, terminal)
        program, argv = request.program, request.argv
        if terminal is None:
            _open_stdio(request, opened, ours, child_fds, parent_fds)
        if helper is None:
            pid = _start(program, argv, request, child_fds)
        else:
            pid = _start_helper(request, helper, child_fds)
    except BaseException as exc:
        for fd in ours:
            os.close(fd)
        if isinstance(exc, OSError):  # the spawn itself, or pipe creation (fd exhaustion)
            raise spawn_error(
                exc, request.program, request.cwd, argv=argv, env=request.env
            ) from exc
        raise
    finally:
        for fd in opened:
            os.close(fd)
    return Child(
        pid=pid,
        pgid=pid if request.owns_group else None,
        pidfd=_open_pidfd(pid),
        stdin=parent_fds[0],
        stdout=parent_fds[1],
        stderr=parent_fds[2],
        box=box,
        terminal=terminal is not None,
    )


def _open_stdio(
    request: SpawnRequest,
    opened: list[int],
    ours: list[int],
    child_fds: list[int],
    parent_fds: list[int | None],
) -> None:
    """Make the pipes (and open /dev/null) the request's stdin, stdout and stderr ask for."""
    devnull = -1
    for target, choice in enumerate((request.stdin, request.stdout, request.stderr)):
        if choice is Stdio.PIPE:
            r, w = os.pipe()  # close-on-exec (PEP 446)
            mine, theirs = (w, r) if target == 0 else (r, w)
            opened.append(theirs)
            ours.append(mine)
            child_fds[target], parent_fds[target] = theirs, mine
            # Before the spawn, so nothing can fail between it and the return: our end is
            # its own open file description, the child's end stays blocking.
            _set_nonblocking(mine)
            if request.pipesize > 0 and _F_SETPIPE_SZ is not None:
                fcntl.fcntl(mine, _F_SETPIPE_SZ, request.pipesize)
        elif choice is Stdio.DEVNULL:
            if devnull < 0:
                devnull = os.open(os.devnull, os.O_RDWR)
                opened.append(devnull)
            child_fds[target] = devnull
        elif choice is Stdio.STDOUT:
            child_fds[target] = child_fds[1] if child_fds[1] >= 0 else 1
        elif isinstance(choice, int):
            child_fds[target] = choice


def _start(program: str, argv: list[str], request: SpawnRequest, child_fds: list[int]) -> int:
    if _FORK_EXEC is not None:
        return _fork_exec(program, argv, request, child_fds)
    return _popen(program, argv, request, child_fds)


def _start_helper(request: SpawnRequest, helper: _Helper, child_fds: list[int]) -> int:
    """Spawn the helper, then read its report pipe until EOF: the command's exec (or a failure,
    raised as the OSError a direct spawn gives)."""
    joined = _sh_join(request, helper)
    if joined is not None:
        return _start(joined[0], joined, request, child_fds)
    report_read, report_write = os.pipe()
    try:
        report_write = _above_stdio(report_write)
        try:
            program, argv, spawned = _helper_command(request, helper, report_write)
            pid = _start(program, argv, spawned, child_fds)
        finally:
            os.close(report_write)
        report = _read_report(report_read)
    finally:
        os.close(report_read)
    _raise_reported(report, pid, request.cwd, request.program)
    return pid


# The /bin/sh one-liners that join the box and take the terminal when nothing else is asked of
# the helper, and what the command must be for it to run exactly as a direct spawn would (see
# _sh_join). The terminal: opened without O_NOCTTY by a session leader that has no controlling
# terminal, Linux makes it the controlling one (the redirection opens it in the shell itself).
_SH_JOIN: Final = 'echo 0 >"$0" || exit 125; exec "$@"'
_SH_TERMINAL: Final = ': <>"$0" || exit 125; exec "$@"'
_SH_JOIN_TERMINAL: Final = 'echo 0 >"$0" || exit 125; : <>"$1" || exit 125; shift; exec "$@"'
_SHELL_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SHELL_SETS: Final = frozenset({"IFS", "PPID", "OPTIND"})  # dash resets these on start


def _sh_join(request: SpawnRequest, helper: _Helper) -> list[str] | None:
    """The argv of a ``/bin/sh`` join (and terminal step) where it runs the command as a direct
    spawn would; None where only the Python helper does.

    The Python helper costs an interpreter start-up (about 7 ms); ``sh`` one exec (about
    0.6 ms). But ``exec "$@"`` in a shell differs from ``execve``: it cannot set another
    ``argv[0]``, runs a file the kernel cannot execute as a shell script (ENOEXEC), reports a
    failure only as exit 126/127, sets PWD (to the cwd), IFS, PPID and OPTIND, and drops
    variables whose names are not shell names. So it is used only when none of that can show:
    only the box is asked (no user, group or parent-death signal), argv[0] is the program,
    the environment has PATH, PWD naming the child's cwd exactly, no IFS/PPID/OPTIND and shell
    names only, and the file the lookup finds first will run (a native ELF, or a ``#!`` script
    whose interpreter is one, executable, on a mount without noexec). Whatever is in doubt
    goes to the Python helper, which is exact. What remains different: the order of the
    variables in the environment (dash lists PWD last), a file replaced between this check and
    the exec (the shell's message and exit 127 instead of the spawn error), and a join or a
    terminal step that fails (exit 125 instead of the spawn error).
    """
    if helper.join is None and helper.terminal is None:
        return None
    if helper.parent is not None or not _IS_LINUX:
        return None
    if request.credentials is not None:
        return None
    if request.argv[0] != request.program:
        return None
    env: Mapping[str, str] = os.environ if request.env is None else request.env
    if "PATH" not in env or not _SHELL_SETS.isdisjoint(env):
        return None
    try:
        cwd = os.path.realpath(request.cwd) if request.cwd else os.getcwd()
    except OSError:
        return None
    if env.get("PWD") != cwd:
        return None
    if not all(_SHELL_NAME.fullmatch(name) for name in env):
        return None
    for candidate in _executables(request.program, request.env):
        path = os.path.join(cwd, os.fsdecode(candidate))
        if os.path.exists(path):
            if not runs_natively(path, cwd):
                return None
            break
    else:
        return None
    if helper.terminal is None:
        return ["/bin/sh", "-c", _SH_JOIN, cast(str, helper.join), *request.argv]
    if helper.join is None:
        return ["/bin/sh", "-c", _SH_TERMINAL, helper.terminal, *request.argv]
    return ["/bin/sh", "-c", _SH_JOIN_TERMINAL, helper.join, helper.terminal, *request.argv]


def _read_report(fd: int) -> bytes:
    report = bytearray()
    while True:  # EOF once the child has exec'd (the pipe is close-on-exec)
        part = os.read(fd, 50000)
        report += part
        if not part or len(report) > 50000:
            return bytes(report)


def _open_pidfd(pid: int) -> int | None:
    if not _HAS_PIDFD:
        return None
    try:
        return os.pidfd_open(pid)
    except OSError:
        # Kernels before 5.3, or seccomp sandboxes that forbid it: fall back to polling waitid.
        return None


def _process_group(request: SpawnRequest) -> int:
    """The group the child joins (setpgid), or -1: none (setsid makes one; or ours)."""
    if request.start_new_session:
        return -1  # a session leader cannot setpgid; setsid made it a group leader already
    if request.process_group is not None:
        return request.process_group
    return 0 if request.new_group else -1


def _fork_exec(program: str, argv: list[str], request: SpawnRequest, child_fds: list[int]) -> int:
    executables = _executables(program, request.env)
    ids = request.credentials or _KEEP_OURS
    env = request.env
    env_list = (
        None if env is None else [os.fsencode(k) + b"=" + os.fsencode(v) for k, v in env.items()]
    )
    err_read, err_write = os.pipe()
    err_write = _above_stdio(err_write)
    try:
        try:
            keep = tuple(sorted({*request.pass_fds, err_write}))
            pid: int = _FORK_EXEC(
                argv,
                executables,
                True,  # close_fds: nothing but 0-2 and pass_fds reaches the child
                keep,
                request.cwd,
                env_list,
                child_fds[0],
                -1,  # our ends: close-on-exec, and close_fds closes them anyway
                -1,
                child_fds[1],
                -1,
                child_fds[2],
                err_read,
                err_write,
                request.restore_signals,
                request.start_new_session,
                _process_group(request),
                ids.group,
                None if ids.extra_groups is None else list(ids.extra_groups),
                ids.user,
                request.umask,
                None,  # preexec_fn: never (no Python between fork and exec)
                True,  # allow vfork
            )
        finally:
            os.close(err_write)
        report = _read_report(err_read)
    finally:
        os.close(err_read)
    _raise_reported(report, pid, request.cwd, program)
    return pid


def _raise_reported(report: bytes, pid: int, cwd: str | None, program: str) -> None:
    """A child that reported a failure before its exec has exited: reap it, raise the error."""
    if report:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        raise _exec_failure(report, cwd, program)


def _exec_failure(report: bytes, cwd: str | None, program: str) -> OSError:
    """The OSError ``fork_exec``'s child reported as ``name:hex errno:detail``."""
    try:
        _name, hex_errno, detail = report.split(b":", 2)
        code = int(hex_errno, 16)
    except ValueError:
        return OSError(errno.EINVAL, f"bad exec report from the child: {report!r}")
    if detail == b"noexec":  # before exec: chdir, setgroups, setgid, setuid
        error = OSError(code, os.strerror(code), cwd) if cwd else OSError(code, os.strerror(code))
        setattr(error, BEFORE_EXEC, True)
        return error
    if detail == b"cgroup":  # the spawn helper could not join the call's cgroup
        error = OSError(code, os.strerror(code))
        setattr(error, CGROUP_JOIN, True)
        return error
    if code == 0:
        return OSError(errno.EINVAL, detail.decode(errors="replace"))
    return OSError(code, os.strerror(code), program)


def _popen(program: str, argv: list[str], request: SpawnRequest, child_fds: list[int]) -> int:
    """The same spawn through :class:`subprocess.Popen` (interpreters with another fork_exec)."""
    group = _process_group(request)
    ids = request.credentials or _KEEP_OURS
    # An OSError (the program or cwd cannot be used) is described by spawn().
    popen = subprocess.Popen(
        argv,
        executable=program,
        cwd=request.cwd,
        env=request.env,
        stdin=None if child_fds[0] < 0 else child_fds[0],
        stdout=None if child_fds[1] < 0 else child_fds[1],
        stderr=None if child_fds[2] < 0 else child_fds[2],
        close_fds=True,
        pass_fds=request.pass_fds,
        restore_signals=request.restore_signals,
        start_new_session=request.start_new_session,
        process_group=None if group < 0 else group,
        user=ids.user,
        group=ids.group,
        extra_groups=ids.extra_groups,
        umask=request.umask,
    )
    # We reap the child ourselves. Mark the Popen finished so neither its __del__ (ResourceWarning)
    # nor subprocess's _cleanup() ever calls waitpid on a pid that may by then belong to another.
    popen.returncode = 0
    return popen.pid
