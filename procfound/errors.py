"""The exceptions procfound raises, and how they render themselves.

Every error carries ``.message``, ``.code`` and ``.context`` like the seed library's
``FoundationError``, so code written against ``provide.foundation.process`` keeps working.
"""

from __future__ import annotations

import signal
from typing import Any, Final

__all__ = [
    "MESSAGE_COMMAND_LIMIT",
    "DecodeError",
    "PlatformError",
    "ProcessError",
    "ProcessTimeoutError",
    "ProcfoundError",
    "ShellFeatureError",
    "StateError",
    "ValidationError",
    "command_display",
    "decode_error",
    "describe_returncode",
    "shorten",
]

# Output beyond this many characters is cut from the *message* (the attributes keep it whole):
# a 200 MB stderr pasted into a log line helps nobody.
MESSAGE_OUTPUT_LIMIT: Final = 4000
# A command or path longer than this is cut in messages (the attributes keep it whole): an argv
# of megabytes (the E2BIG case) must not become megabytes of error message.
MESSAGE_COMMAND_LIMIT: Final = 200


def signal_name(sig: int) -> str:
    """The name of a signal number as people write it: ``SIGTERM``, ``SIGRTMIN+6``, ``signal 99``.

    Example:
        >>> signal_name(15), signal_name(signal.SIGRTMIN + 6)
        ('SIGTERM', 'SIGRTMIN+6')
    """
    try:
        return signal.Signals(sig).name
    except ValueError:
        pass
    low, high = getattr(signal, "SIGRTMIN", None), getattr(signal, "SIGRTMAX", None)
    if low is not None and high is not None and low <= sig <= high:
        return f"SIGRTMIN+{sig - low}" if sig - low <= high - sig else f"SIGRTMAX-{high - sig}"
    return f"signal {sig}"


def describe_returncode(returncode: int) -> str:
    """Render a return code, naming the signal for a child killed by one (``-9 (SIGKILL)``)."""
    if returncode < 0:
        return f"{returncode} (killed by {signal_name(-returncode)})"
    return str(returncode)


def _decode(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)  # a CompletedProcess built by hand may hold anything


def _tail(text: str) -> str:
    if len(text) <= MESSAGE_OUTPUT_LIMIT:
        return text
    cut = len(text) - MESSAGE_OUTPUT_LIMIT
    return f"[... {cut} earlier characters cut; the attribute holds all of it ...]\n" + text[cut:]


def command_text(command: str | list[str] | None) -> str:
    """Join a command for display the way the seed does (a list joined by spaces)."""
    if command is None:
        return ""
    return command if isinstance(command, str) else " ".join(map(str, command))


def shorten(text: str, limit: int = MESSAGE_COMMAND_LIMIT) -> str:
    """``text`` as it may appear in a message: cut to ``limit`` characters, printable.

    A longer text keeps its first ``limit`` characters and says how many more there were. Lone
    surrogates (undecodable bytes of a file name, ``"\\udc80"``) become backslash escapes, so
    printing or logging the message can never raise ``UnicodeEncodeError``.

    Example:
        >>> shorten("x" * 250, 10)
        'xxxxxxxxxx... (240 more characters)'
        >>> shorten("/tmp/\\udc80")
        '/tmp/\\\\x80'
    """
    if len(text) > limit:
        text = f"{text[:limit]}... ({len(text) - limit} more characters)"
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:  # a surrogate-escaped byte shows as the byte it stands for
            text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:
            text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def command_display(command: str | list[str] | None) -> str:
    """:func:`command_text` shortened for a message (see :func:`shorten`)."""
    return shorten(command_text(command))


class ProcfoundError(Exception):
    """Root of every procfound error: a message, a stable ``code`` and a ``context`` dict."""

    default_code: str = "PROCFOUND_ERROR"

    def __init__(self, message: str, *, code: str | None = None, **context: Any) -> None:
        self.message = message
        self.code = code or self.default_code
        self.context: dict[str, Any] = dict(context)
        super().__init__(message)

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        """Return the error as a flat dict suitable for structured logging."""
        data: dict[str, Any] = {
            "error.type": type(self).__name__,
            "error.message": self.message,
            "error.code": self.code,
        }
        data.update({f"error.{key}": value for key, value in self.context.items()})
        return data


class ValidationError(ProcfoundError, ValueError):
    """An argument is not acceptable (wrong type, bad combination); nothing was started.

    Example:
        >>> from procfound import run
        >>> try:
        ...     run("ls -la")  # a string command needs shell=True
        ... except ValidationError as e:
        ...     print(e.code)
        INVALID_COMMAND_TYPE
    """

    default_code = "VALIDATION_ERROR"


class StateError(ProcfoundError, RuntimeError):
    """An operation does not fit the object's state (for example, launching twice).

    Example:
        >>> from procfound import ManagedProcess
        >>> with ManagedProcess(["sleep", "30"]) as proc:
        ...     try:
        ...         proc.launch()
        ...     except StateError as e:
        ...         print(e.code)
        PROCESS_ALREADY_STARTED
    """

    default_code = "STATE_ERROR"


