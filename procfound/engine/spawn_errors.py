"""How a failed spawn is described: the :class:`SpawnError` and the wording of its reason.

An ``OSError`` from starting a child says little (``ENOENT`` for a missing program, a missing
working directory, a missing ``#!`` interpreter or ELF loader alike). :func:`spawn_error` finds
out which it was and says so, naming the path; ``engine/spawn.py`` marks the errors it knows
more about (a failure before exec, a cgroup join) with the attributes defined here.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Mapping
from typing import Final

from procfound.errors import shorten

__all__ = [
    "BEFORE_EXEC",
    "CGROUP_JOIN",
    "SpawnError",
    "find_program",
    "missing_interpreter",
    "spawn_error",
]

_IS_LINUX: Final = sys.platform.startswith("linux")


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


# Set on the OSError of a child that failed before exec (changing directory, user, group or
# umask). An attribute rather than a subclass: OSError(ENOENT, ...) must stay the
# FileNotFoundError that subprocess (the fallback path) raises for the same failure.
BEFORE_EXEC: Final = "_procfound_before_exec"
# Set on the OSError of a spawn helper that could not join the call's cgroup.
CGROUP_JOIN: Final = "_procfound_cgroup_join"


def find_program(program: str, env: Mapping[str, str] | None, cwd: str | None) -> str:
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


def missing_interpreter(path: str, cwd: str | None) -> str | None:
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
        path: str | None = find_program(program, env, cwd)
    except OSError:
        path = None
    if path is None or not os.path.isfile(path):
        return SpawnError(
            f"executable not found: {shorten(program)}", errno_=errno.ENOENT, filename=program
        )
    interpreter = missing_interpreter(path, cwd)
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
    if getattr(exc, CGROUP_JOIN, False):
        return SpawnError(
            f"cannot start {shorten(program)}: it could not join the cgroup of its call "
            f"(contain='tree'/'cgroup'): {exc.strerror}",
            errno_=code,
        )
    if getattr(exc, BEFORE_EXEC, False) and not at_cwd:
        return SpawnError(
            f"cannot start {shorten(program)}: setting its user, groups or umask failed: "
            f"{exc.strerror}",
            errno_=code,
        )
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
