"""Exit helpers: leave the program with a conventional exit code after logging why.

Each helper logs on the ``procfound`` logger, then raises :class:`SystemExit` through
:func:`sys.exit`, so ``finally`` blocks and context managers still run on the way out.
"""

from __future__ import annotations

import logging
import sys
from typing import Final, NoReturn

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
        SystemExit: Always, with ``code``.

    Example:
        >>> from procfound.exit import exit_error
        >>> exit_error("config file not found", code=2)
        Traceback (most recent call last):
        SystemExit: 2
    """
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
