"""The process side of every stream: :class:`ChunkPump` spawns, reads the pipes, applies the
deadline and ends in the kill path, handing over the bytes each read returned, then how the
command ended (:class:`Ended`).

The public stream functions (``procfound.streaming``) bind their arguments into a
:class:`StreamCall` and drive a pump: in their own generator (the async forms) or through the
portal, one :func:`output_chunks` item per call (the sync forms). Splitting the bytes into lines
is ``procfound.call.batches``.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, cast

import anyio

from procfound.call.captured import undecodable_error
from procfound.call.failures import ASYNC_STREAM
from procfound.call.invocation import Invocation
from procfound.call.observe import CommandObserver, LineTee
from procfound.call.sessions import start_child, start_stages
from procfound.call.stages import (
    StageObservers,
    Stages,
    encoder,
    spawn_failure,
    stage_calls,
    stage_requests,
)
from procfound.engine.buffers import BIG_PIPE, PIPE_FULL, OutputBuffer, grow_pipe
from procfound.engine.echo import Echo, Feedable
from procfound.engine.lines import UndecodableOutput, universal_newlines
from procfound.engine.pipeline import PipelineSession, failing_stage
from procfound.engine.session import ChildSession, UnkillableChildError
from procfound.engine.spawn import SpawnRequest, Stdio
from procfound.engine.watch import Ending, Watch
from procfound.errors import DECODE_HINT_TEXT, DecodeError, ProcessError, ValidationError
from procfound.result import CompletedProcess

__all__ = [
    "STDERR_TAIL",
    "ChunkPump",
    "Chunks",
    "Ended",
    "StreamCall",
    "StreamOutcome",
    "output_chunks",
]

# stderr is drained beside stdout so it can never fill its pipe and block the child; its tail is
# kept for the error raised on a non-zero exit.
STDERR_TAIL: Final = 64 * 1024


@dataclass(slots=True)
class StreamOutcome:
    """How the child ended, recorded by :func:`output_chunks` once it is stopped and reaped, for
    an error the consumer raises after that (a line that does not decode)."""

    returncode: int | None = None
    stderr: bytes = b""  # the tail of stderr (not merged into the lines)


@dataclass(frozen=True, slots=True)
class StreamCall:
    """The arguments of one stream call, bound to the shared parameters and validated once.

    Validation happens when the stream function is called (so an ignored keyword is reported at
    the caller's line), but a :class:`ValidationError` is kept in ``invalid`` and raised when
    iteration starts, where a generator's errors belong. Nothing is spawned before that.
    """

    invocation: Invocation | None
    invalid: ValidationError | None
    stream_stderr: bool
    max_line: int | None
    outcome: StreamOutcome = field(default_factory=StreamOutcome)
    tagged: bool = False
    pipeline: Stages | None = None  # the stages, when ``cmd`` was a pipe(...)

    def checked(self) -> Invocation:
        """The invocation; raises the call's :class:`ValidationError` if it had one."""
        if self.invalid is not None:
            raise self.invalid
        assert self.invocation is not None
        return self.invocation

    def undecodable(self, failed: UndecodableOutput) -> DecodeError:
        """The error for a line that did not decode, raised once the child was stopped: its
        ``.result`` holds the bytes from that line on and the tail of stderr."""
        invocation, outcome = self.checked(), self.outcome
        error = undecodable_error(
            invocation,
            failed.error,
            "stdout",
            position=failed.position,
            hint=DECODE_HINT_TEXT,
            return_code=outcome.returncode,
            stdout=failed.rest,
            stderr=outcome.stderr,
        )
        error.result = CompletedProcess(
            args=invocation.args,
            returncode=cast(int, outcome.returncode),  # set: the stream was stopped first
            stdout=failed.rest,
            stderr=outcome.stderr,
            cwd=invocation.cwd,
            env=invocation.env,
        )
        return error


@dataclass(frozen=True, slots=True)
class Ended:
    """The last item :func:`output_chunks` yields: how the command ended (no error: exit 0).

    The outcome travels as an item rather than an exception so that one consumer,
    :class:`~procfound.call.batches.Batcher`, can deliver the last unterminated line before
    raising it, for the sync and the async forms alike.
    """

    error: ProcessError | None = None


class _PipeSink:
    """A pipe's sink: each wake-up reads what the pipe holds (growing the pipe to 1 MiB once a
    read fills it) and hands it to :meth:`feed`, which the echo and the tee call too."""

    __slots__ = ("_grown",)

    def __init__(self) -> None:
        self._grown = False

    def fill_from(self, fd: int) -> bool:
        try:
            data = os.read(fd, BIG_PIPE if self._grown else PIPE_FULL)
        except BlockingIOError:
            return False
        if not data:
            return True
        self.feed(data)
        if len(data) >= PIPE_FULL and not self._grown:
            self._grown = True
            grow_pipe(fd)
        return False

    def feed(self, data: bytes) -> None:
        raise NotImplementedError


class _Chunks(_PipeSink):
    """The stream pipe's sink: the bytes of each read, kept as they came for the consumer."""

    __slots__ = ("chunks", "size")

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[bytes] = []
        self.size = 0  # bytes read so far (the session's drain watches it grow)

    def feed(self, data: bytes) -> None:
        """Add bytes read from the pipe, or by the echo (``print_output``)."""
        if data:
            self.chunks.append(data)
            self.size += len(data)

    def take(self) -> list[bytes]:
        chunks, self.chunks = self.chunks, []
        return chunks


class _Arrivals:
    """The reads of both pipes of a tagged stream, in the order they happened.

    Each item is ``(stream, bytes, seconds since the child started)``. One sink per pipe
    (:class:`_Tagger`) appends to it; the consumer takes them all at each wake-up.
    """

    __slots__ = ("chunks", "origin", "size")

    def __init__(self) -> None:
        self.chunks: list[tuple[str, bytes, float]] = []
        self.size = 0  # bytes read from both pipes so far
        self.origin = time.monotonic()  # set to the session's start once it exists

    def take(self) -> list[tuple[str, bytes, float]]:
        chunks, self.chunks = self.chunks, []
        return chunks


class _Tagger(_PipeSink):
    """One pipe's sink in a tagged stream: its reads go to the shared :class:`_Arrivals`."""

    __slots__ = ("_arrivals", "_stream", "size", "tail")

    def __init__(self, arrivals: _Arrivals, stream: str, tail: OutputBuffer | None) -> None:
        super().__init__()
        self._arrivals = arrivals
        self._stream = stream
        self.size = 0
        self.tail = tail  # stderr's last bytes, for the error at a non-zero exit

    def feed(self, data: bytes) -> None:
        """Add bytes read by the echo (``print_output``) or the verbose tee."""
        if not data:
            return
        arrivals = self._arrivals
        arrivals.chunks.append((self._stream, data, time.monotonic() - arrivals.origin))
        arrivals.size += len(data)
        self.size += len(data)
        if self.tail is not None:
            self.tail.feed(data)


Chunks = list[bytes] | list[tuple[str, bytes, float]]


class ChunkPump:
    """The process side of every stream: the bytes each wake-up read, then the outcome.

    A plain object rather than an async generator, so that each public stream is *one* native
    async generator. Nested generators are each tracked by the event loop, and at
    ``asyncio.run``'s end ``shutdown_asyncgens`` closes them all at once: the outer one's
    ``finally`` then found the inner one "already running" (issue #22). The outer generator
    owns this pump and closes it in its ``finally``.

    Made inside the generator's body, so the arguments are checked and the child spawned at the
    first iteration, as before. No cancel scope or task group spans a ``yield``: the deadline is
    applied to each wait on its own, so the consumer may hold the generator safely. What one
    :meth:`pull` reads is bounded (a grown pipe's 1 MiB per read), and nothing is read while the
    consumer holds the generator: the pipe is the back-pressure.

    ``async with`` closes it however the block ends, and turns a line that did not decode
    (:class:`~procfound.engine.lines.UndecodableOutput`, raised by the consumer's splitter) into
    its :class:`~procfound.errors.DecodeError` once the tree is stopped.
    """

    __slots__ = (
        "_call",
        "_closed",
        "_ending",
        "_errors",
        "_exited",
        "_invocation",
        "_observer",
        "_output",
        "_pipeline",
        "_session",
        "_stage_errors",
        "_watch",
        "ended",
    )

    def __init__(self, call: StreamCall) -> None:
        invocation = call.checked()
        self._call = call
        self.ended = False  # the outcome was pulled (see split)
        fed = invocation.input is not None or invocation.input_stream is not None
        request = invocation.request(
            stdin=Stdio.PIPE if fed else Stdio.DEVNULL,
            stdout=Stdio.PIPE,
            stderr=Stdio.STDOUT if call.stream_stderr else Stdio.PIPE,
        )
        self._invocation = invocation
        errors = self._errors = OutputBuffer(limit=STDERR_TAIL)
        output: _Chunks | _Arrivals
        sinks: tuple[Feedable, Feedable]
        if call.tagged:  # both pipes' reads, in the order they came
            output = _Arrivals()
            sinks = _Tagger(output, "stdout", None), _Tagger(output, "stderr", errors)
        else:
            output = _Chunks()
            sinks = output, errors
        self._output = output
        policy = invocation.stop_policy()
        self._observer: CommandObserver | StageObservers | None
        self._observer = observer = invocation.observer(policy)
        if observer is not None and observer.verbose == "full":  # each line on stderr, tagged
            sinks = LineTee(sinks[0], "stdout"), LineTee(sinks[1], "stderr")
        self._pipeline = call.pipeline
        self._stage_errors: list[OutputBuffer] = [errors]
        echo = invocation.options.print_output
        self._session: ChildSession | PipelineSession
        if call.pipeline is not None or invocation.input_stream is not None:
            self._start_stages(call, invocation, request, sinks, echo)
            return
        self._session = start_child(
            request,
            policy,
            lambda exc: ASYNC_STREAM.spawn_failed(invocation.shown, exc),
            stdout=Echo(sinks[0]) if echo else sinks[0],
            stderr=Echo(sinks[1]) if echo else sinks[1],
            input=invocation.session_input,
            observer=observer,
        )
        self._started(call, invocation)

    def _started(self, call: StreamCall, invocation: Invocation) -> None:
        output, stage_errors = self._output, self._stage_errors
        if isinstance(output, _Arrivals):
            output.origin = min(stage.started_at for stage in _stages(self._session))
        self._watch = Watch(
            invocation.timeout,
            invocation.options.idle_timeout,
            lambda: output.size + sum(err.size + err.dropped for err in stage_errors),
        )
        self._ending: Ending | None = None  # "timeout" or "idle" once a clock ran out
        self._exited = self._closed = False

    def _start_stages(
        self,
        call: StreamCall,
        invocation: Invocation,
        request: SpawnRequest,
        sinks: tuple[Feedable, Feedable],
        echo: bool,
    ) -> None:
        """A pipeline, or a command with a streamed input: the engine's PipelineSession."""
        calls = stage_calls(invocation, call.pipeline)
        policy = invocation.stop_policy()
        requests = (
            [request]
            if call.pipeline is None
            else stage_requests(
                calls,
                stdin=Stdio.DEVNULL if invocation.input is None else Stdio.PIPE,
                stdout=Stdio.PIPE,
                stderr=Stdio.PIPE,
            )
        )
        errors: list[Feedable] = [sinks[1]]
        observers = [self._observer if isinstance(self._observer, CommandObserver) else None]
        if call.pipeline is not None:  # each stage's stderr, and its own log records and span
            self._stage_errors = [OutputBuffer(limit=STDERR_TAIL) for _ in calls]
            errors = list(self._stage_errors)
            observers = [each.observer(policy) for each in calls]
            self._observer = StageObservers(observers)
        session = start_stages(
            requests,
            policy,
            lambda exc: spawn_failure(ASYNC_STREAM, invocation, call.pipeline, exc),
            stdout=Echo(sinks[0]) if echo else sinks[0],
            stderrs=[Echo(err) if echo else err for err in errors],
            input=invocation.input,
            input_stream=invocation.input_stream,
            encode=encoder(invocation),
            observers=observers,
        )
        self._session = session
        self._started(call, invocation)

    async def pull(self) -> Chunks | Ended:
        """The next chunks read (never empty), or, once, the :class:`Ended` outcome."""
        session, output, watch = self._session, self._output, self._watch
        watch.restart()  # the consumer's time since the last pull is not the child's silence
        while not self._exited and self._ending is None:
            with anyio.move_on_at(watch.until()) as scope:
                self._exited = await session.step()
            if scope.cancelled_caught:
                self._stopped(watch.expired())
            elif output.chunks:
                return output.take()
            else:
                watch.moved()
        if not self._closed:
            if self._ending is None:
                await session.drain()
            await self.close()
        # Output read before the end (and, on a timeout, during the kill) is still delivered.
        if output.chunks:
            return output.take()
        return self._outcome()

    def _stopped(self, ending: Ending) -> None:
        """A clock ran out: say so to the observer before the tree is stopped."""
        self._ending = ending
        observer, options = self._observer, self._invocation.options
        if observer is None:
            return
        if ending == "idle":
            assert options.idle_timeout is not None
            observer.idled(options.idle_timeout)
        else:
            assert self._invocation.timeout is not None
            observer.timed_out(self._invocation.timeout)

    def _outcome(self) -> Ended:
        invocation, pipeline, session = self._invocation, self._pipeline, self._session
        options = invocation.options
        tails = [_tail(err, options.encoding, options.errors) for err in self._stage_errors]
        shown = invocation.shown if pipeline is None else str(pipeline)
        if self._ending is not None:  # a clock ran out (the code is known for "idle" only)
            idle = self._ending == "idle"
            seconds = options.idle_timeout if idle else invocation.timeout
            assert seconds is not None
            returncode = session.returncode if idle else None
            return Ended(
                ASYNC_STREAM.ran_out(self._ending, shown, seconds, None, "".join(tails), returncode)
            )
        codes = [cast(int, stage.returncode) for stage in _stages(session)]  # reaped
        failing = failing_stage(codes, options.ok_codes)
        if failing is None:
            return Ended()
        stage = None if pipeline is None else (failing, shlex.join(pipeline.args[failing]))
        return Ended(
            ASYNC_STREAM.exit_failed(shown, codes[failing], None, tails[failing], stage=stage)
        )

    async def split(
        self, batches: Callable[[Chunks | Ended], Iterator[list[Any]]]
    ) -> Iterator[list[Any]]:
        """The batches of lines the next :meth:`pull` completes, made by the consumer's
        ``batches`` (at the end: the last line, then the command's error); once that was the
        outcome, :attr:`ended` is true."""
        item = await self.pull()
        self.ended = isinstance(item, Ended)
        return batches(item)

    async def __aenter__(self) -> ChunkPump:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()  # also when the consumer left early: the tree is stopped
        if isinstance(error, UndecodableOutput):  # raised once the exit is recorded
            raise self._call.undecodable(error) from error.error

    async def close(self) -> None:
        """Stop the tree if it still runs, reap, close (the engine's one kill path). Idempotent."""
        if self._closed:
            return
        self._closed = True
        session = self._session
        try:
            await session.finish()
        except UnkillableChildError as exc:
            raise ASYNC_STREAM.unkillable(self._invocation.shown, exc) from exc
        # For an error the consumer raises after this (a line that does not decode).
        self._call.outcome.returncode = session.returncode
        self._call.outcome.stderr = (
            self._errors.getvalue()
            if self._pipeline is None
            else b"".join(err.getvalue() for err in self._stage_errors)
        )


def _stages(session: ChildSession | PipelineSession) -> list[ChildSession]:
    return session.stages if isinstance(session, PipelineSession) else [session]


def _tail(errors: OutputBuffer, encoding: str, how: str) -> str:
    """A stderr tail for an error message: decoded, with universal newlines."""
    try:
        tail = errors.decode(encoding, how)
    except UnicodeError:  # only a diagnostic, cut at any byte: replace what does not decode
        tail = errors.decode(encoding, "replace")
    return universal_newlines(tail)


async def output_chunks(call: StreamCall) -> AsyncGenerator[Chunks | Ended, None]:
    """:class:`ChunkPump` as a generator: the chunks, then the outcome (the sync streams drive
    it through the portal, one item per call)."""
    async with ChunkPump(call) as pump:
        while not isinstance(item := await pump.pull(), Ended):
            yield item
        yield item
