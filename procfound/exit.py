"""Exit helpers: leave the program with a conventional exit code after logging why.

Each helper logs on the ``procfound`` logger, then raises :class:`SystemExit` through
:func:`sys.exit`, so ``finally`` blocks and context managers still run on the way out.
"""

from __future__ import annotations

import logging
import sys
from typing import Final, NoReturn

from procfound.errors import ValidationError, shorten

__all__ = [
    "EXIT_ERROR",
    "EXIT_SIGINT",
    "EXIT_SUCCESS",
    "exit_error",
    "exit_interrupted",
    "exit_success",
]

logger = logging.getLogger("procfound")

EXIT_SUCCESS: Final = 0
EXIT_ERROR: Final = 1
# 128 + SIGINT (2): what a shell reports for a program stopped by Ctrl-C.
EXIT_SIGINT: Final = 130


def exit_success(message: str | None = None) -> NoReturn:
    """Exit with status 0, logging ``message`` first if one is given.

    Args:
        message: Logged at INFO level as ``Exiting successfully: {message}``; nothing is
            logged when it is None or empty.

    Raises:
        SystemExit: Always, with code ``EXIT_SUCCESS`` (0).

    Example:
        >>> from procfound.exit import exit_success
        >>> exit_success("all files converted")
        Traceback (most recent call last):
        SystemExit: 0
    """
    if message:
        logger.info("Exiting successfully: %s", message)
    sys.exit(EXIT_SUCCESS)


def exit_error(message: str | None = None, code: int = EXIT_ERROR) -> NoReturn:
    """Exit with an error status, logging ``message`` first if one is given.

    Args:
        message: Logged at ERROR level as ``Exiting with error: {message}``; nothing is
            logged when it is None or empty.
        code: The exit status; ``EXIT_ERROR`` (1) by default.

    Raises:
        SystemExit: With ``code``.
        ValidationError: If ``code`` is not an int from 0 to 255 (what an exit status can
            carry); nothing is logged and the program does not exit.

    Example:
        >>> from procfound.exit import exit_error
        >>> exit_error("config file not found", code=2)
        Traceback (most recent call last):
        SystemExit: 2
    """
    if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= 255:
        # sys.exit() would take it, and the shell would see something else (256 is 0).
        raise ValidationError(
            f"code must be an int from 0 to 255, not {shorten(repr(code))}",
            code="INVALID_ARGUMENT",
        )
    if message:
        logger.error("Exiting with error: %s", message, extra={"exit_code": code})
    sys.exit(code)


def exit_interrupted(message: str = "Process interrupted") -> NoReturn:
    """Exit with status 130, the code a shell reports for a program stopped by SIGINT.

    Args:
        message: Always logged at WARNING level as ``Exiting due to interrupt: {message}``.

    Raises:
        SystemExit: Always, with code ``EXIT_SIGINT`` (130).

    Example:
        >>> from procfound.exit import exit_interrupted
        >>> exit_interrupted()  # typically in an ``except KeyboardInterrupt:`` block
        Traceback (most recent call last):
        SystemExit: 130
    """
    logger.warning("Exiting due to interrupt: %s", message)
    sys.exit(EXIT_SIGINT)
