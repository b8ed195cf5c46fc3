"""A captured stream as a result holds it, the error when it does not decode, and the error a
finished call raises.

Shared by ``run`` (one command) and pipelines (``pipes.py``): bytes, or text decoded once with
universal newlines; a codec that refuses the output (``errors="strict"``) becomes a
:class:`~procfound.errors.DecodeError` whose ``.result`` keeps the output as bytes.
"""

from __future__ import annotations

from typing import Any

from procfound.call.failures import Operation
from procfound.call.invocation import Invocation
from procfound.engine.buffers import OutputBuffer
from procfound.engine.lines import universal_newlines
from procfound.engine.watch import Ending
from procfound.errors import DecodeError, ProcessError, decode_error
from procfound.result import CompletedProcess

__all__ = [
    "Undecodable",
    "captured_output",
    "decode_failure",
    "raise_failure",
    "undecodable_error",
]


def decode_failure(
    failed: Undecodable, call: Invocation, result: CompletedProcess[Any], timed_out: bool
) -> DecodeError:
    """The :class:`DecodeError` for ``failed``, carrying ``result`` (its output as bytes)."""
    error = failed.error
    failure = undecodable_error(
        call,
        error,
        failed.stream,
        # counted from the first byte written, also when max_output let the first ones go
        position=failed.buffer.dropped + error.start
        if isinstance(error, UnicodeDecodeError)
        else None,
        return_code=result.returncode,
        stdout=result.stdout,
        stderr=result.stderr,
        timeout=timed_out,
        stdout_dropped=result.stdout_dropped,
        stderr_dropped=result.stderr_dropped,
    )
    failure.duration, failure.rusage, failure.result = result.duration, result.rusage, result
    return failure


def undecodable_error(
    call: Invocation, error: UnicodeError, stream: str, **details: Any
) -> DecodeError:
    """The :class:`DecodeError` for ``stream`` of ``call``, which its codec refused
    (``details``: :func:`~procfound.errors.decode_error`'s other keywords)."""
    options = call.options
    return decode_error(
        error,
        stream=stream,
        encoding=options.encoding,
        errors=options.errors,
        command=call.shown,
        **details,
    )


def raise_failure(
    operation: Operation,
    call: Invocation,
    result: CompletedProcess[Any],
    ending: Ending,
    shown: str,
    refused: ProcessError | None,
) -> None:
    """Raise the error of a finished call, carrying ``result``: the clock that ran out, if one
    did, else ``refused`` (an exit code ``check`` refused), if given."""
    error = refused
    if ending != "exit":
        seconds = call.options.idle_timeout if ending == "idle" else call.timeout
        assert seconds is not None
        dropped = (result.stdout_dropped, result.stderr_dropped)
        error = operation.ran_out(
            ending, shown, seconds, result.stdout, result.stderr, result.returncode, dropped
        )
    if error is not None:
        error.duration, error.rusage, error.result = result.duration, result.rusage, result
        raise error


class Undecodable(Exception):
    """A captured stream did not decode: which one, and what the codec said."""

    def __init__(self, stream: str, buffer: OutputBuffer, error: UnicodeError) -> None:
        super().__init__(stream)
        self.stream, self.buffer, self.error = stream, buffer, error


def captured_output(buffer: OutputBuffer, call: Invocation, stream: str) -> str | bytes:
    """A captured stream as the result holds it: bytes, or text with universal newlines."""
    if not call.text:
        return buffer.getvalue()
    try:
        text = buffer.decode(call.options.encoding, call.options.errors)
    except UnicodeError as exc:
        raise Undecodable(stream, buffer, exc) from exc
    return universal_newlines(text)
