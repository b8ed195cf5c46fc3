"""Turning a validated request into a running child: pipes, process group, pidfd.

Two spawn paths, chosen per request in :func:`spawn`:

* ``os.posix_spawnp`` (vfork + exec in C, no Python code between fork and exec): the fast path,
  used whenever the request needs no working-directory change and no pre-exec work. It searches
  our PATH, so when the child's differs the program is looked up first (``os.posix_spawn``).
* ``subprocess.Popen`` (``_posixsubprocess``) for a ``cwd``, which posix_spawn in Python 3.11 cannot
  express (``POSIX_SPAWN_CHDIR`` is not exposed).

Both put the child in a new process group (so the whole tree can be signalled at once) unless the
caller asked for the terminal (``foreground``), and both report failures as :class:`SpawnError`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Final

from procfound.engine.contain import CgroupBox, Containment, open_containment
from procfound.engine.kill import DEFAULT_GRACE
from procfound.errors import shorten

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
    contain: str = "group"  # "group", "tree" or "cgroup" (engine/contain.py)
    stop_signal: int = signal.SIGTERM  # the polite signal of the kill schedule
    kill_grace: float = DEFAULT_GRACE  # seconds from the stop signal to SIGKILL


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
    box: Containment | None = None  # what contains the whole tree, for contain="tree"


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
    box = _open_box(request)
    try:
        return _spawn(request, box)
    except BaseException:
        if box is not None:
            box.close()
        raise


def _open_box(request: SpawnRequest) -> Containment | None:
    if request.contain == "group":
        return None
    try:
        return open_containment(request.contain)
    except LookupError as exc:
        from procfound.errors import PlatformError

        raise PlatformError(str(exc), code="PLATFORM_NOT_SUPPORTED") from None
    except OSError as exc:
        raise SpawnError(f"cannot make the cgroup for contain={request.contain!r}: {exc}") from exc


def _spawn(request: SpawnRequest, box: Containment | None) -> Child:
    argv = request.argv
    if request.kill_on_parent_death or isinstance(box, CgroupBox):
        # A trampoline execs the program itself, where a failure could only show as exit code
        # 127 ("exec: not found"): look first, so a program that cannot start gives the same
        # error as without the option.
        _check_program(request)
    if box is not None:
        argv, env = box.prepare(argv, request.env)
        request = replace(request, env=env)
    if request.kill_on_parent_death:
        argv = _wrap_pdeathsig(argv)
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
        if isinstance(exc, OSError):  # the spawn itself, or pipe creation (fd exhaustion)
            raise spawn_error(
                exc, request.argv[0], request.cwd, argv=argv, env=request.env
            ) from exc
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
        box=box,
    )


def _open_pidfd(pid: int) -> int | None:
    if not _HAS_PIDFD:
        return None
    try:
        return os.pidfd_open(pid)
    except OSError:
        # Kernels before 5.3, or seccomp sandboxes that forbid it: fall back to polling waitid.
        return None


if sys.version_info >= (3, 13):

    def _current_environ() -> None:
        """Our environment for the child: None, so posix_spawn passes on the C ``environ``.

        os.environ keeps that in step (putenv), and it is what subprocess and exec give a
        child when no env is passed; nothing to copy.
        """
        return None

else:

    def _current_environ() -> dict[bytes, bytes]:
        """Our environment for the child, as the mapping posix_spawn needs before Python 3.13.

        A copy of ``os.environb``: the cheapest mapping measured (bytes need no encoding, in
        Python or in C). With 35 variables a ``run(["true"])`` costs 33 µs more CPU (+3% wall)
        than handing over os.environ's private dict did; ``dict(os.environ)`` or the
        ``os.environ`` mapping itself cost 85 µs (+9%).
        """
        return dict(os.environb)


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
    env = request.env
    if env is None:
        return os.posix_spawnp(argv[0], argv, _current_environ(), **kwargs)  # type: ignore[arg-type]
    if "/" not in argv[0] and env.get("PATH") != os.environ.get("PATH"):
        # posix_spawnp searches *our* PATH; the program is looked up in the child's.
        program = _find_program(argv[0], env, None)
        return os.posix_spawn(program, argv, env, **kwargs)  # type: ignore[arg-type]
    return os.posix_spawnp(argv[0], argv, env, **kwargs)  # type: ignore[arg-type]


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

    # An OSError (the program or cwd cannot be used) is described by spawn().
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
    # We reap the child ourselves. Mark the Popen finished so neither its __del__ (ResourceWarning)
    # nor subprocess's _cleanup() ever calls waitpid on a pid that may by then belong to another.
    popen.returncode = 0
    return popen.pid


def _find_program(program: str, env: Mapping[str, str] | None, cwd: str | None) -> str:
    """The file ``execvp`` runs for ``program`` in a child with ``env`` (its PATH) and ``cwd``.

    Raises FileNotFoundError, or PermissionError when only files that cannot be executed match
    (as execvp fails with EACCES then).
    """
    if "/" in program:
        path = os.path.join(cwd, program) if cwd else program
        if os.path.exists(path):
            return path
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
    denied = False
    for directory in os.get_exec_path(env):
        path = os.path.join(cwd, directory, program) if cwd else os.path.join(directory, program)
        if os.access(path, os.X_OK) and not os.path.isdir(path):
            return path
        denied = denied or os.path.exists(path)
    if denied:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), program)
    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)


def _check_program(request: SpawnRequest) -> None:
    """Raise the :class:`SpawnError` exec would give for ``request``'s program, if any."""
    program = request.argv[0]
    try:
        path = _find_program(program, request.env, request.cwd)
        if os.path.isdir(path) or not os.access(path, os.X_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), program)
        if _missing_interpreter(path, request.cwd) is not None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
    except OSError as exc:
        raise spawn_error(exc, program, request.cwd, env=request.env) from exc


