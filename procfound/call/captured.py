"""A captured stream as a result holds it, and the error when it does not decode.

Shared by ``run`` (one command) and pipelines (``pipes.py``): bytes, or text decoded once with
universal newlines; a codec that refuses the output (``errors="strict"``) becomes a
:class:`~procfound.errors.DecodeError` whose ``.result`` keeps the output as bytes.
"""

from __future__ import annotations

from typing import Any

from procfound.call.invocation import Invocation
from procfound.engine.buffers import OutputBuffer
from procfound.engine.lines import universal_newlines
from procfound.errors import DecodeError, decode_error
from procfound.result import CompletedProcess

__all__ = ["Undecodable", "captured_output", "decode_failure"]


def decode_failure(
    failed: Undecodable, call: Invocation, result: CompletedProcess[Any], timed_out: bool
) -> DecodeError:
    """The :class:`DecodeError` for ``failed``, carrying ``result`` (its output as bytes)."""
    options = call.options
    error = failed.error
    failure = decode_error(
        error,
        stream=failed.stream,
        encoding=options.encoding,
        errors=options.errors,
        command=call.shown,
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
