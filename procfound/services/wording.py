"""The errors of a ManagedProcess's owner, in procfound's words, and the handshake's argument
check.

The engine's owner (:mod:`procfound.engine.owner`) words no error a user sees: it asks the
:class:`OwnerWording` its ManagedProcess gave it, which builds them from
:mod:`procfound.errors`, as every other call does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from procfound.call.failures import ASYNC_RUN
from procfound.call.options import RunOptions
from procfound.errors import (
    DECODE_HINT_TEXT,
    ProcessError,
    ProcessTimeoutError,
    ValidationError,
    decode_error,
)
from procfound.result import CompletedProcess

__all__ = ["OwnerWording", "expected_parts"]


class OwnerWording:
    """The :class:`~procfound.engine.owner.OwnerErrors` of one ManagedProcess.

    ``shown`` names the command in decode and idle errors (as ``run`` does), ``command`` in the
    handshake's (as the seed's ``wait_for_process_output`` did).
    """

    __slots__ = ("command", "options", "shown")

    def __init__(self, options: RunOptions, shown: str, command: str) -> None:
        self.options = options
        self.shown = shown
        self.command = command

    def undecodable(
        self, error: UnicodeError, data: bytes, position: int | None, returncode: int | None
    ) -> Exception:
        failure = decode_error(
            error,
            stream="stdout",
            encoding=self.options.encoding,
            errors=self.options.errors,
            command=self.shown,
            position=position,
            hint=DECODE_HINT_TEXT,
            stdout=data,
        )
        failure.result = CompletedProcess(
            args=[self.shown], returncode=cast(int, returncode), stdout=data, stderr=b""
        )
        return failure

    def idle(self, seconds: float, stdout: str, stderr: str, returncode: int | None) -> Exception:
        error = ASYNC_RUN.sync_names().idle_timed_out(self.shown, seconds, stdout, stderr)
        error.return_code = returncode
        error.context["process.return_code"] = returncode
        return error

    def not_matched(self, parts: list[str], seconds: float | None, text: str) -> Exception:
        return ProcessTimeoutError(
            f"Expected pattern {parts} not found within {seconds}s timeout",
            command=self.command,
            timeout_seconds=seconds,
            stdout=text,
            code="PROCESS_WAIT_TIMEOUT",
        )

    def ended_early(
        self, returncode: int | None, missing: list[str], text: str, stderr: str
    ) -> Exception:
        return ProcessError(
            f"Process exited with code {returncode} before the expected output appeared "
            f"(missing: {missing})",
            command=self.command,
            return_code=returncode,
            stdout=text,
            stderr=stderr or None,
            code="PROCESS_EXITED_EARLY",
        )


def expected_parts(parts: object) -> list[str]:
    """A handshake's parts, checked: a list (not a bare string) of strings."""
    if isinstance(parts, str | bytes) or not isinstance(parts, Sequence):
        raise ValidationError(
            "expected_parts must be a list of strings (a bare string would match each of its "
            f"characters); got {type(parts).__name__}",
            code="INVALID_ARGUMENT",
        )
    checked = list(parts)
    for part in checked:
        if not isinstance(part, str):
            raise ValidationError(
                f"every expected part must be a str, got {type(part).__name__}",
                code="INVALID_ARGUMENT",
            )
    return checked
