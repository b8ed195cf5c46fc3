"""Starting a session and running it to its end, with the engine's errors mapped once.

``run``, pipelines, the streams and ``ManagedProcess`` start children here: the engine raises
:class:`~procfound.engine.spawn.SpawnError` (or
:class:`~procfound.engine.pipeline.StageSpawnError`), and the caller says which procfound
error that becomes. :func:`run_to_end` is the waiting part of ``run`` for one command and for a
pipeline alike: the deadline, the idle clock, the observers told, and the one kill path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import anyio

from procfound.call.failures import Operation
from procfound.call.invocation import Invocation
from procfound.engine.buffers import OutputBuffer
from procfound.engine.kill import StopPolicy
from procfound.engine.pipeline import PipelineSession, StageSpawnError
from procfound.engine.session import ChildSession, Observer, Sink, UnkillableChildError
from procfound.engine.spawn import SpawnError, SpawnRequest
from procfound.engine.watch import Ending, Watch, watch_until_exit
from procfound.errors import ProcessError, ValidationError

__all__ = ["check_idle", "run_to_end", "start_child", "start_stages"]


def start_child(
    request: SpawnRequest,
    policy: StopPolicy,
    failed: Callable[[SpawnError], ProcessError],
    *,
    stdout: Sink | None = None,
    stderr: Sink | None = None,
    input: bytes | None = None,
    observer: Observer | None = None,
) -> ChildSession:
    """Start one child; a program that cannot start raises ``failed(error)``.

    Args:
        request: What to start.
        policy: How its tree is stopped.
        failed: Makes the error to raise from the engine's :class:`SpawnError` (for example
            ``lambda exc: ASYNC_RUN.spawn_failed(call.shown, exc)``); it is raised from the
            ``OSError`` behind it.
        stdout: Where stdout goes, when piped.
        stderr: Where stderr goes, when piped.
        input: Bytes for stdin, when stdin is piped.
        observer: Told when the child has started and when the session has ended.

    Returns:
        The running :class:`ChildSession` (which must reach ``finish()``).

    Raises:
        ProcessError: ``failed(error)``, when the child could not start.
    """
    try:
        return ChildSession(
            request, policy, stdout=stdout, stderr=stderr, input=input, observer=observer
        )
    except SpawnError as exc:
        raise failed(exc) from exc.os_error


def start_stages(
    requests: Sequence[SpawnRequest],
    policy: StopPolicy,
    failed: Callable[[StageSpawnError], ProcessError],
    **session: Any,
) -> PipelineSession:
    """Start a pipeline's stages (``session``: :class:`PipelineSession`'s keywords); a stage
    that cannot start raises ``failed(error)``, from the ``OSError`` behind it."""
    try:
        return PipelineSession(requests, policy, **session)
    except StageSpawnError as exc:
        raise failed(exc) from exc.error.os_error


class ClockObserver(Protocol):
    """Told when a clock of the call ran out (a command's observer, or a pipeline's)."""

    def timed_out(self, seconds: float) -> None: ...

    def idled(self, seconds: float) -> None: ...


def check_idle(call: Invocation, capture_output: bool) -> float | None:
    """The call's ``idle_timeout``, refused where no output is read to watch."""
    idle = call.options.idle_timeout
    if idle is not None and not capture_output:
        raise ValidationError(
            "idle_timeout watches the output procfound reads; with capture_output=False it "
            "reads none (use timeout=, or capture the output)",
            code="INVALID_ARGUMENT",
        )
    return idle


async def run_to_end(
    session: ChildSession | PipelineSession,
    call: Invocation,
    operation: Operation,
    read: Sequence[OutputBuffer],
    observer: ClockObserver | None,
) -> Ending:
    """Move the output until the child (every stage) has exited, under the call's deadline and
    idle clock, then stop, reap and close the tree in every case (the engine's one kill path).

    Args:
        session: The running session.
        call: Its call: ``timeout`` and ``idle_timeout`` are read from it.
        operation: Names the error of a child that survives SIGKILL.
        read: The buffers the idle clock watches grow.
        observer: Told which clock ran out, before the tree is stopped.

    Returns:
        ``"exit"``, or the clock that ran out: ``"timeout"`` or ``"idle"``.

    Raises:
        ProcessError: If the child could not be killed.
    """
    idle, timeout = call.options.idle_timeout, call.timeout
    ending: Ending = "exit"
    try:
        if idle is not None:  # (each wait bounded by both clocks: no task per stage then)
            watch = Watch(timeout, idle, lambda: sum(b.size + b.dropped for b in read))
            ending = await watch_until_exit(session, watch)  # type: ignore[arg-type]
        elif timeout is None:  # no cancel scope to build and tear down on the hot path
            await session.run_to_exit()
        else:
            with anyio.move_on_after(timeout) as scope:
                await session.run_to_exit()
            ending = "timeout" if scope.cancelled_caught else "exit"
        if observer is not None and ending == "idle":
            assert idle is not None
            observer.idled(idle)
        elif observer is not None and ending == "timeout":
            assert timeout is not None
            observer.timed_out(timeout)
    finally:
        try:
            await session.finish()
        except UnkillableChildError as exc:
            raise operation.unkillable(call.shown, exc) from exc
    return ending
