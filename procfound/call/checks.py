"""The per-value checks behind every call's arguments: each takes what a caller passed and
returns it in the form the call layer keeps, or raises a
:class:`~procfound.errors.ValidationError` that names the argument and says what to pass.

:data:`CHECKS` maps each keyword control of :class:`~procfound.call.options.RunOptions` to its
check; the named parameters (``cwd``, ``env``, ``timeout``, ``input``...) have theirs here too.
"""

from __future__ import annotations

import codecs
import math
import numbers
import os
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO, Any, Final, TypeVar, cast

from procfound.call.stop import parse_contain, parse_grace, parse_signal
from procfound.engine.spawn import Stdio
from procfound.errors import ValidationError, shorten

__all__ = [
    "CHECKS",
    "MAX_BUFSIZE",
    "StdioTarget",
    "check_codec",
    "check_cwd",
    "check_env",
    "check_max_bytes",
    "check_no_nul",
    "check_stdio",
    "check_text",
    "check_timeout",
    "stdio_fd",
    "to_input_bytes",
]

T = TypeVar("T")

# ``bufsize`` is ManagedProcess's read size (each read allocates it up front); a pipe never
# holds more than a few MiB, so a larger read gains nothing and could not even be allocated.
MAX_BUFSIZE: Final = 16 * 1024 * 1024


# A standard-stream target: a subprocess constant turned into Stdio, our fd, or a file object
# whose fileno() is read only when the child is spawned (it may be a long time after the call).
StdioTarget = Stdio | int | IO[Any]


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
    encoding, info = _looked_up(value, name, codecs.lookup, name)
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
    errors, _ = _looked_up(value, name, codecs.lookup_error, f"{name} handler")
    return errors


def _looked_up(value: object, name: str, lookup: Callable[[str], T], what: str) -> tuple[str, T]:
    """``value`` as a name ``lookup`` knows (a codec, an error handler), and what it found."""
    text = _str(value, name)
    check_no_nul(text, name)  # the codecs lookups would raise ValueError/UnicodeEncodeError
    try:
        return text, lookup(text)
    except LookupError as exc:
        raise ValidationError(
            f"unknown {what} {shorten(repr(text))}: {shorten(str(exc), 100)}",
            code="INVALID_ARGUMENT",
        ) from None


def check_codec(encoding: str, errors: str) -> None:
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


def shown_value(value: object) -> str:
    """``repr(value)`` as a message may show it: shortened, and never an error itself (an int
    of more than 4300 digits has no ``repr``: ``ValueError``)."""
    try:
        return shorten(repr(value))
    except Exception:
        if isinstance(value, int):
            return f"an int of {value.bit_length()} bits"
        return f"a {type(value).__name__}"


def _int(value: object, name: str, minimum: int, maximum: int = 2**31 - 1) -> int:
    # The bound keeps a huge int from reaching C (pid_t, uid_t, mode_t) as an OverflowError.
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ValidationError(
            f"{name} must be an int from {minimum} to {maximum}, not {shown_value(value)}",
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
        check_no_nul(value, name)  # pwd and grp would raise ValueError/UnicodeEncodeError
        try:
            if kind == "user":
                import pwd

                return pwd.getpwnam(value).pw_uid
            import grp

            return grp.getgrnam(value).gr_gid
        except KeyError:
            raise ValidationError(
                f"{name}: no {kind} named {shown_value(value)}", code="INVALID_ARGUMENT"
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
    check_no_nul(path, name)
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


def _pty_size(value: object, name: str) -> tuple[int, int]:
    """``pty_size``: (rows, columns), each from 1 to 65535 (the kernel keeps them as shorts)."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) or len(value) != 2:
        raise ValidationError(
            f"{name} must be (rows, columns), such as (24, 80), not {shown_value(value)}",
            code="INVALID_ARGUMENT",
        )
    return _int(value[0], f"{name} rows", 1, 65535), _int(value[1], f"{name} columns", 1, 65535)


CHECKS: Final[dict[str, Callable[[Any, str], Any]]] = {
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
    "pty_size": lambda value, name: _pty_size(value, name),
}


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
    check_no_nul(value, name)
    return value


def check_no_nul(value: str, what: str) -> None:
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
    check_no_nul(path, "cwd")
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


def to_input_bytes(data: object, encoding: str, name: str = "input") -> bytes | None:
    """``input`` (or the argument ``name``) as bytes: str is encoded, bytes-like objects are
    taken as they are."""
    if data is None:
        return None
    if isinstance(data, str):
        try:
            return data.encode(encoding)
        except UnicodeEncodeError as exc:
            # The input is never echoed (it may be a secret); the character and place are.
            raise ValidationError(
                f"{name} cannot be encoded with {encoding!r}: character "
                f"{exc.object[exc.start : exc.start + 1]!r} at index {exc.start}: {exc.reason}; "
                "pass bytes, or another encoding= (it also decodes the output)",
                code="INVALID_ARGUMENT",
            ) from None
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    raise ValidationError(
        f"{name} must be bytes or str, not {type(data).__name__}", code="INVALID_ARGUMENT"
    )
