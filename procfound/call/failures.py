"""Turning engine outcomes (spawn failures, exit codes, timeouts) into procfound errors.

Codes and the first words of each message follow the seed library (``research/seed-behaviour.md``
§2), so code that matches on them keeps working. The seed names a failure differently when the
sync form raised it (``PROCESS_COMMAND_FAILED`` vs ``PROCESS_ASYNC_FAILED``): the sync shim marks
its call with :data:`SYNC_CALL`, and each error is built with the right names from the start,
never renamed after it was raised.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any, Final

from procfound.engine.session import UnkillableChildError
from procfound.engine.spawn import SpawnError
from procfound.errors import ProcessError, ProcessTimeoutError, command_display

__all__ = ["ASYNC_RUN", "ASYNC_STREAM", "SYNC_CALL", "Operation"]

# True while a coroutine runs on behalf of a sync twin (set by procfound.bridge.sync for that
# call only).
SYNC_CALL: Final[contextvars.ContextVar[bool]] = contextvars.ContextVar(
    "procfound_sync_call", default=False
)


@dataclass(frozen=True, slots=True)
class Operation:
    """The error codes and wording of one public operation."""

    failed_code: str
    timeout_code: str
    error_code: str
    error_words: str
    sync: Operation | None = None  # the names the sync form uses, where they differ

    def _names(self) -> Operation:
        return self.sync if self.sync is not None and SYNC_CALL.get() else self

    def sync_names(self) -> Operation:
        """The names the sync form uses (``CompletedProcess.check_returncode`` is sync)."""
        return self.sync or self

    def spawn_failed(self, command: str, error: SpawnError) -> ProcessError:
        """The child could not start: a missing executable or cwd, no fds left...

        The cause comes first; the command follows on the ``Command:`` line, cut to a readable
        length (``.command`` keeps it whole).
        """
        names = self._names()
        return ProcessError(
            f"{names.error_words}: {error.reason}",
            command=command,
            code=names.error_code,
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
        names = self._names()
        return ProcessError(
            f"Command failed with exit code {returncode}: {command_display(command)}",
            command=command,
            return_code=returncode,
            stdout=stdout,
            stderr=stderr,
            code=names.failed_code,
            stdout_dropped=dropped[0],
            stderr_dropped=dropped[1],
        )

    def stage_failed(
        self,
        command: str,
        index: int,
        stage: str,
        returncode: int,
        stdout: str | bytes | None,
        stderr: str | bytes | None,
        dropped: tuple[int, int] = (0, 0),
    ) -> ProcessError:
        """A pipeline's stage ``index`` ended with a code it does not accept (``check=True``).

        ``stderr`` is that stage's; ``stdout`` the pipeline's (its last stage's).
        """
        names = self._names()
        return ProcessError(
            f"Command failed with exit code {returncode}: stages[{index}] "
            f"({command_display(stage)}) of the pipeline {command_display(command)}",
            command=command,
            return_code=returncode,
            stdout=stdout,
            stderr=stderr,
            code=names.failed_code,
            stdout_dropped=dropped[0],
            stderr_dropped=dropped[1],
            stage=index,
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
        return self._timeout(
            f"Command timed out after {timeout:g}s: {command_display(command)}",
            command,
            timeout,
            (stdout, stderr),
            returncode,
            dropped,
        )

    def idle_timed_out(
        self,
        command: str,
        idle: float,
        stdout: str | bytes | None,
        stderr: str | bytes | None,
        returncode: int | None = None,
        dropped: tuple[int, int] = (0, 0),
    ) -> ProcessTimeoutError:
        """Neither stdout nor stderr produced a byte for ``idle`` seconds; the tree was stopped."""
        return self._timeout(
            f"Command timed out: no output for {idle:g} s: {command_display(command)}",
            command,
            idle,
            (stdout, stderr),
            returncode,
            dropped,
            **{"process.idle_timeout": idle},
        )

    def _timeout(
        self,
        message: str,
        command: str,
        seconds: float,
        output: tuple[str | bytes | None, str | bytes | None],
        returncode: int | None,
        dropped: tuple[int, int],
        **context: Any,
    ) -> ProcessTimeoutError:
        return ProcessTimeoutError(
            message,
            command=command,
            timeout_seconds=seconds,
            stdout=output[0],
            stderr=output[1],
            return_code=returncode,
            code=self._names().timeout_code,
            stdout_dropped=dropped[0],
            stderr_dropped=dropped[1],
            **context,
        )

    def unkillable(self, command: str, error: UnkillableChildError) -> ProcessError:
        """The child survived SIGKILL for the whole bound (uninterruptible sleep)."""
        names = self._names()
        return ProcessError(
            f"{names.error_words}: {command_display(command)}: {error} "
            "(uninterruptible sleep?); "
            "it will be reaped when it finally exits",
            command=command,
            code=names.error_code,
            pid=error.pid,
        )


ASYNC_RUN: Final = Operation(
    failed_code="PROCESS_ASYNC_FAILED",
    timeout_code="PROCESS_ASYNC_TIMEOUT",
    error_code="PROCESS_ASYNC_EXECUTION_FAILED",
    error_words="Failed to execute async command",
    sync=Operation(
        failed_code="PROCESS_COMMAND_FAILED",
        timeout_code="PROCESS_TIMEOUT",
        error_code="PROCESS_EXECUTION_FAILED",
        error_words="Failed to execute command",
    ),
)
ASYNC_STREAM: Final = Operation(
    failed_code="PROCESS_ASYNC_STREAM_FAILED",
    timeout_code="PROCESS_ASYNC_STREAM_TIMEOUT",
    error_code="PROCESS_ASYNC_STREAM_ERROR",
    error_words="Failed to stream async command",
    sync=Operation(
        failed_code="PROCESS_STREAM_FAILED",
        timeout_code="PROCESS_STREAM_TIMEOUT",
        error_code="PROCESS_STREAM_ERROR",
        error_words="Failed to stream command",
    ),
)