class PlatformError(ProcfoundError, RuntimeError):
    """A feature is not available here: another OS, or an optional package is missing.

    Example:
        >>> e = PlatformError("python-prctl is not installed", code="DEPENDENCY_MISSING")
        >>> isinstance(e, RuntimeError), e.code
        (True, 'DEPENDENCY_MISSING')
    """

    default_code = "PLATFORM_ERROR"


class ProcessError(ProcfoundError):
    """A command could not be started, failed, or was stopped.

    Args:
        message: What went wrong, in a sentence.
        command: The command that ran (a list is shown joined by spaces).
        return_code: The child's return code; negative when a signal ended it.
        stdout: Output captured before the error (bytes are decoded as UTF-8, replacing errors).
            Kept stripped in ``.stdout``: None when empty, ``""`` when only whitespace.
        stderr: Error output captured before the error, kept like ``stdout``.
        timeout: Whether the command was stopped by a timeout.
        code: A stable machine-readable error code.
        stdout_dropped: Bytes of stdout let go past ``max_output`` (said in the message).
        stderr_dropped: Bytes of stderr let go past ``max_output``.
        **extra_context: More context, kept in ``.context``.

    ``duration`` and ``rusage`` are set (else None) when the child ran and was reaped.
    ``result`` is the whole :class:`~procfound.CompletedProcess` of a ``run``/``shell`` that
    failed or timed out: all of the output, unstripped, bytes with ``text=False`` (on a timeout,
    what was read before the kill); None for the other operations.

    ``str(error)`` is the message, then ``Command:``, ``Return code:``, ``Process timed out``,
    and the stdout and stderr sections, each only when present. Output in the message is cut to
    its last few thousand characters; ``.stdout`` and ``.stderr`` keep all of it.

    Example:
        >>> str(ProcessError("Command failed", command=["ls", "-la"], return_code=1))
        'Command failed\\nCommand: ls -la\\nReturn code: 1'
    """

    default_code = "PROCESS_ERROR"

    def __init__(
        self,
        message: str,
        *,
        command: str | list[str] | None = None,
        return_code: int | None = None,
        stdout: str | bytes | None = None,
        stderr: str | bytes | None = None,
        timeout: bool = False,
        code: str | None = None,
        stdout_dropped: int = 0,
        stderr_dropped: int = 0,
        **extra_context: Any,
    ) -> None:
        out = _decode(stdout)
        err = _decode(stderr)
        self.command = command
        self.return_code = return_code
        # As the seed: stripped; None when absent or empty, "" when only whitespace.
        self.stdout = out.strip() if out else None
        self.stderr = err.strip() if err else None
        self.timeout = timeout
        self.stdout_dropped = stdout_dropped
        self.stderr_dropped = stderr_dropped
        self.duration: float | None = None
        self.rusage: Any = None
        # The whole result, as run(..., check=False) would have returned it (set by run).
        self.result: Any = None
        parts = [message]
        if command:
            parts.append(f"Command: {command_display(command)}")
        if return_code is not None:
            parts.append(f"Return code: {describe_returncode(return_code)}")
        if timeout:
            parts.append("Process timed out")
        for name, dropped in (("stdout", stdout_dropped), ("stderr", stderr_dropped)):
            if dropped:
                parts.append(f"{name}: the first {dropped} bytes were dropped (max_output)")
        if self.stdout:
            parts.append(f"--- STDOUT ---\n{_tail(self.stdout)}")
        if self.stderr:
            parts.append(f"--- STDERR ---\n{_tail(self.stderr)}")
        super().__init__("\n".join(parts), code=code, **extra_context)
        self.context["process.command"] = command
        self.context["process.return_code"] = return_code
        self.context["process.timeout"] = timeout

    def __reduce__(self) -> Any:
        # Exceptions with keyword-only arguments do not pickle by default; errors cross process
        # boundaries in pytest-xdist and multiprocessing, so rebuild from the rendered state.
        return (_rebuild, (type(self), self.__dict__, self.args))


