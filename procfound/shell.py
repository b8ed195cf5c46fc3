"""The shell metacharacter guard and ``async_shell`` (``shell`` is its generated sync twin)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from procfound.bridge.sync import make_sync
from procfound.call.invocation import CALLED_AS
from procfound.errors import ShellFeatureError, ValidationError
from procfound.result import CompletedProcess
from procfound.run import async_run

__all__ = [
    "DANGEROUS_SHELL_PATTERNS",
    "DEFAULT_SHELL_ALLOW_FEATURES",
    "async_shell",
    "shell",
    "validate_shell_safety",
]

DEFAULT_SHELL_ALLOW_FEATURES: Final = False

# The seed's denylist, in the seed's order: the first pattern found is the one reported, so
# "a && b" reports "&&" (checked before "&"), while any command with ";" reports ";".
DANGEROUS_SHELL_PATTERNS: Final = (
    ";",
    "&&",
    "||",
    "|",
    ">",
    "<",
    "&",
    "$",
    "`",
    "(",
    ")",
    "{",
    "}",
    "*",
    "?",
    "~",
    "\n",
    "\r",
)


def validate_shell_safety(cmd: str, allow_shell_features: bool = False) -> None:
    """Refuse a shell command that uses shell features, unless they are allowed.

    Args:
        cmd: The shell command.
        allow_shell_features: Skip the check (only for commands you fully trust).

    Raises:
        ShellFeatureError: If ``cmd`` contains one of :data:`DANGEROUS_SHELL_PATTERNS`.

    Example:
        >>> validate_shell_safety("ls -la")
        >>> validate_shell_safety("ls | wc")
        Traceback (most recent call last):
        ...
        procfound.errors.ShellFeatureError: Shell feature '|' detected in command...
    """
    if allow_shell_features:
        return
    for pattern in DANGEROUS_SHELL_PATTERNS:
        if pattern in cmd:
            raise ShellFeatureError(
                f"Shell feature {pattern!r} detected in command. Pass allow_shell_features=True "
                "if the command is trusted, or use run() with a list of arguments.",
                pattern=pattern,
                command=cmd,
            )


async def async_shell(
    cmd: str,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    capture_output: bool = True,
    check: bool = True,
    timeout: float | None = None,
    allow_shell_features: bool = DEFAULT_SHELL_ALLOW_FEATURES,
    **kwargs: Any,
) -> CompletedProcess[Any]:
    """Run a shell command through ``/bin/sh -c``, refusing shell features unless allowed.

    WARNING: this runs a shell. By default any shell metacharacter (``;`` ``&&`` ``||`` ``|``
    ``>`` ``<`` ``&`` ``$`` backquote ``(`` ``)`` ``{`` ``}`` ``*`` ``?`` ``~``, newline, carriage
    return) is refused with :class:`ShellFeatureError` before anything runs, which blocks command
    injection through those characters. For untrusted input, prefer :func:`async_run` with a
    list of arguments; set ``allow_shell_features=True`` only for commands you fully trust.

    Everything else (timeouts, cancellation, output, the process group) is as in
    :func:`async_run`.

    Args:
        cmd: The shell command, as one string.
        cwd: Working directory.
        env: Environment variables to set on top of the current environment.
        capture_output: Capture stdout and stderr.
        check: Raise :class:`ProcessError` on a non-zero exit.
        timeout: Seconds the whole call may take.
        allow_shell_features: Allow shell metacharacters (default: False).
        **kwargs: Any other argument of :func:`async_run` (``text``, ``input``...).

    Returns:
        CompletedProcess with the results; ``args`` is ``[cmd]``.

    Raises:
        ValidationError: If ``cmd`` is not a string.
        ShellFeatureError: If shell features are used without permission.
        ProcessError: If the command fails and ``check`` is True.
        ProcessTimeoutError: If ``timeout`` passes.

    Example:
        >>> import anyio
        >>> anyio.run(async_shell, "echo 'hi there'").stdout
        'hi there\\n'
    """
    if not isinstance(cmd, str):
        raise ValidationError("shell commands must be strings", code="INVALID_SHELL_COMMAND")
    validate_shell_safety(cmd, allow_shell_features)
    token = CALLED_AS.set("shell()")  # an ignored keyword is reported as shell()'s
    try:
        return await async_run(
            cmd,
            cwd=cwd,
            env=env,
            capture_output=capture_output,
            check=check,
            timeout=timeout,
            shell=True,
            **kwargs,
        )
    finally:
        CALLED_AS.reset(token)


shell = make_sync(async_shell, "shell")
