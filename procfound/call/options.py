"""Checking a caller's arguments and turning them into an engine :class:`SpawnRequest`.

Every public call validates here, before anything runs, so bad input is a
:class:`~procfound.errors.ValidationError` that names the argument, never a half-started child.
"""

from __future__ import annotations

import codecs
import logging
import math
import numbers
import os
import signal
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from enum import Enum
from types import FrameType
from typing import IO, Any, Final, cast

from procfound.call.stop import (
    StopPolicy,
    parse_contain,
    parse_grace,
    parse_signal,
    resolve_contain,
)
from procfound.engine.kill import DEFAULT_GRACE
from procfound.engine.spawn import Stdio
from procfound.engine.terminal import DEFAULT_SIZE, HAS_TERMINALS
from procfound.errors import PlatformError, ValidationError, shorten

__all__ = [
    "UNSET",
    "IgnoredArgumentWarning",
    "RunOptions",
    "StdioTarget",
    "check_cwd",
    "check_env",
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
# ``bufsize`` is ManagedProcess's read size (each read allocates it up front); a pipe never
# holds more than a few MiB, so a larger read gains nothing and could not even be allocated.
MAX_BUFSIZE: Final = 16 * 1024 * 1024


class _Unset(Enum):
    """Marks a keyword argument the caller did not pass (None means "inherit" for a stream)."""

    UNSET = "unset"


UNSET: Final = _Unset.UNSET
# A standard-stream target: a subprocess constant turned into Stdio, our fd, or a file object
# whose fileno() is read only when the child is spawned (it may be a long time after the call).
StdioTarget = Stdio | int | IO[Any]


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
        checked = {name: _CHECKS[name](value, name) for name, value in kwargs.items()}
        if checked.get("close_fds") is False:
            _warn_ignored(["close_fds=False"], where, "no fd but 0-2 and pass_fds reaches a child")
            checked["close_fds"] = True
        options = cls(**checked)
        if "encoding" in checked or "errors" in checked:  # the defaults are known to work
            _check_codec(options.encoding, options.errors)
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


# Bytes that every usable text codec decodes, with errors="replace", without raising: procfound
# decodes diagnostics (error tails, the last 64 KiB of a stream, handshake text) that way, cut
# at any byte. A codec that cannot (idna; punycode; utf-16 and utf-32 without their BOM) would
# fail there after the command ran.
_CODEC_PROBE: Final = b"ok\n\xff\xfe\xfd\n"


# Codecs for domain-name labels. Python 3.13's punycode decodes arbitrary bytes with
# errors="replace" to an empty string (3.11 raised), so the decode probe below cannot be trusted
# to refuse them: they are refused by name.
_LABEL_CODECS: Final = frozenset({"idna", "punycode"})


def _encoding(value: object, name: str) -> str:
    """``encoding``: a text codec with an incremental decoder that can decode any bytes."""
    if value is None:
        return "utf-8"
    encoding = _str(value, name)
    _check_no_nul(encoding, name)  # codecs.lookup would raise ValueError/UnicodeEncodeError
    try:
        info = codecs.lookup(encoding)
    except LookupError as exc:
        raise ValidationError(
            f"unknown {name} {shorten(repr(encoding))}: {shorten(str(exc), 100)}",
            code="INVALID_ARGUMENT",
        ) from None
    if not getattr(info, "_is_text_encoding", True) or info.incrementaldecoder is None:
        raise ValidationError(
            f"{name} {encoding!r} is not a text encoding (bytes to str, read piece by piece); "
            "pass one such as 'utf-8' or 'latin-1', or text=False for bytes",
            code="INVALID_ARGUMENT",
        )
    if info.name in _LABEL_CODECS:  # domain-name labels, not text streams
        raise ValidationError(
            f"{name} {encoding!r} encodes domain-name labels, not output (on some Pythons it "
            "decodes any bytes to nothing, silently); pass one such as 'utf-8' or 'latin-1', "
            "or text=False for bytes",
            code="INVALID_ARGUMENT",
        )
    try:
        codecs.getincrementaldecoder(encoding)("replace").decode(_CODEC_PROBE, final=True)
    except (UnicodeError, LookupError, TypeError) as exc:
        hint = " (utf-16-le or utf-16-be need no BOM)" if "BOM" in str(exc) else ""
        raise ValidationError(
            f"{name} {encoding!r} cannot decode output cut at any byte ({exc}); pass another "
            f"encoding{hint}, or text=False for bytes",
            code="INVALID_ARGUMENT",
        ) from None
    return encoding


def _errors(value: object, name: str) -> str:
    """``errors``: the name of a registered error handler."""
    if value is None:
        return "replace"
    errors = _str(value, name)
    _check_no_nul(errors, name)  # codecs.lookup_error would raise ValueError/UnicodeEncodeError
    try:
        codecs.lookup_error(errors)
    except LookupError as exc:
        raise ValidationError(
            f"unknown {name} handler {shorten(repr(errors))}: {shorten(str(exc), 100)}",
            code="INVALID_ARGUMENT",
        ) from None
    return errors


def _check_codec(encoding: str, errors: str) -> None:
    # Checked before anything runs: a handler that cannot decode would otherwise surface only
    # after the command had finished, when its output is decoded. Raising UnicodeDecodeError
    # ("strict") is a handler's right: that becomes a DecodeError keeping the output.
    try:
        _CODEC_PROBE.decode(encoding, errors)
    except UnicodeDecodeError:
        pass
    except (UnicodeError, LookupError, TypeError) as exc:
        raise ValidationError(
            f"errors={errors!r} cannot be used to decode {encoding!r} ({exc}); pass 'replace', "
            "'strict', 'ignore', 'backslashreplace' or 'surrogateescape'",
            code="INVALID_ARGUMENT",
        ) from None


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
        raise PlatformError(
            f"pty=True needs pseudo-terminals (Linux or macOS); {sys.platform} has none here",
            code="PLATFORM_NOT_SUPPORTED",
        )
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


def _pty_size(value: object, name: str) -> tuple[int, int]:
    """``pty_size``: (rows, columns), each from 1 to 65535 (the kernel keeps them as shorts)."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) or len(value) != 2:
        raise ValidationError(
            f"{name} must be (rows, columns), such as (24, 80), not {shorten(repr(value))}",
            code="INVALID_ARGUMENT",
        )
    return _int(value[0], f"{name} rows", 1, 65535), _int(value[1], f"{name} columns", 1, 65535)


def _str(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a str", code="INVALID_ARGUMENT")
    return value


def _bool(value: object, name: str) -> bool:
    if not isinstance(value, bool | int):
        raise ValidationError(f"{name} must be True or False", code="INVALID_ARGUMENT")
    return bool(value)


def _optional_bool(value: object, name: str) -> bool | None:
    return None if value is None else _bool(value, name)


def _int(value: object, name: str, minimum: int, maximum: int = 2**31 - 1) -> int:
    # The bound keeps a huge int from reaching C (pid_t, uid_t, mode_t) as an OverflowError.
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ValidationError(
            f"{name} must be an int from {minimum} to {maximum}, not {shorten(repr(value))}",
            code="INVALID_ARGUMENT",
        )
    return int(value)


def _open_fd(fd: int, name: str) -> int:
    try:
        os.fstat(fd)
    except (OSError, OverflowError):
        raise ValidationError(
            f"{name}: {fd} is not an open file descriptor", code="INVALID_ARGUMENT"
        ) from None
    return fd


def check_stdio(value: object, name: str) -> StdioTarget:
    """A standard-stream target with :mod:`subprocess`'s meaning, checked.

    ``subprocess.PIPE``, ``DEVNULL``, ``STDOUT`` (stderr only) or None (inherit ours) become a
    :class:`Stdio`; an fd must be open; a file object must have a working ``fileno()``.
    """
    if value is None:
        return Stdio.INHERIT
    if isinstance(value, Stdio):
        return value
    if isinstance(value, bool):
        raise ValidationError(f"{name} must not be a bool", code="INVALID_ARGUMENT")
    if isinstance(value, int):
        special = _SUBPROCESS_CONSTANTS.get(value)
        if special is not None:
            return special
        return _open_fd(value, f"{name}={value}")
    fileno = getattr(value, "fileno", None)
    if fileno is None:
        hint = ""
        if isinstance(value, bytes | bytearray | str):
            hint = " (data for the child's stdin goes in input=)" if name == "stdin" else ""
            hint = hint or " (a path? open the file and pass the file object)"
        raise ValidationError(
            f"{name} must be subprocess.PIPE, DEVNULL, STDOUT, None, a file descriptor or a "
            f"file object, not {type(value).__name__}{hint}",
            code="INVALID_ARGUMENT",
        )
    _open_fd(_fileno(value, name), name)
    return cast(IO[Any], value)


def _fileno(value: object, name: str) -> int:
    try:
        fd = cast(IO[Any], value).fileno()
    except (OSError, ValueError) as exc:  # io.UnsupportedOperation is both
        raise ValidationError(
            f"{name}: {type(value).__name__} has no file descriptor ({exc}); pass a real file, "
            "or subprocess.PIPE and take the output from the result",
            code="INVALID_ARGUMENT",
        ) from None
    return fd


def stdio_fd(target: StdioTarget) -> Stdio | int:
    """The engine's form of a target: a file object becomes its fd, read now (at spawn)."""
    if isinstance(target, Stdio | int):
        return target
    return _open_fd(_fileno(target, "a file object given as a stream"), "the stream's file")


_SUBPROCESS_CONSTANTS: Final = {
    subprocess.PIPE: Stdio.PIPE,
    subprocess.DEVNULL: Stdio.DEVNULL,
    subprocess.STDOUT: Stdio.STDOUT,
}


def _pass_fds(value: object, name: str) -> tuple[int, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValidationError(f"{name} must be a sequence of fds", code="INVALID_ARGUMENT")
    fds = []
    for fd in value:
        if isinstance(fd, bool) or not isinstance(fd, int) or fd < 0:
            raise ValidationError(
                f"{name}: {fd!r} is not a file descriptor", code="INVALID_ARGUMENT"
            )
        fds.append(_open_fd(fd, f"{name} {fd}"))
    return tuple(sorted(set(fds)))


def _process_group(value: object, name: str) -> int | None:
    return None if value is None else _int(value, name, 0)


def _id(value: object, name: str, kind: str) -> int:
    if isinstance(value, str):
        _check_no_nul(value, name)  # pwd and grp would raise ValueError/UnicodeEncodeError
        try:
            if kind == "user":
                import pwd

                return pwd.getpwnam(value).pw_uid
            import grp

            return grp.getgrnam(value).gr_gid
        except KeyError:
            raise ValidationError(
                f"{name}: no {kind} named {shorten(repr(value))}", code="INVALID_ARGUMENT"
            ) from None
        except ImportError:  # pragma: no cover - every POSIX system has pwd and grp
            raise ValidationError(
                f"{name} must be a number on this platform", code="INVALID_ARGUMENT"
            ) from None
    return _int(value, name, 0, 2**32 - 2)  # (uid_t)-1 means "unchanged"


def _user(value: object, name: str) -> int | None:
    return None if value is None else _id(value, name, "user")


def _group(value: object, name: str) -> int | None:
    return None if value is None else _id(value, name, "group")


def _extra_groups(value: object, name: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValidationError(
            f"{name} must be a list of groups, not a str", code="INVALID_ARGUMENT"
        )
    return tuple(_id(group, name, "group") for group in value)


def _pipesize(value: object, name: str) -> int:
    size = _int(value, name, -1)
    return size if size > 0 else -1


def _program(value: object, name: str) -> str | None:
    if value is None:
        return None
    path = os.fspath(value) if isinstance(value, os.PathLike) else value
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str) or not path:
        raise ValidationError(f"{name} must be a non-empty str or a Path", code="INVALID_ARGUMENT")
    _check_no_nul(path, name)
    return path


def _startupinfo(value: object, name: str) -> object:
    if value is not None:
        raise ValidationError(
            "startupinfo is only supported on Windows; pass None on POSIX",
            code="PLATFORM_NOT_SUPPORTED",
        )
    return None


def _creationflags(value: object, name: str) -> int:
    if value:
        raise ValidationError(
            "creationflags is only supported on Windows; pass 0 on POSIX",
            code="PLATFORM_NOT_SUPPORTED",
        )
    return 0


def _ok_codes(value: object, name: str) -> frozenset[int]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValidationError(
            f"{name} must be an iterable of exit codes (ints), such as (0, 1)",
            code="INVALID_ARGUMENT",
        )
    codes = frozenset(_int(code, f"an exit code in {name}", -255, 255) for code in value)
    if not codes:
        raise ValidationError(
            f"{name} must name at least one exit code (0 is not implied)", code="INVALID_ARGUMENT"
        )
    return codes


_CHECKS: Final[dict[str, Callable[[Any, str], Any]]] = {
    "encoding": _encoding,
    "errors": _errors,
    "foreground": _bool,
    "contain": lambda value, name: None if value is None else parse_contain(value, name),
    "stop_signal": lambda value, name: parse_signal(value, name),
    "kill_grace": lambda value, name: parse_grace(value, name),
    "stdin": check_stdio,
    "stdout": check_stdio,
    "stderr": check_stdio,
    "pass_fds": _pass_fds,
    "start_new_session": _bool,
    "process_group": _process_group,
    "user": _user,
    "group": _group,
    "extra_groups": _extra_groups,
    "umask": lambda value, name: _int(value, name, -1, 0o7777),
    "restore_signals": _bool,
    "pipesize": _pipesize,
    "executable": _program,
    "process_title": _program,
    "print_output": _bool,
    "text": _optional_bool,
    "universal_newlines": _optional_bool,
    "startupinfo": _startupinfo,
    "creationflags": _creationflags,
    "close_fds": _bool,
    "bufsize": lambda value, name: _int(value, name, -1, MAX_BUFSIZE),
    "idle_timeout": lambda value, name: check_timeout(value, name),
    "inherit_env": _bool,
    "ok_codes": lambda value, name: _ok_codes(value, name),
    "pty": _bool,
    "pty_size": _pty_size,
}


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
assert set(_CHECKS) == _OPTION_NAMES, "every option has its check"


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
        _check_no_nul(cmd, "command")
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
        _check_no_nul(arg, "argument")
        argv.append(arg)
    if not argv[0]:
        raise ValidationError(
            "the program name (the first element of the command) is empty",
            code="INVALID_ARGUMENT",
        )
    return argv


def check_text(value: object, name: str) -> str:
    """``value`` as a str that can reach the OS: no NUL, no lone surrogate (a name, a title).

    Example:
        >>> check_text("worker-1", "name")
        'worker-1'
    """
    if not isinstance(value, str):
        raise ValidationError(
            f"{name} must be a str, not {type(value).__name__}", code="INVALID_ARGUMENT"
        )
    _check_no_nul(value, name)
    return value


def _check_no_nul(value: str, what: str) -> None:
    if "\0" in value:
        raise ValidationError(f"{what} contains a NUL character", code="INVALID_ARGUMENT")
    _check_encodable(value, what)


def _check_encodable(value: str, what: str) -> None:
    # A lone surrogate ("\ud800") cannot be passed to exec; say so before anything runs.
    try:
        os.fsencode(value)
    except UnicodeEncodeError:
        raise ValidationError(
            f"{what} cannot be encoded for the operating system (a lone surrogate?)",
            code="INVALID_ARGUMENT",
        ) from None


def check_timeout(timeout: object, name: str = "timeout") -> float | None:
    """``timeout`` as seconds, or None; refuse negative, NaN and non-numbers.

    Any real number is accepted (a numpy value or a Fraction too). One too large for a float
    (``10**400``) is longer than anything will run: it becomes ``math.inf``, no deadline.

    Example:
        >>> check_timeout(10**400), check_timeout(2)
        (inf, 2.0)
    """
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real):
        raise ValidationError(
            f"{name} must be a number of seconds or None, not {type(timeout).__name__}",
            code="INVALID_TIMEOUT",
        )
    try:
        seconds = float(timeout)
    except OverflowError:
        seconds = -math.inf if cast(float, timeout) < 0 else math.inf
    if math.isnan(seconds):
        raise ValidationError(
            f"{name} must be a number of seconds or None, not NaN", code="INVALID_TIMEOUT"
        )
    if seconds < 0:
        raise ValidationError(f"{name} must not be negative", code="INVALID_TIMEOUT")
    return seconds


def check_max_bytes(value: object, name: str) -> int | None:
    """A byte cap (``max_output``, ``max_line``): None or a positive int."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValidationError(
            f"{name} must be a positive number of bytes or None", code="INVALID_ARGUMENT"
        )
    return value


def check_cwd(cwd: object) -> str | None:
    """``cwd`` as a str (a Path is converted), or None; refuse what no directory can be named.

    A lone surrogate that stands for an undecodable byte (``"\\udc80"``, as ``os.listdir``
    returns such names) is a valid name; one that stands for nothing (``"\\ud800"``) is not.
    """
    if cwd is None:
        return None
    path = os.fspath(cwd) if isinstance(cwd, os.PathLike) else cwd
    if not isinstance(path, str):
        hint = " (os.fsdecode() turns bytes into one)" if isinstance(path, bytes) else ""
        raise ValidationError(f"cwd must be a str or a Path{hint}", code="INVALID_ARGUMENT")
    if not path:
        raise ValidationError(
            "cwd must not be empty (None runs in the current directory)", code="INVALID_ARGUMENT"
        )
    _check_no_nul(path, "cwd")
    return path


def check_env(env: object) -> dict[str, str | None] | None:
    """The caller's overrides as a dict (None when none, as the seed stores them); a None
    value removes that variable from the child's environment."""
    if env is None:
        return None
    if not isinstance(env, Mapping):
        raise ValidationError("env must be a mapping of str to str", code="INVALID_ARGUMENT")
    overrides: dict[str, str | None] = {}
    for key, value in env.items():
        # Never echo the value: env overrides are often credentials.
        if not isinstance(key, str) or not key or "=" in key or "\0" in key:
            raise ValidationError(f"invalid environment variable name {key!r}", code="INVALID_ENV")
        if value is None:  # remove it from the child's environment
            _check_encodable(key, "an environment variable name")
            overrides[key] = None
            continue
        if not isinstance(value, str) or "\0" in value:
            raise ValidationError(
                f"environment variable {key} must have a str value without NUL characters "
                "(or None to remove it)",
                code="INVALID_ENV",
            )
        _check_encodable(key, "an environment variable name")
        _check_encodable(value, f"the value of environment variable {key}")
        overrides[key] = value
    return overrides or None


def to_input_bytes(data: object, encoding: str) -> bytes | None:
    """``input`` as bytes: str is encoded, bytes-like objects are taken as they are."""
    if data is None:
        return None
    if isinstance(data, str):
        try:
            return data.encode(encoding)
        except UnicodeEncodeError as exc:
            # The input is never echoed (it may be a secret); the character and place are.
            raise ValidationError(
                f"input cannot be encoded with {encoding!r}: character "
                f"{exc.object[exc.start : exc.start + 1]!r} at index {exc.start}: {exc.reason}; "
                "pass bytes, or another encoding= (it also decodes the output)",
                code="INVALID_ARGUMENT",
            ) from None
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    raise ValidationError("input must be bytes or str", code="INVALID_ARGUMENT")


def redacted_env(overrides: Mapping[str, str | None] | None) -> dict[str, str] | None:
    """The overrides with every value hidden, for logs and reprs."""
    return None if overrides is None else dict.fromkeys(overrides, "***")