def _rebuild(cls: type[ProcessError], state: dict[str, Any], args: tuple[Any, ...]) -> Any:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class ProcessTimeoutError(ProcessError, TimeoutError):
    """A command ran past its deadline; the whole process tree was killed.

    ``timeout`` is True, ``timeout_seconds`` is the deadline that passed, and ``stdout`` /
    ``stderr`` hold the output read before it. ``except TimeoutError`` catches it too.

    Example:
        >>> e = ProcessTimeoutError("Command timed out after 1.0s: sleep 9", timeout_seconds=1.0)
        >>> isinstance(e, TimeoutError), e.timeout, e.timeout_seconds
        (True, True, 1.0)
    """

    default_code = "PROCESS_TIMEOUT"

    def __init__(
        self,
        message: str,
        *,
        command: str | list[str] | None = None,
        timeout_seconds: float | None = None,
        stdout: str | bytes | None = None,
        stderr: str | bytes | None = None,
        code: str | None = None,
        return_code: int | None = None,
        stdout_dropped: int = 0,
        stderr_dropped: int = 0,
        **extra_context: Any,
    ) -> None:
        self.timeout_seconds = timeout_seconds
        super().__init__(
            message,
            command=command,
            return_code=return_code,
            stdout=stdout,
            stderr=stderr,
            timeout=True,
            code=code,
            stdout_dropped=stdout_dropped,
            stderr_dropped=stderr_dropped,
            **extra_context,
        )
        self.context["process.timeout_seconds"] = timeout_seconds


class ShellFeatureError(ProcessError):
    """A shell command used a metacharacter without ``allow_shell_features=True``.

    ``pattern`` is the metacharacter found; ``command`` is the first 100 characters of the command.

    Example:
        >>> from procfound import shell
        >>> try:
        ...     shell("ls | wc -l")
        ... except ShellFeatureError as e:
        ...     print(e.pattern, e.code)
        | SHELL_FEATURE_NOT_ALLOWED
    """

    default_code = "SHELL_FEATURE_NOT_ALLOWED"

    def __init__(self, message: str, *, pattern: str, command: str) -> None:
        self.pattern = pattern
        super().__init__(message, command=command[:100], pattern=pattern)


class DecodeError(ProcessError):
    """A command's output could not be decoded with the call's ``encoding`` and ``errors``.

    Raised instead of a bare ``UnicodeDecodeError`` (with ``errors="strict"``, or a handler of
    your own that refuses a byte), once the command has ended or been stopped. Nothing is lost:
    ``.result`` is a :class:`~procfound.CompletedProcess` whose ``stdout`` and ``stderr`` are the
    bytes (for a stream, the bytes from the line that failed on, after every line before it was
    yielded; for a ManagedProcess read, the bytes that read consumed). ``.stdout`` and
    ``.stderr`` hold them decoded as UTF-8 with replacement, as for every ProcessError.

    Attributes:
        encoding: The encoding that failed.
        errors: The error handler that refused.
        stream: ``"stdout"`` or ``"stderr"``.
        position: The offset of the first undecodable byte in that output (None if unknown).
        reason: The codec's reason (``"invalid start byte"``).

    Example:
        >>> from procfound import run
        >>> try:
        ...     run(["printf", "ok\\\\377"], errors="strict")
        ... except DecodeError as e:
        ...     print(e.code, e.position, e.result.stdout)
        DECODE_ERROR 2 b'ok\\xff'
    """

    default_code = "DECODE_ERROR"

    def __init__(
        self,
        message: str,
        *,
        encoding: str,
        errors: str,
        stream: str = "stdout",
        position: int | None = None,
        reason: str = "",
        **kwargs: Any,
    ) -> None:
        self.encoding = encoding
        self.errors = errors
        self.stream = stream
        self.position = position
        self.reason = reason
        super().__init__(
            message,
            encoding=encoding,
            errors=errors,
            stream=stream,
            position=position,
            **kwargs,
        )


# What a DecodeError says to do; ManagedProcess reads and streams always decode (no text=False).
DECODE_HINT_RUN: Final = (
    "pass errors='replace' (or the right encoding=), or text=False to get bytes; "
    ".result holds the output as bytes"
)
DECODE_HINT_TEXT: Final = (
    "pass errors='replace' (or the right encoding=); .result holds the undecoded bytes"
)


def decode_error(
    error: UnicodeError,
    *,
    stream: str,
    encoding: str,
    errors: str,
    command: str | list[str] | None,
    position: int | None,
    hint: str = DECODE_HINT_RUN,
    **kwargs: Any,
) -> DecodeError:
    """The :class:`DecodeError` for ``error``, raised while decoding ``stream``.

    Args:
        error: What the codec raised.
        stream: ``"stdout"`` or ``"stderr"``.
        encoding: The call's encoding.
        errors: The call's error handler.
        command: The command, for the message.
        position: The offset of the first undecodable byte in that output (None: unknown).
        hint: What to do about it.
        **kwargs: More of :class:`ProcessError`'s arguments (``return_code``, ``stdout``...).
    """
    where = ""
    if isinstance(error, UnicodeDecodeError):
        bad = bytes(error.object[error.start : error.end])[:4]
        at = "" if position is None else f" at position {position}"
        where = f"byte{'s' if len(bad) > 1 else ''} 0x{bad.hex()}{at}: "
    reason = getattr(error, "reason", str(error))
    return DecodeError(
        f"Cannot decode {stream} as {encoding!r} (errors={errors!r}): {where}{reason}; {hint}",
        encoding=encoding,
        errors=errors,
        stream=stream,
        position=position,
        reason=reason,
        command=command,
        **kwargs,
    )
