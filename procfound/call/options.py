"""Checking a caller's arguments and turning them into an engine :class:`SpawnRequest`.

Every public call validates here, before anything runs, so bad input is a
:class:`~procfound.errors.ValidationError` that names the argument, never a half-started child.
:class:`RunOptions` holds the keyword controls; the check of each value is in
:mod:`procfound.call.checks` (its public checks are re-exported here).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from enum import Enum
from types import FrameType
from typing import Any, Final

from procfound.call.checks import (
    CHECKS,
    MAX_BUFSIZE,
    StdioTarget,
    check_codec,
    check_cwd,
    check_env,
    check_max_bytes,
    check_no_nul,
    check_stdio,
    check_text,
    check_timeout,
    stdio_fd,
    to_input_bytes,
)
from procfound.call.stop import StopPolicy, resolve_contain
from procfound.engine.kill import DEFAULT_GRACE
from procfound.engine.spawn import Stdio
from procfound.engine.terminal import DEFAULT_SIZE, HAS_TERMINALS, NO_TERMINALS
from procfound.errors import PlatformError, ValidationError

__all__ = [
    "MAX_BUFSIZE",
    "SHELL",
    "UNSET",
    "IgnoredArgumentWarning",
    "RunOptions",
    "StdioTarget",
    "check_cwd",
    "check_env",
    "check_max_bytes",
    "check_stdio",
    "check_text",
    "check_timeout",
    "command_list",
    "logger",
    "redacted_env",
    "stdio_fd",
    "stop_policy_of",
    "to_input_bytes",
]

logger: Final = logging.getLogger("procfound")

SHELL: Final = "/bin/sh"


class _Unset(Enum):
    """Marks a keyword argument the caller did not pass (None means "inherit" for a stream)."""

    UNSET = "unset"


UNSET: Final = _Unset.UNSET


@dataclass(frozen=True, slots=True)
class RunOptions:
    """The keyword controls every call that starts a child accepts (``**kwargs`` in the seed).

    ``encoding`` / ``errors`` choose how text output is decoded (UTF-8 with replacement by
    default): a text codec that decodes output cut at any byte (not ``rot13``, ``idna``,
    ``punycode`` or BOM-bound ``utf-16``), and a handler that can decode; output that a
    refusing handler (``"strict"``) cannot decode raises :class:`~procfound.DecodeError`.
    ``foreground=True`` keeps the child in our process group with our stdin, like
    ``timeout --foreground``: it may use the terminal, but only the child itself (not its tree)
    is signalled on timeout or cancellation (and, with ``contain="tree"``, its descendants).

    ``contain`` chooses what is stopped when the call ends: ``"group"`` (the process group and
    the child itself), ``"tree"`` (every descendant, even those that left the group: a cgroup v2
    where one is writable, else an environment marker), ``"cgroup"`` (the cgroup, or
    ``PlatformError``); None takes ``PROCFOUND_CONTAIN``, then the call's own default.
    ``stop_signal`` is sent first (default SIGTERM; a number, a ``signal.Signals`` or a name
    such as ``"SIGINT"``) and ``kill_grace`` seconds later SIGKILL (0: at once).

    ``encoding=None`` / ``errors=None`` (subprocess's defaults) mean procfound's defaults;
    ``close_fds=True`` is what always happens (``False`` is ignored with a warning) and
    ``bufsize`` (-1 to 16 MiB) has nothing to buffer here (accepted, without effect; it is
    ManagedProcess's read size). ``inherit_env=False`` starts the child with exactly ``env``
    (a program named without a ``/`` is then looked up in our own PATH when ``env`` has none);
    ``ok_codes`` are the exit codes ``check=True`` accepts.
    The rest have :class:`subprocess.Popen`'s meaning (docs/migrate/from-subprocess.md):
    ``stdin``/``stdout``/``stderr`` targets (UNSET: the call's own choice), ``pass_fds``,
    ``start_new_session``, ``process_group``, ``user``, ``group``, ``extra_groups`` (resolved to
    ids), ``umask``, ``restore_signals``, ``pipesize``, ``executable``; ``text`` and
    ``universal_newlines`` (None: not passed). ``process_title`` is the child's ``argv[0]``
    (what ``ps`` shows); ``print_output`` echoes the output to our ``sys.stdout`` as it arrives.
    ``idle_timeout`` stops the tree once neither stdout nor stderr produced a byte for that many
    seconds (None: no limit). ``pty=True`` runs the child on a new pseudo-terminal of
    ``pty_size`` (rows, columns), its stdout and stderr merged (``engine/terminal.py``).
    """

    encoding: str = "utf-8"
    errors: str = "replace"
    foreground: bool = False
    contain: str | None = None
    stop_signal: int = signal.SIGTERM
    kill_grace: float = DEFAULT_GRACE
    stdin: StdioTarget | _Unset = UNSET
    stdout: StdioTarget | _Unset = UNSET
    stderr: StdioTarget | _Unset = UNSET
    pass_fds: tuple[int, ...] = ()
    start_new_session: bool = False
    process_group: int | None = None
    user: int | None = None
    group: int | None = None
    extra_groups: tuple[int, ...] | None = None
    umask: int = -1
    restore_signals: bool = True
    pipesize: int = -1
    executable: str | None = None
    process_title: str | None = None
    print_output: bool = False
    text: bool | None = None
    universal_newlines: bool | None = None
    startupinfo: object = None  # Windows only: refused on POSIX unless None
    creationflags: int = 0  # Windows only: refused on POSIX unless 0
    close_fds: bool = True  # always what happens; False is ignored with a warning
    bufsize: int = -1  # no file objects here to buffer: accepted, without effect
    idle_timeout: float | None = None
    inherit_env: bool = True  # False: the child's environment is exactly env
    ok_codes: frozenset[int] = frozenset({0})  # the exit codes check=True accepts
    pty: bool = False  # a pseudo-terminal as stdin, stdout, stderr and controlling terminal
    pty_size: tuple[int, int] = DEFAULT_SIZE  # its (rows, columns)

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any], where: str = "this call") -> RunOptions:
        """Validate a call's keyword controls; unknown ones are dropped with a warning.

        Args:
            kwargs: The keyword arguments beyond the named parameters.
            where: The public function they were passed to, for messages (``"run()"``).
        """
        if not kwargs:  # the common call: the defaults are valid
            return _DEFAULT_OPTIONS
        unknown = [name for name in kwargs if name not in _OPTION_NAMES]
        if unknown:
            _warn_ignored(unknown, where)
            kwargs = {name: value for name, value in kwargs.items() if name in _OPTION_NAMES}
        checked = {name: CHECKS[name](value, name) for name, value in kwargs.items()}
        if checked.get("close_fds") is False:
            _warn_ignored(["close_fds=False"], where, "no fd but 0-2 and pass_fds reaches a child")
            checked["close_fds"] = True
        options = cls(**checked)
        if "encoding" in checked or "errors" in checked:  # the defaults are known to work
            check_codec(options.encoding, options.errors)
        _check_combinations(options)
        return options


def _warn_ignored(names: list[str], where: str, why: str = "") -> None:
    listed = ", ".join(map(repr, names))
    message = (
        f"{where} ignored {listed}: {why}"
        if why
        else f"{where} ignored unknown keyword argument(s) {listed} "
        "(dropped as provide.foundation.process drops them; see the migration guide)"
    )
    warnings.warn(IgnoredArgumentWarning(message), stacklevel=_caller_level())


def _caller_level() -> int:
    """The stacklevel of the first frame outside procfound (and the event loops and threads it
    runs in), so the warning points at the caller's line. A sync call validates in the portal
    thread, where there is none: the warning then points here (the message names the call)."""
    frame: FrameType | None = sys._getframe(2)  # the frame of stacklevel 2: from_kwargs
    level = 2
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not module.startswith(_NOT_THE_CALLER):
            return level
        frame = frame.f_back
        level += 1
    return 2


_NOT_THE_CALLER: Final = (
    "procfound",
    "anyio",
    "trio",
    "asyncio",
    "contextlib",
    "threading",
    "concurrent",
    "outcome",
    "sniffio",
    "selectors",
)


def _check_combinations(options: RunOptions) -> None:
    if options.foreground and (options.start_new_session or options.process_group is not None):
        raise ValidationError(
            "foreground=True keeps the child in our process group; it cannot be combined with "
            "start_new_session or process_group",
            code="INVALID_ARGUMENT",
        )
    if options.start_new_session and options.process_group:
        raise ValidationError(
            "start_new_session gives the child a group of its own; process_group cannot "
            "choose another",
            code="INVALID_ARGUMENT",
        )
    if options.pty:
        _check_pty(options)
    for name in ("stdin", "stdout"):
        if getattr(options, name) is Stdio.STDOUT:
            raise ValidationError(
                f"{name}=subprocess.STDOUT is only meaningful for stderr", code="INVALID_ARGUMENT"
            )


def _check_pty(options: RunOptions) -> None:
    if not HAS_TERMINALS:
        raise PlatformError(NO_TERMINALS, code="PLATFORM_NOT_SUPPORTED")
    # What a terminal does anyway may be said: its output is read (stdout=PIPE), stderr merged.
    said = {"stdin": (UNSET,), "stdout": (UNSET, Stdio.PIPE), "stderr": (UNSET, Stdio.STDOUT)}
    for name, fine in said.items():
        if getattr(options, name) not in fine:
            raise ValidationError(
                f"pty=True makes the terminal the child's stdin, stdout and stderr; {name}= "
                "cannot send it elsewhere (drop one of them)",
                code="INVALID_ARGUMENT",
            )
    chosen = "foreground" if options.foreground else None
    if options.process_group is not None:
        chosen = "process_group"
    if chosen:
        raise ValidationError(
            f"pty=True starts the child in a session of its own (its terminal's); {chosen}= "
            "cannot keep it in another group",
            code="INVALID_ARGUMENT",
        )


class IgnoredArgumentWarning(UserWarning):
    """An unknown keyword argument was passed and ignored (as the seed library ignores it).

    Make a test suite strict with ``warnings.simplefilter("error", IgnoredArgumentWarning)``
    (or pytest's ``-W error::procfound.IgnoredArgumentWarning``; ``python -W`` cannot name it,
    since it is read before third-party modules can be imported): each one then raises.

    Example:
        >>> import warnings
        >>> from procfound import run
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("error", IgnoredArgumentWarning)
        ...     try:
        ...         run(["true"], preexec_fn=None)
        ...     except IgnoredArgumentWarning as warning:
        ...         print(warning)
        run() ignored unknown keyword argument(s) 'preexec_fn' (dropped as ...)
    """


_DEFAULT_OPTIONS: Final = RunOptions()
_OPTION_NAMES: Final = frozenset(field.name for field in fields(RunOptions))
assert set(CHECKS) == _OPTION_NAMES, "every option has its check"


def stop_policy_of(options: RunOptions, default_contain: str) -> StopPolicy:
    """The call's stop policy: its ``stop_signal``, ``kill_grace`` and ``contain`` (checked by
    :func:`~procfound.call.stop.stop_policy`'s parts when the options were made), with
    ``PROCFOUND_CONTAIN`` and then ``default_contain`` where it chose no level."""
    contain = resolve_contain(options.contain, default_contain)
    return StopPolicy(options.stop_signal, options.kill_grace, contain)


def command_list(cmd: object, *, shell: bool) -> list[str]:
    """The argv for ``cmd``: a shell string becomes ``/bin/sh -c cmd``; a list is checked."""
    if shell:
        if not isinstance(cmd, str):
            raise ValidationError(
                "shell=True needs the command as one string; pass a list without shell=True",
                code="INVALID_COMMAND_TYPE",
            )
        check_no_nul(cmd, "command")
        return [SHELL, "-c", cmd]
    if isinstance(cmd, str | bytes):
        raise ValidationError(
            "a command given as a string needs shell=True (or use shell()); "
            "pass a list of arguments to run it without a shell",
            code="INVALID_COMMAND_TYPE",
        )
    if not isinstance(cmd, Sequence) or not cmd:
        raise ValidationError(
            "the command must be a non-empty list of strings", code="INVALID_COMMAND_TYPE"
        )
    argv: list[str] = []
    for arg in cmd:
        if isinstance(arg, os.PathLike):
            arg = os.fspath(arg)
        if not isinstance(arg, str):
            raise ValidationError(
                f"every argument must be a str, got {type(arg).__name__}",
                code="INVALID_COMMAND_TYPE",
            )
        check_no_nul(arg, "argument")
        argv.append(arg)
    if not argv[0]:
        raise ValidationError(
            "the program name (the first element of the command) is empty",
            code="INVALID_ARGUMENT",
        )
    return argv


def redacted_env(overrides: Mapping[str, str | None] | None) -> dict[str, str] | None:
    """The overrides with every value hidden, for logs and reprs."""
    return None if overrides is None else dict.fromkeys(overrides, "***")
