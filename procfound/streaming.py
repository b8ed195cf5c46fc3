"""``async_stream``: a command's output line by line as it is written; ``async_stream_batches``:
the same lines a batch at a time; ``stream`` and ``stream_batches``: the same from sync code.

This module binds the four functions' arguments (one shared parameter list, one docstring
source) and drives the call layer: :class:`~procfound.call.chunks.ChunkPump` spawns, reads the
pipe, applies the deadline and ends in the kill path, handing over the bytes each read returned;
:func:`~procfound.call.chunks.output_chunks` is the same as a generator, whose sync twin is
generated (one portal call per read). Splitting bytes into lines
(:mod:`procfound.call.batches`) is pure computation and happens where the lines are consumed,
64 KiB at a time: for sync callers that is their own thread, so the strings are made in the
cache that reads them, and a read can move a whole grown pipe (1 MiB) per portal call
(measured: 1.45x -> about 1.1x of iterating a Popen pipe; docs/performance.md).
"""

from __future__ import annotations

import inspect
import itertools
import textwrap
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
)
from pathlib import Path
from typing import Any, Final, Generic, ParamSpec, TypeVar

from procfound.bridge.sync import make_sync_iterator
from procfound.call.batches import Batcher
from procfound.call.chunks import ChunkPump, Chunks, Ended, StreamCall, output_chunks
from procfound.call.invocation import Invocation
from procfound.call.observe import Line
from procfound.call.options import check_max_bytes
from procfound.call.stages import check_pipeline_call
from procfound.engine.lines import LineSplitter, UndecodableOutput
from procfound.engine.spawn import Stdio
from procfound.errors import ValidationError
from procfound.pipes import Pipeline

__all__ = [
    "Line",
    "LineStream",
    "async_stream",
    "async_stream_batches",
    "output_chunks",
    "stream",
    "stream_batches",
]

P = ParamSpec("P")
R = TypeVar("R")


def _stream_parameters(
    cmd: list[str] | Pipeline,
    cwd: str | Path | None = None,
    env: Mapping[str, str | None] | None = None,
    timeout: float | None = None,
    stream_stderr: bool = False,
    *,
    kill_on_parent_death: bool = False,
    max_line: int | None = None,
    tagged: bool = False,
    input: str | bytes | Iterable[str | bytes] | AsyncIterable[str | bytes] | None = None,
    **kwargs: Any,
) -> None:
    """The parameters of every stream function, written once: the template they share."""


_PARAMETERS: Final = inspect.signature(_stream_parameters)


