"""Turning engine outcomes (spawn failures, exit codes, timeouts) into procfound errors.

Codes and the first words of each message follow the seed library (``research/seed-behaviour.md``
§2), so code that matches on them keeps working; the async forms are built here and the sync
twins rename them in :mod:`procfound.sync`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from procfound.engine.session import UnkillableChildError
from procfound.engine.spawn import SpawnError
from procfound.errors import ProcessError, ProcessTimeoutError

__all__ = ["ASYNC_RUN", "ASYNC_STREAM", "SYNC_RENAMES", "Operation"]


@dataclass(frozen=True, slots=True)
class Operation:
    """The error codes and wording of one public operation."""

    failed_code: str
    timeout_code: str
    error_code: str
    error_words: str

    def spawn_failed(self, command: str, error: SpawnError) -> ProcessError:
        """The child could not start: a missing executable or cwd, no fds left..."""
        return ProcessError(
            f"{self.error_words}: {command}: {error.reason}",
            command=command,
            code=self.error_code,
            path=error.filename,
        )

    def exit_failed(
        self,
        command: str,
        returncode: int,
        stdout: str | bytes | None,
        stderr: str | bytes | None,
        dropped: tuple[int, int] = (0, 0),
    ) -> ProcessError:
        """The command ended with a non-zero code (``check=True``)."""
        return ProcessError(
            f"Command failed with exit code {returncode}: {command}",
            command=command,
            return_code=returncode,
            stdout=stdout,
            stderr=stderr,
            code=self.failed_code,
            stdout_dropped=dropped[0],
            stderr_dropped=dropped[1],
        )

    def timed_out(
        self,
        command: str,
        timeout: float,
        stdout: str | bytes | None,
        stderr: str | bytes | None,
        returncode: int | None = None,
        dropped: tuple[int, int] = (0, 0),
    ) -> ProcessTimeoutError:
        """The deadline passed; the tree was killed."""
        return ProcessTimeoutError(
            f"Command timed out after {timeout:g}s: {command}",
            command=command,
            timeout_seconds=timeout,
            stdout=stdout,
            stderr=stderr,
            return_code=returncode,
            code=self.timeout_code,
            stdout_dropped=dropped[0],
            stderr_dropped=dropped[1],
        )

    def unkillable(self, command: str, error: UnkillableChildError) -> ProcessError:
        """The child survived SIGKILL for the whole bound (uninterruptible sleep)."""
        return ProcessError(
            f"{self.error_words}: {command}: {error} (uninterruptible sleep?); "
            "it will be reaped when it finally exits",
            command=command,
            code=self.error_code,
            pid=error.pid,
        )


ASYNC_RUN: Final = Operation(
    failed_code="PROCESS_ASYNC_FAILED",
    timeout_code="PROCESS_ASYNC_TIMEOUT",
    error_code="PROCESS_ASYNC_EXECUTION_FAILED",
    error_words="Failed to execute async command",
)
ASYNC_STREAM: Final = Operation(
    failed_code="PROCESS_ASYNC_STREAM_FAILED",
    timeout_code="PROCESS_ASYNC_STREAM_TIMEOUT",
    error_code="PROCESS_ASYNC_STREAM_ERROR",
    error_words="Failed to stream async command",
)

# What a sync twin calls the same failure: (async code, sync code, async words, sync words).
SYNC_RENAMES: Final = {
    "PROCESS_ASYNC_FAILED": ("PROCESS_COMMAND_FAILED", None),
    "PROCESS_ASYNC_TIMEOUT": ("PROCESS_TIMEOUT", None),
    "PROCESS_ASYNC_EXECUTION_FAILED": (
        "PROCESS_EXECUTION_FAILED",
        ("Failed to execute async command", "Failed to execute command"),
    ),
    "PROCESS_ASYNC_STREAM_FAILED": ("PROCESS_STREAM_FAILED", None),
    "PROCESS_ASYNC_STREAM_TIMEOUT": ("PROCESS_STREAM_TIMEOUT", None),
    "PROCESS_ASYNC_STREAM_ERROR": (
        "PROCESS_STREAM_ERROR",
        ("Failed to stream async command", "Failed to stream command"),
    ),
}
