"""``async_stream``: a command's output line by line as it is written (``stream`` is its
generated sync twin, moving a batch of lines per portal call)."""

from __future__ import annotations

import itertools
import math
from collections.abc import AsyncGenerator, Generator, Iterator, Mapping
from pathlib import Path
from typing import Any, Final, cast

import anyio

from procfound.engine.buffers import OutputBuffer
from procfound.engine.lines import LineSplitter
from procfound.engine.session import ChildSession, UnkillableChildError
from procfound.engine.spawn import SpawnError, Stdio
from procfound.errors import ValidationError, command_text
from procfound.failures import ASYNC_STREAM
from procfound.request import (
    RunOptions,
    build_request,
    check_cwd,
    check_env,
    check_max_bytes,
    check_timeout,
    command_list,
    logger,
    redacted_env,
)
from procfound.sync import make_sync_iterator

__all__ = ["LineStream", "async_stream", "line_batches", "stream"]

# stderr is drained beside stdout so it can never fill its pipe and block the child; its tail is
# kept for the error raised on a non-zero exit.
STDERR_TAIL: Final = 64 * 1024


async def line_batches(
    cmd: list[str],
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    stream_stderr: bool = False,
    *,
    kill_on_parent_death: bool = False,
    max_line: int | None = None,
    **kwargs: Any,
) -> AsyncGenerator[list[str], None]:
    """The engine of :func:`async_stream`: each batch is every line one wake-up produced.

    No cancel scope or task group spans a ``yield``: the deadline is applied to each wait on
    its own, so the generator can be suspended in the consumer's code safely.
    """
    if isinstance(cast(object, cmd), str):
        raise ValidationError(
            "stream commands must be a list of arguments (a str would need a shell)",
            code="INVALID_COMMAND_TYPE",
        )
    argv = command_list(cmd, shell=False)
    options = RunOptions.from_kwargs(kwargs)
    seconds = check_timeout(timeout)
    workdir = check_cwd(cwd)
    overrides = check_env(env)
    request = build_request(
        argv,
        cwd=workdir,
        overrides=overrides,
        stdin=Stdio.DEVNULL,
        capture_output=True,
        stderr=Stdio.STDOUT if stream_stderr else Stdio.PIPE,
        options=options,
        kill_on_parent_death=kill_on_parent_death,
    )
    shown = command_text(argv)
    logger.debug("stream %s (cwd=%s, env=%s)", argv, workdir, redacted_env(overrides))
    lines = LineSplitter(options.encoding, options.errors, check_max_bytes(max_line, "max_line"))
    errors = OutputBuffer(limit=STDERR_TAIL)
    try:
        session = ChildSession(request, stdout=lines, stderr=errors)
    except SpawnError as exc:
        raise ASYNC_STREAM.spawn_failed(shown, exc) from exc.os_error
    deadline = math.inf if seconds is None else anyio.current_time() + seconds
    timed_out = False
    try:
        exited = False
        while not exited:
            with anyio.move_on_at(deadline) as scope:
                exited = await session.step()
            if scope.cancelled_caught:
                timed_out = True
                break
            if lines.ready:
                yield lines.take()
        if not timed_out:
            await session.drain()
    finally:
        try:
            await session.finish()
        except UnkillableChildError as exc:
            raise ASYNC_STREAM.unkillable(shown, exc) from exc
    # Lines read before the end (and, on a timeout, during the kill) are still delivered.
    if lines.ready:
        yield lines.take()
    tail = errors.decode(options.encoding, options.errors)
    if timed_out:
        assert seconds is not None
        raise ASYNC_STREAM.timed_out(shown, seconds, None, tail)
    assert session.returncode is not None
    if session.returncode != 0:
        raise ASYNC_STREAM.exit_failed(shown, session.returncode, None, tail)