def _bind(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> StreamCall:
    """Bind a call's arguments the way Python would bind them to the template, and check
    them (a :class:`ValidationError` is kept in the call, for the first iteration)."""
    bound = _PARAMETERS.bind(*args, **kwargs)
    bound.apply_defaults()
    given = bound.arguments
    stream_stderr = bool(given["stream_stderr"])
    tagged = bool(given["tagged"])
    try:
        invocation = _check_stream_call(name, given, stream_stderr)
        max_line = check_max_bytes(given["max_line"], "max_line")
        if tagged:
            _check_tagged(invocation, stream_stderr)
            if isinstance(given["cmd"], Pipeline):
                raise ValidationError(
                    "tagged=True cannot apply to a pipeline yet: its stages' stderr are "
                    "read apart (result.stages[i].stderr with run())",
                    code="INVALID_ARGUMENT",
                )
    except ValidationError as exc:
        return StreamCall(None, exc, stream_stderr, None, tagged=tagged)
    cmd = given["cmd"]
    pipeline = cmd if isinstance(cmd, Pipeline) else None
    return StreamCall(invocation, None, stream_stderr, max_line, tagged=tagged, pipeline=pipeline)


def _check_tagged(call: Invocation, stream_stderr: bool) -> None:
    if stream_stderr:
        raise ValidationError(
            "tagged=True reads stdout and stderr apart and tags each line with its stream; "
            "stream_stderr=True would merge them into one untagged pipe: pass only one",
            code="INVALID_ARGUMENT",
        )
    if call.target("stderr") not in (None, Stdio.PIPE):
        raise ValidationError(
            "tagged=True streams the child's stderr too: stderr= cannot send it elsewhere",
            code="INVALID_ARGUMENT",
        )


def _check_stream_call(name: str, given: dict[str, Any], stream_stderr: bool) -> Invocation:
    if isinstance(given["cmd"], str):
        raise ValidationError(
            "stream commands must be a list of arguments (a str would need a shell)",
            code="INVALID_COMMAND_TYPE",
        )
    pipeline = given["cmd"] if isinstance(given["cmd"], Pipeline) else None
    call = Invocation.from_call(
        f"{name}()",
        given["cmd"] if pipeline is None else pipeline.args[0],  # the keywords, checked once
        given["kwargs"],
        cwd=given["cwd"],
        env=given["env"],
        timeout=given["timeout"],
        input=given["input"],
        kill_on_parent_death=given["kill_on_parent_death"],
    )
    if pipeline is not None:
        check_pipeline_call(call)
        if stream_stderr:
            raise ValidationError(
                "stream_stderr=True cannot apply to a pipeline (whose stderr would be merged?); "
                "every stage's stderr is read on its own and its tail goes into the error",
                code="INVALID_ARGUMENT",
            )
    if not call.text:
        raise ValidationError(
            "streams yield text lines: text=False (or universal_newlines=False) cannot apply",
            code="INVALID_ARGUMENT",
        )
    if call.target("stdout") not in (None, Stdio.PIPE):
        raise ValidationError(
            "a stream reads the child's stdout: stdout= cannot send it elsewhere",
            code="INVALID_ARGUMENT",
        )
    if stream_stderr and call.target("stderr") not in (None, Stdio.STDOUT):
        raise ValidationError(
            "stream_stderr=True merges stderr into the lines; stderr= cannot also send it "
            "elsewhere",
            code="INVALID_ARGUMENT",
        )
    options = call.options
    try:
        LineSplitter(options.encoding, options.errors)
    except ValueError as exc:  # a known codec that is not ASCII-compatible (UTF-16...)
        raise ValidationError(
            f"cannot split {options.encoding!r} output into lines: {exc}",
            code="INVALID_ARGUMENT",
        ) from exc
    return call


# The sections every stream function's docstring shares, written once: the implementations'
# docstrings hold the markers and with_stream_parameters fills them in.
_ARGS: Final = """    Args:
        cmd: Command and arguments as a list, or a :class:`~procfound.Pipeline`.
        cwd: Working directory for the command.
        env: Environment variables to set on top of the current environment.
        timeout: Seconds the whole stream may take; None waits for ever.
        stream_stderr: Merge stderr into the streamed lines.
        kill_on_parent_death: Linux: SIGKILL the child if this process dies.
        max_line: Cut lines longer than this many bytes to their first ``max_line`` bytes;
            such a line is a :class:`~procfound.engine.lines.CutLine` (a ``str``) whose
            ``dropped`` says how many bytes were let go. Memory stays bounded either way.
        tagged: Read stdout and stderr apart and yield ``Line(stream, text, time)`` items:
            ``stream`` is ``"stdout"`` or ``"stderr"``, ``time`` the seconds since the child
            started; both streams' lines in the order they arrived, each decoded (and cut by
            ``max_line``) on its own. Cannot be combined with ``stream_stderr=True``.
        input: Bytes or str for stdin, or an iterable or async iterable of them, written
            while the output is read (as :func:`~procfound.async_run` takes it).
        **kwargs: ``encoding`` and ``errors`` for decoding, and the other keyword controls
            of :func:`async_run` (``print_output`` echoes the output while it is streamed,
            ``idle_timeout`` stops a child that writes nothing for that long, ``pty=True``
            and ``pty_size`` run it on a terminal whose output is the lines, stderr merged,
            and ``tagged`` lines all ``"stdout"``); ``stdout`` can only be the pipe that is
            streamed.
"""
_RAISES: Final = """    Raises:
        ValidationError: If the arguments are wrong (for example a string command).
        ProcessError: If the command cannot start, or exits non-zero (raised after the last
            line was delivered).
        ProcessTimeoutError: If ``timeout`` passes, or ``idle_timeout`` without output.
        DecodeError: If a line does not decode (possible with ``errors="strict"``): raised after
            the lines before it, once the tree is stopped; ``.result.stdout`` holds the bytes
            from that line on.
"""


def _shared_sections(doc: str) -> str:
    # Python 3.13 strips a docstring's common indentation when it compiles it: the placeholder
    # then sits at the margin, and the shared text is indented as the placeholder is.
    for placeholder, text in (("(Args)", _ARGS), ("(Raises)", _RAISES)):
        for line in doc.splitlines(keepends=True):
            if line.strip() == placeholder:
                indent = line[: len(line) - len(line.lstrip())]
                doc = doc.replace(line, textwrap.indent(textwrap.dedent(text), indent), 1)
                break
    return doc


class _WithParameters(Generic[P]):
    """Makes a public stream function from an implementation that takes a :class:`StreamCall`.

    The public function has the template's parameters (for callers, ``inspect`` and mypy
    alike) and the implementation's docstring (with the shared sections filled in) and return
    type.
    """

    def __init__(self, template: Callable[P, None]) -> None:
        self._signature = inspect.signature(template)

    def __call__(self, impl: Callable[[StreamCall], R], name: str) -> Callable[P, R]:
        def public(*args: P.args, **kwargs: P.kwargs) -> R:
            return impl(_bind(name, args, kwargs))

        public.__name__ = public.__qualname__ = name
        public.__doc__ = _shared_sections(impl.__doc__ or "")
        returns = inspect.signature(impl).return_annotation
        public.__signature__ = self._signature.replace(  # type: ignore[attr-defined]
            return_annotation=returns
        )
        return public


with_stream_parameters: Final = _WithParameters(_stream_parameters)


async def _async_stream_batches(
    call: StreamCall, lazy: bool = False
) -> AsyncGenerator[list[Any], None]:
    """Yield a command's output as lists of lines: the lines each 64 KiB of output completes.

    The same lines as :func:`async_stream`, in the same order, with the same errors, timeout
    and cleanup, but one ``await`` per batch instead of per line. A batch is never empty; it
    holds the lines completed by up to 64 KiB of newly read output (its first line may have
    started earlier), so a slow writer still gets each line through as soon as it is written.
    Use it where the per-line ``async for`` is the bottleneck: it moves millions of lines a
    second more than any line-by-line async iterator can (docs/performance.md).

    (Args)

    Yields:
        Non-empty lists of lines, without their line endings.

    (Raises)

    Example:
        >>> import anyio
        >>> async def count_lines():
        ...     total = 0
        ...     async for batch in async_stream_batches(["seq", "1000"]):
        ...         total += len(batch)
        ...     return total
        >>> anyio.run(count_lines)
        1000
    """
    batcher = Batcher.of(call, lazy)
    async with ChunkPump(call) as pump:
        while not pump.ended:
            for batch in await pump.split(batcher.batches):
                yield batch


async def _async_stream(call: StreamCall) -> AsyncGenerator[Any, None]:
    """Yield a command's output line by line, as soon as each line is written.

    **Output:** each line of stdout, without its ending (``\\n``, ``\\r\\n`` or a lone ``\\r``:
    universal newlines), decoded as UTF-8 with replacement; no length limit. With
    ``stream_stderr=True`` stderr goes into the same pipe, in the child's own order. Otherwise
    stderr is read on the side (it can never fill up and block the child) and its last 64 KiB
    go into the error.

    **Errors:** a non-zero exit raises :class:`ProcessError` (with the return code and the
    stderr tail) after every line was yielded. ``timeout`` covers the whole stream: lines keep
    coming until it passes, then the process tree is killed and :class:`ProcessTimeoutError`
    is raised.

    **Leaving early:** ``break``, an exception in the loop body, ``aclose()`` or cancellation of
    the consuming task kills the child's tree. (An abandoned generator is closed by the event
    loop's async-generator finalizer; close it with ``aclose()`` or ``contextlib.aclosing`` to
    make the moment explicit.)

    (Args)

    Yields:
        Lines of output from the command.

    (Raises)

    Example:
        >>> import anyio
        >>> async def lines():
        ...     return [line async for line in async_stream(["printf", "a\\nb\\n"])]
        >>> anyio.run(lines)
        ['a', 'b']
    """
    batcher = Batcher.of(call, lazy=True)
    async with ChunkPump(call) as pump:
        while not pump.ended:  # (one generator: no nested one, see ChunkPump)
            for line in itertools.chain.from_iterable(await pump.split(batcher.batches)):
                yield line


_output_chunks = make_sync_iterator(output_chunks, "output_chunks")


def _split_batches(
    chunks: Generator[Chunks | Ended, None, None], call: StreamCall, lazy: bool = False
) -> Generator[list[Any], None, None]:
    """The sync driver of :class:`~procfound.call.batches.Batcher`, in the caller's thread."""
    try:
        batcher = Batcher.of(call, lazy)
        for item in chunks:
            yield from batcher.batches(item)
    except UndecodableOutput as exc:
        chunks.close()  # the tree is stopped (and its exit recorded) first
        raise call.undecodable(exc) from exc.error
    finally:
        chunks.close()


def _stream_batches(call: StreamCall) -> Generator[list[Any], None, None]:
    """Yield a command's output as lists of lines, from sync code.

    The sync twin of :func:`async_stream_batches`: one portal call per read (up to 1 MiB),
    split into batches in the calling thread. Leaving the loop early (``break``, an exception,
    ``close()`` or dropping the generator) or Ctrl-C kills the child's tree.

    (Args)

    Yields:
        Non-empty lists of lines, without their line endings.

    (Raises)

    Example:
        >>> sum(len(batch) for batch in stream_batches(["seq", "1000"]))
        1000
    """
    return _split_batches(_output_chunks(call), call)


def _stream(call: StreamCall) -> LineStream:
    """Yield a command's output line by line, from sync code.

    The sync twin of :func:`async_stream` (same arguments, same behaviour); the process runs in
    the shared portal, which hands over all the bytes one read produced per call, and the lines
    are split in the calling thread. Leaving the loop early (``break``, an exception, closing or
    dropping the generator) or Ctrl-C kills the child's tree.

    (Args)

    Yields:
        Lines of output from the command.

    (Raises)

    Example:
        >>> list(stream(["printf", "a\\nb\\n"]))
        ['a', 'b']
    """
    return LineStream(_split_batches(_output_chunks(call), call, lazy=True))


class LineStream(Iterator[Any]):
    """The lines of a running command, for sync code (what :func:`stream` returns).

    Iterating it walks the batches with :func:`itertools.chain`, so each line costs a C-level
    step rather than a Python generator frame (measured: the difference between 11 and 16
    million lines a second). ``close()``, a ``with`` block, or dropping it closes the batch
    generator, which kills the child's tree.
    """

    __slots__ = ("_batches", "_lines")

    def __init__(self, batches: Generator[list[Any], None, None]) -> None:
        self._batches = batches
        self._lines: Iterator[Any] = itertools.chain.from_iterable(batches)

    def __iter__(self) -> Iterator[Any]:
        return self._lines

    def __next__(self) -> Any:
        return next(self._lines)

    def close(self) -> None:
        """Stop early: the child's tree is killed before this returns."""
        self._batches.close()

    def __enter__(self) -> LineStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


async_stream_batches = with_stream_parameters(_async_stream_batches, "async_stream_batches")
async_stream = with_stream_parameters(_async_stream, "async_stream")
stream_batches = with_stream_parameters(_stream_batches, "stream_batches")
stream = with_stream_parameters(_stream, "stream")
