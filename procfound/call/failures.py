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
from functools import partialmethod
from typing import Any, Final

from procfound.engine.session import UnkillableChildError
from procfound.engine.spawn import SpawnError
from procfound.engine.watch import Ending
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
        stage: tuple[int, str] | None = None,
    ) -> ProcessError:
        """The command ended with a code it does not accept (``check=True``).

        For a pipeline, ``stage`` is the failing stage's index and command: ``stderr`` is that
        stage's, ``stdout`` the pipeline's (its last stage's).
        """
        shown = command_display(command)
        context: dict[str, Any] = {}
        if stage is not None:
            shown = f"stages[{stage[0]}] ({command_display(stage[1])}) of the pipeline {shown}"
            context["stage"] = stage[0]
        details = _details(command, self._names().failed_code, stdout, stderr, dropped)
        return ProcessError(
            f"Command failed with exit code {returncode}: {shown}",
            return_code=returncode,
            **details,
            **context,
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
        """A pipeline's stage ``index`` (``stage``: its command) ended with a code it does not
        accept: :meth:`exit_failed` naming that stage."""
        return self.exit_failed(command, returncode, stdout, stderr, dropped, (index, stage))

    def ran_out(
        self,
        ending: Ending,
        command: str,
        seconds: float,
        stdout: str | bytes | None,
        stderr: str | bytes | None,
        returncode: int | None = None,
        dropped: tuple[int, int] = (0, 0),
    ) -> ProcessTimeoutError:
        """A clock ran out and the tree was stopped: ``"timeout"``, the deadline of ``seconds``
        passed; ``"idle"``, neither stdout nor stderr produced a byte for ``seconds``."""
        context: dict[str, Any] = {}
        if ending == "idle":
            message = f"Command timed out: no output for {seconds:g} s"
            context["process.idle_timeout"] = seconds
        else:
            message = f"Command timed out after {seconds:g}s"
        context.update(_details(command, self._names().timeout_code, stdout, stderr, dropped))
        return ProcessTimeoutError(
            f"{message}: {command_display(command)}",
            timeout_seconds=seconds,
            return_code=returncode,
            **context,
        )

    # The two clocks by name: ran_out with its ending given.
    timed_out = partialmethod(ran_out, "timeout")
    idle_timed_out = partialmethod(ran_out, "idle")

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


def _details(
    command: str,
    code: str,
    stdout: str | bytes | None,
    stderr: str | bytes | None,
    dropped: tuple[int, int],
) -> dict[str, Any]:
    """The keywords every error of a command that ran takes: what it was and what it wrote."""
    return {
        "command": command,
        "code": code,
        "stdout": stdout,
        "stderr": stderr,
        "stdout_dropped": dropped[0],
        "stderr_dropped": dropped[1],
    }


# Positional: the codes of a refused exit code, of a timeout and of a failure to start or stop,
# then the first words of that failure's message. The sync forms' names first.
_RUN: Final = ("PROCESS_COMMAND_FAILED", "PROCESS_TIMEOUT", "PROCESS_EXECUTION_FAILED")
_STREAM: Final = ("PROCESS_STREAM_FAILED", "PROCESS_STREAM_TIMEOUT", "PROCESS_STREAM_ERROR")
ASYNC_RUN: Final = Operation(
    *("PROCESS_ASYNC_FAILED", "PROCESS_ASYNC_TIMEOUT", "PROCESS_ASYNC_EXECUTION_FAILED"),
    "Failed to execute async command",
    sync=Operation(*_RUN, "Failed to execute command"),
)
ASYNC_STREAM: Final = Operation(
    *("PROCESS_ASYNC_STREAM_FAILED", "PROCESS_ASYNC_STREAM_TIMEOUT", "PROCESS_ASYNC_STREAM_ERROR"),
    "Failed to stream async command",
    sync=Operation(*_STREAM, "Failed to stream command"),
)