async def async_stream(
    cmd: list[str],
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    stream_stderr: bool = False,
    *,
    kill_on_parent_death: bool = False,
    max_line: int | None = None,
    **kwargs: Any,
) -> AsyncGenerator[str, None]:
    """Yield a command's output line by line, as soon as each line is written.

    **Output:** each line of stdout, without its ``\\n`` or ``\\r\\n``, decoded as UTF-8 with
    replacement; no length limit. With ``stream_stderr=True`` stderr goes into the same pipe, in
    the child's own order. Otherwise stderr is read on the side (it can never fill up and block
    the child) and its last 64 KiB go into the error.

    **Errors:** a non-zero exit raises :class:`ProcessError` (with the return code and the
    stderr tail) after every line was yielded. ``timeout`` covers the whole stream: lines keep
    coming until it passes, then the process tree is killed and :class:`ProcessTimeoutError`
    is raised.

    **Leaving early:** ``break``, an exception in the loop body, ``aclose()`` or cancellation of
    the consuming task kills the child's tree. (An abandoned generator is closed by the event
    loop's async-generator finalizer; close it with ``aclose()`` or ``contextlib.aclosing`` to
    make the moment explicit.)

    Args:
        cmd: Command and arguments as a list.
        cwd: Working directory for the command.
        env: Environment variables to set on top of the current environment.
        timeout: Seconds the whole stream may take; None waits for ever.
        stream_stderr: Merge stderr into the streamed lines.
        kill_on_parent_death: Linux: SIGKILL the child if this process dies.
        max_line: Cut lines longer than this many bytes to their first ``max_line`` bytes;
            such a line is a :class:`~procfound.engine.lines.CutLine` (a ``str``) whose
            ``dropped`` says how many bytes were let go. Memory stays bounded either way.
        **kwargs: ``encoding`` and ``errors`` for decoding, ``foreground``.

    Yields:
        Lines of output from the command.

    Raises:
        ValidationError: If the arguments are wrong (for example a string command).
        ProcessError: If the command cannot start or exits non-zero.
        ProcessTimeoutError: If ``timeout`` passes.

    Example:
        >>> import anyio
        >>> async def lines():
        ...     return [line async for line in async_stream(["printf", "a\\nb\\n"])]
        >>> anyio.run(lines)
        ['a', 'b']
    """
    batches = line_batches(
        cmd,
        cwd,
        env,
        timeout,
        stream_stderr,
        kill_on_parent_death=kill_on_parent_death,
        max_line=max_line,
        **kwargs,
    )
    try:
        async for batch in batches:
            for line in batch:
                yield line
    finally:
        await batches.aclose()


_stream_batches = make_sync_iterator(line_batches, "stream")


def stream(
    cmd: list[str],
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    stream_stderr: bool = False,
    *,
    kill_on_parent_death: bool = False,
    max_line: int | None = None,
    **kwargs: Any,
) -> LineStream:
    """Yield a command's output line by line, from sync code.

    The sync twin of :func:`async_stream` (same arguments, same behaviour); it runs in the
    shared portal and fetches all the lines one read produced in a single call. Leaving the loop
    early (``break``, an exception, closing or dropping the generator) or Ctrl-C kills the
    child's tree.

    Args:
        cmd: Command and arguments as a list.
        cwd: Working directory for the command.
        env: Environment variables to set on top of the current environment.
        timeout: Seconds the whole stream may take; None waits for ever.
        stream_stderr: Merge stderr into the streamed lines.
        kill_on_parent_death: Linux: SIGKILL the child if this process dies.
        max_line: Cut lines longer than this many bytes to their first ``max_line`` bytes;
            such a line is a :class:`~procfound.engine.lines.CutLine` (a ``str``) whose
            ``dropped`` says how many bytes were let go. Memory stays bounded either way.
        **kwargs: ``encoding`` and ``errors`` for decoding, ``foreground``.

    Yields:
        Lines of output from the command.

    Raises:
        ValidationError: If the arguments are wrong.
        ProcessError: If the command cannot start or exits non-zero.
        ProcessTimeoutError: If ``timeout`` passes.

    Example:
        >>> list(stream(["printf", "a\\nb\\n"]))
        ['a', 'b']
    """
    batches = _stream_batches(
        cmd,
        cwd,
        env,
        timeout,
        stream_stderr,
        kill_on_parent_death=kill_on_parent_death,
        max_line=max_line,
        **kwargs,
    )
    return LineStream(batches)


class LineStream(Iterator[str]):
    """The lines of a running command, for sync code (what :func:`stream` returns).

    Iterating it walks the batches with :func:`itertools.chain`, so each line costs a C-level
    step rather than a Python generator frame (measured: the difference between 11 and 16
    million lines a second). ``close()``, a ``with`` block, or dropping it closes the batch
    generator, which kills the child's tree.
    """

    __slots__ = ("_batches", "_lines")

    def __init__(self, batches: Generator[list[str], None, None]) -> None:
        self._batches = batches
        self._lines: Iterator[str] = itertools.chain.from_iterable(batches)

    def __iter__(self) -> Iterator[str]:
        return self._lines

    def __next__(self) -> str:
        return next(self._lines)

    def close(self) -> None:
        """Stop early: the child's tree is killed before this returns."""
        self._batches.close()

    def __enter__(self) -> LineStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