def _missing_interpreter(path: str, cwd: str | None) -> str | None:
    """The interpreter named on the ``#!`` line of the script ``path``, if it does not exist."""
    try:
        with open(path, "rb") as script:
            head = script.read(256)  # what the kernel reads (BINPRM_BUF_SIZE)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    # As the kernel parses it: spaces and tabs around, the name ends at a space or tab. A "\r"
    # (a script saved with Windows line endings) stays part of the name, for the kernel too.
    line = head[2:].split(b"\n", 1)[0].strip(b" \t")
    name = line.replace(b"\t", b" ").split(b" ", 1)[0]
    if not name:
        return None
    interpreter = os.fsdecode(name)
    if os.path.exists(os.path.join(cwd, interpreter) if cwd else interpreter):
        return None
    return interpreter


def _not_found(program: str, cwd: str | None, env: Mapping[str, str] | None) -> SpawnError:
    """ENOENT from exec: the program is missing, or a file it needs to start is."""
    try:
        path: str | None = _find_program(program, env, cwd)
    except OSError:
        path = None
    if path is None or not os.path.isfile(path):
        return SpawnError(
            f"executable not found: {shorten(program)}", errno_=errno.ENOENT, filename=program
        )
    interpreter = _missing_interpreter(path, cwd)
    if interpreter is None:
        return SpawnError(
            f"cannot start {shorten(path)}: the file exists, but a file it needs to start is "
            "missing (its ELF interpreter or a library loader?)",
            errno_=errno.ENOENT,
            filename=path,
        )
    hint = ""
    if interpreter.endswith("\r"):
        hint = "; the script has Windows (CRLF) line endings"
    return SpawnError(
        f"interpreter not found: {shorten(repr(interpreter))}, named on the #! line of "
        f"{shorten(path)}{hint}",
        errno_=errno.ENOENT,
        filename=interpreter,
    )


def _too_long(argv: list[str], env: Mapping[str, str] | None) -> str:
    """The E2BIG message: how big the arguments and environment are, and the limits."""
    sizes = [len(os.fsencode(arg)) + 1 for arg in argv]
    environ: Mapping[str, str] | Mapping[bytes, bytes] = os.environb if env is None else env
    env_size = sum(len(os.fsencode(k)) + len(os.fsencode(v)) + 2 for k, v in environ.items())
    message = (
        f"argument list too long (E2BIG): {len(argv):,} arguments of {sum(sizes):,} bytes "
        f"and an environment of {env_size:,} bytes"
    )
    limits = []
    with contextlib.suppress(ValueError, OSError):
        limits.append(f"{os.sysconf('SC_ARG_MAX'):,} bytes in all")
    if _IS_LINUX:  # MAX_ARG_STRLEN: 32 pages for one argument or variable
        limits.append(f"{32 * os.sysconf('SC_PAGE_SIZE'):,} bytes in one argument")
    if limits:
        message += f"; the system allows about {' and '.join(limits)}"
    longest = max(sizes) - 1
    if longest > 4096:
        message += f" (the longest argument here has {longest:,} bytes)"
    return message + "; pass large data through input= or a file instead"


def spawn_error(
    exc: OSError,
    program: str,
    cwd: str | None,
    *,
    argv: list[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> SpawnError:
    """Describe an OSError from starting ``program`` (in ``cwd``) as a :class:`SpawnError`.

    ``argv`` (what was exec'd) and ``env`` (the child's environment, None for ours) explain an
    E2BIG and where the program was looked up. Every path in the reason is cut to a readable
    length; ``filename`` keeps it whole.
    """
    code = exc.errno
    at_cwd = cwd is not None and (exc.filename == cwd or not os.path.isdir(cwd))
    if code == errno.ENOENT:
        if cwd is not None and not os.path.isdir(cwd):
            return SpawnError(
                f"working directory not found: {shorten(cwd)}", errno_=code, filename=cwd
            )
        return _not_found(program, cwd, env)
    if code == errno.E2BIG:
        return SpawnError(_too_long(argv or [program], env), errno_=code)
    if code == errno.EACCES:
        if at_cwd:
            assert cwd is not None
            return SpawnError(
                f"permission denied: working directory {shorten(cwd)}", errno_=code, filename=cwd
            )
        return SpawnError(f"permission denied: {shorten(program)}", errno_=code, filename=program)
    if code == errno.ENOTDIR and at_cwd:
        assert cwd is not None
        return SpawnError(f"not a directory: {shorten(cwd)}", errno_=code, filename=cwd)
    if code in (errno.EMFILE, errno.ENFILE):
        return SpawnError(f"out of file descriptors: {exc.strerror}", errno_=code)
    name = exc.filename if isinstance(exc.filename, str) else program
    return SpawnError(f"{exc.strerror or exc}: {shorten(name)}", errno_=code, filename=program)
