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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, Final, cast

from procfound.engine.contain import CONTAIN_LEVELS
from procfound.engine.kill import DEFAULT_GRACE
from procfound.engine.spawn import SpawnRequest, Stdio
from procfound.errors import ValidationError

__all__ = [
    "RunOptions",
    "build_request",
    "check_cwd",
    "check_timeout",
    "command_list",
    "logger",
    "redacted_env",
    "to_input_bytes",
]

logger: Final = logging.getLogger("procfound")

SHELL: Final = "/bin/sh"
CONTAIN_ENV: Final = "PROCFOUND_CONTAIN"


@dataclass(frozen=True, slots=True)
class RunOptions:
    """The extra keyword options every run-like call accepts (``**kwargs`` in the seed's API).

    ``encoding`` / ``errors`` choose how text output is decoded (UTF-8 with replacement by
    default); ``foreground=True`` keeps the child in our process group with our stdin, like
    ``timeout --foreground``: it may use the terminal, but only the child itself (not its tree)
    is signalled on timeout or cancellation (and, with ``contain="tree"``, its descendants).

    ``contain`` chooses what is stopped when the call ends: ``"group"`` (the process group and
    the child itself), ``"tree"`` (every descendant, even those that left the group: a cgroup v2
    where one is writable, else an environment marker), ``"cgroup"`` (the cgroup, or
    ``PlatformError``); None takes ``PROCFOUND_CONTAIN``, then the call's own default.
    ``stop_signal`` is sent first (default SIGTERM; a number, a ``signal.Signals`` or a name
    such as ``"SIGINT"``) and ``kill_grace`` seconds later SIGKILL (0: at once).
    """

    encoding: str = "utf-8"
    errors: str = "replace"
    foreground: bool = False
    contain: str | None = None
    stop_signal: int = signal.SIGTERM
    kill_grace: float = DEFAULT_GRACE

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> RunOptions:
        if not kwargs:  # the common call: the defaults are valid, and checked below once
            return _DEFAULT_OPTIONS
        names = [field.name for field in fields(cls)]
        unknown = sorted(set(kwargs) - set(names))
        if unknown:
            raise ValidationError(
                f"unsupported keyword argument(s): {', '.join(unknown)}; "
                f"procfound accepts {', '.join(names)} besides the named parameters",
                code="INVALID_ARGUMENT",
            )
        options = cls(**kwargs)
        if kwargs.keys() & {"contain", "stop_signal", "kill_grace"}:
            options = replace(
                options,
                contain=_check_contain(options.contain, "contain"),
                stop_signal=_check_signal(options.stop_signal),
                kill_grace=_check_grace(options.kill_grace),
            )
        for name in ("encoding", "errors"):
            if not isinstance(getattr(options, name), str):
                raise ValidationError(f"{name} must be a str", code="INVALID_ARGUMENT")
        # Checked before anything runs: a misspelt codec would otherwise surface only after
        # the command had finished, when its output is decoded.
        for name, lookup in (("encoding", codecs.lookup), ("errors", codecs.lookup_error)):
            value = getattr(options, name)
            try:
                lookup(value)
            except LookupError as exc:
                raise ValidationError(
                    f"unknown {name} {value!r}: {exc}", code="INVALID_ARGUMENT"
                ) from exc
        try:  # a bytes-to-bytes codec ("hex", "zlib") exists but cannot decode text
            b"".decode(options.encoding)
            "".encode(options.encoding)
        except LookupError as exc:
            raise ValidationError(
                f"encoding {options.encoding!r} cannot be used: {exc}", code="INVALID_ARGUMENT"
            ) from exc
        return options


_VALID_SIGNALS: Final = frozenset(signal.valid_signals())
_DEFAULT_OPTIONS: Final = RunOptions()


def _check_contain(value: object, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value.strip().lower() not in CONTAIN_LEVELS:
        raise ValidationError(
            f"{where} must be one of {', '.join(map(repr, CONTAIN_LEVELS))}, not {value!r}",
            code="INVALID_ARGUMENT",
        )
    return value.strip().lower()


def _check_signal(value: object) -> int:
    if isinstance(value, str):
        name = value.strip().upper()
        name = name if name.startswith("SIG") else "SIG" + name
        sig = getattr(signal.Signals, name, None) if name.isidentifier() else None
        if sig is None:
            raise ValidationError(f"unknown stop_signal {value!r}", code="INVALID_ARGUMENT")
        return int(sig)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(
            "stop_signal must be a signal number, a signal.Signals or a name like 'SIGINT'",
            code="INVALID_ARGUMENT",
        )
    if value not in _VALID_SIGNALS or value == 0:
        raise ValidationError(f"stop_signal {value} is not a signal", code="INVALID_ARGUMENT")
    return int(value)


def _check_grace(value: object) -> float:
    seconds = check_timeout(value, "kill_grace")
    if seconds is None or math.isinf(seconds):
        raise ValidationError(
            "kill_grace must be a finite number of seconds (the tree is always SIGKILLed after it)",
            code="INVALID_ARGUMENT",
        )
    return seconds


def resolve_contain(options: RunOptions, default: str) -> str:
    """The containment level of a call: its own, else ``PROCFOUND_CONTAIN``, else ``default``."""
    if options.contain is not None:
        return options.contain
    from_env = os.environ.get(CONTAIN_ENV, "").strip()
    if from_env:
        level = _check_contain(from_env, f"the environment variable {CONTAIN_ENV}")
        assert level is not None
        return level
    return default


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


def check_env(env: object) -> dict[str, str] | None:
    """The caller's overrides as a dict (None when none, as the seed stores them)."""
    if env is None:
        return None
    if not isinstance(env, Mapping):
        raise ValidationError("env must be a mapping of str to str", code="INVALID_ARGUMENT")
    overrides: dict[str, str] = {}
    for key, value in env.items():
        # Never echo the value: env overrides are often credentials.
        if not isinstance(key, str) or not key or "=" in key or "\0" in key:
            raise ValidationError(f"invalid environment variable name {key!r}", code="INVALID_ENV")
        if not isinstance(value, str) or "\0" in value:
            raise ValidationError(
                f"environment variable {key} must have a str value without NUL characters",
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


def redacted_env(overrides: Mapping[str, str] | None) -> dict[str, str] | None:
    """The overrides with every value hidden, for logs and reprs."""
    return None if overrides is None else dict.fromkeys(overrides, "***")


def build_request(
    argv: list[str],
    *,
    cwd: str | None,
    overrides: dict[str, str] | None,
    stdin: Stdio,
    capture_output: bool,
    stderr: Stdio | None = None,
    options: RunOptions,
    kill_on_parent_death: bool,
    default_contain: str = "group",
) -> SpawnRequest:
    """The engine request for a validated call (``default_contain``: the call's own default)."""
    piped_or_inherited = Stdio.PIPE if capture_output else Stdio.INHERIT
    if options.foreground and stdin is Stdio.DEVNULL:
        stdin = Stdio.INHERIT
    return SpawnRequest(
        argv=argv,
        cwd=cwd,
        env=None if overrides is None else {**os.environ, **overrides},
        stdin=stdin,
        stdout=piped_or_inherited,
        stderr=stderr or piped_or_inherited,
        new_group=not options.foreground,
        kill_on_parent_death=bool(kill_on_parent_death),
        contain=resolve_contain(options, default_contain),
        stop_signal=options.stop_signal,
        kill_grace=options.kill_grace,
    )
