"""N children joined by OS pipes, and an input written as it is produced: one session for both.

A :class:`PipelineSession` starts one :class:`~procfound.engine.session.ChildSession` per stage,
so every stage has the engine's one kill path (shielded, bounded, ending in the synchronous
last step). The pipes between stages are made here with ``os.pipe()`` and handed to the spawns
as int targets: the bytes between stages never pass through Python, and the parent closes its
copy of each end right after the spawn that uses it. The parent must hold no end of an
intermediate pipe: if it did, ``yes | head -1`` would never end (``yes`` gets SIGPIPE only once
every read end is closed).

**One group per stage.** Each stage leads its own process group (and, for ``contain="tree"``,
its own box), and the pipeline stops them all with the same policy, concurrently, so a stop
takes one grace, not N. A shared group was the other choice; it fails a promise the per-stage
groups keep: when a stage's direct child exits, its session sweeps its group (a background
grandchild holding the pipe to the next stage would otherwise keep that stage reading for
ever, where ``run`` promises the direct child's exit ends the call). In a shared group that
sweep would kill the other stages. A shared group also needs its leader (the first stage,
usually the first to exit) kept unreaped until the end, so the group id stays reserved.

The session waits on every stage at once. :meth:`PipelineSession.run_to_exit` (a run) has a
task per stage and one for the input. :meth:`PipelineSession.step` (a stream: no task group may
span a ``yield``) waits on one epoll that holds every stage's readiness set (an epoll fd is
readable while its own set has events), then steps the stages that are ready. Where that is not
possible (no pidfd, so no readiness fd; or an input being fed, whose waits are not fds alone) it
races each live stage's ``step()`` and the input's in a task group that ends inside the call:
the first to make progress cancels the others, which lose nothing (readiness is
level-triggered and the input's steps are cancel-safe; an async iterable's fetch is spared,
see engine/feed.py). Measured on a stream of 3,000 lines written one by one (`pipe(writer,
cat)`, ``process_time`` per read): the race cost 160-250 µs of CPU per read against 45-60 µs
for one child; the outer epoll 40-80 µs, level with one child. A stage that
exits is drained and finished at once (its tree swept, it is reaped); the pipeline ends when
every stage has.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import os
import select
import signal
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any, Final, cast

import anyio

from procfound.engine.feed import Encode, InputPump
from procfound.engine.kill import StopPolicy
from procfound.engine.session import ChildSession, Observer, Sink, UnkillableChildError
from procfound.engine.spawn import SpawnError, SpawnRequest, spawn_error
from procfound.engine.spawn_errors import find_program, missing_interpreter

__all__ = ["PipelineSession", "StageSpawnError", "failing_stage", "pipefail"]

_F_SETPIPE_SZ: Final = getattr(fcntl, "F_SETPIPE_SZ", None)
_BROKEN_PIPE: Final = (-signal.SIGPIPE, 128 + signal.SIGPIPE)


class StageSpawnError(Exception):
    """Stage ``index`` could not be started; nothing of the pipeline is left running."""

    def __init__(self, index: int, error: SpawnError) -> None:
        super().__init__(f"stage {index}: {error.reason}")
        self.index = index
        self.error = error


def _broken_pipe_upstream(index: int, code: int, stages: int) -> bool:
    """An upstream stage ended by SIGPIPE (or exiting 141, as a shell reports it): a later
    stage stopped reading, which is how ``yes | head -1`` is meant to end."""
    return index < stages - 1 and code in _BROKEN_PIPE


def pipefail(codes: Sequence[int]) -> int:
    """The pipeline's code: the rightmost stage's that failed, 0 when all succeeded.

    Example:
        >>> pipefail([1, 0, 2, 0]), pipefail([-13, 0]), pipefail([0, 0])
        (2, 0, 0)
    """
    for index in range(len(codes) - 1, -1, -1):
        code = codes[index]
        if code != 0 and not _broken_pipe_upstream(index, code, len(codes)):
            return code
    return 0


def failing_stage(codes: Sequence[int], ok_codes: frozenset[int]) -> int | None:
    """The index of the rightmost stage whose code is not accepted, or None.

    Example:
        >>> failing_stage([2, 1, 0], frozenset({0, 1})), failing_stage([141, 0], frozenset({0}))
        (0, None)
    """
    for index in range(len(codes) - 1, -1, -1):
        code = codes[index]
        if code not in ok_codes and not _broken_pipe_upstream(index, code, len(codes)):
            return index
    return None


def _as_bytes(item: object) -> bytes:
    return bytes(cast(bytes, item))


def _check_program(request: SpawnRequest) -> None:
    """Raise the :class:`SpawnError` exec would give if ``request``'s program cannot run:
    missing (in the child's PATH, from its cwd), not executable, or a script whose ``#!``
    interpreter is missing. Exec can still fail later (ENOEXEC): that is handled too."""
    program = request.program
    try:
        path = find_program(program, request.env, request.cwd)
        if os.path.isdir(path) or not os.access(path, os.X_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), program)
        if missing_interpreter(path, request.cwd) is not None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
    except OSError as exc:
        raise spawn_error(exc, program, request.cwd, env=request.env) from exc


def _close(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


class PipelineSession:
    """The stages of a pipeline (one or more), and the input pump of the first one.

    Quacks like a :class:`ChildSession` for the callers that drive one (``step``,
    ``run_to_exit``, ``drain``, ``finish``, ``returncode``), so a stream reads a pipeline the
    way it reads a command.
    """

    __slots__ = ("_by_fd", "_error", "_input", "_outer", "stages")

    def __init__(
        self,
        requests: Sequence[SpawnRequest],
        policy: StopPolicy,
        *,
        stdout: Sink | None = None,
        stderrs: Sequence[Sink | None] = (),
        input: bytes | None = None,
        input_stream: Iterable[Any] | AsyncIterable[Any] | None = None,
        encode: Encode | None = None,
        observers: Sequence[Observer | None] = (),
    ) -> None:
        """Check every stage's program, then start the stages in order, first to last.

        Args:
            requests: One per stage. The first one's ``stdin`` and the last one's ``stdout``
                are used as they are (``PIPE``: read into ``stdout``); the ends between stages
                are replaced by the pipes made here.
            policy: The one stop policy of every stage.
            stdout: The last stage's stdout sink, when it is piped.
            stderrs: Each stage's stderr sink, when piped.
            input: Bytes for the first stage's stdin (its request says ``PIPE``).
            input_stream: An iterable or async iterable written to the first stage's stdin as
                it is produced (its request's ``stdin`` is then replaced by a pipe).
            encode: Turns one item of ``input_stream`` into bytes (default: ``bytes(item)``).
            observers: Each stage's observer (told when it starts and when it has ended).

        Raises:
            StageSpawnError: A stage's program is missing (checked in its own PATH before
                anything starts), or a spawn failed; stages already started are killed and
                reaped, and every fd made here is closed.
        """
        for index, request in enumerate(requests):
            try:
                _check_program(request)
            except SpawnError as exc:
                raise StageSpawnError(index, exc) from exc
        self.stages: list[ChildSession] = []
        self._input: InputPump | None = None
        self._error: BaseException | None = None
        # The stages' readiness sets in one epoll (see _outer_set); False: not possible here.
        self._outer: select.epoll | bool | None = None
        self._by_fd: dict[int, ChildSession] = {}
        upstream: int | None = None  # the read end the next stage's stdin comes from
        feed: int | None = None  # our write end of the first stage's stdin (input_stream)
        last = len(requests) - 1
        try:
            if input_stream is not None:
                try:
                    upstream, feed = os.pipe()
                    os.set_blocking(feed, False)
                except OSError as exc:  # fd exhaustion
                    raise StageSpawnError(
                        0, spawn_error(exc, requests[0].program, requests[0].cwd)
                    ) from exc
            for index, request in enumerate(requests):
                down_r = down_w = None
                try:
                    if index < last:
                        down_r, down_w = os.pipe()  # close-on-exec: only these two stages get it
                        if request.pipesize > 0 and _F_SETPIPE_SZ is not None:
                            fcntl.fcntl(down_w, _F_SETPIPE_SZ, request.pipesize)
                    request = replace(
                        request,
                        stdin=request.stdin if upstream is None else upstream,
                        stdout=request.stdout if down_w is None else down_w,
                    )
                    session = ChildSession(
                        request,
                        policy,
                        stdout=stdout if index == last else None,
                        stderr=stderrs[index] if index < len(stderrs) else None,
                        input=input if index == 0 and input_stream is None else None,
                        observer=observers[index] if index < len(observers) else None,
                    )
                except BaseException as exc:
                    _close(down_r)
                    down_r = None
                    if isinstance(exc, SpawnError):
                        raise StageSpawnError(index, exc) from exc
                    if isinstance(exc, OSError):  # making the pipe (fd exhaustion, pipe quota)
                        error = spawn_error(exc, request.program, request.cwd)
                        raise StageSpawnError(index, error) from exc
                    raise
                finally:
                    # The child has its copies: ours must go at once (see the module docstring).
                    _close(upstream)
                    _close(down_w)
                    upstream = down_r
                self.stages.append(session)
            if feed is not None and input_stream is not None:
                self._input = InputPump(input_stream, feed, encode or _as_bytes)
                feed = None
        except BaseException:
            _close(upstream)
            _close(feed)
            for started in self.stages:
                started.close_now()
            raise

    # -- progress -----------------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        """True once every stage has exited and been finished (reaped, fds closed)."""
        return all(stage.closed for stage in self.stages)

    async def step(self) -> bool:
        """Wait until a stage or the input can move, move it. True once every stage has ended.

        Raises:
            Exception: What the input iterable raised (the caller then finishes the pipeline).
        """
        live = [stage for stage in self.stages if not stage.closed]
        if not live:
            return True
        feeding = self._input is not None and not self._input.done
        outer = None if feeding or len(live) == 1 else self._outer_set()
        if len(live) == 1 and not feeding:
            await live[0].step()
        elif outer is not None:
            await self._step_ready(outer)
        else:
            await self._race(live, feeding)
        for stage in live:
            if stage.exited and not stage.closed:
                await self._end_stage(stage)
        return self.ended

    def _outer_set(self) -> select.epoll | None:
        """One epoll holding every stage's readiness set (Linux): a read then waits once and
        steps only the stages that are ready, instead of racing a task per stage (measured:
        the race cost about 150 µs of CPU per read more than one child's step)."""
        if self._outer is None:
            fds = [(stage.readiness_fd, stage) for stage in self.stages]
            if not hasattr(select, "epoll") or any(fd is None for fd, _ in fds):
                self._outer = False
            else:
                outer = select.epoll()
                for fd, stage in fds:
                    if fd is not None and not stage.closed:
                        outer.register(fd, select.EPOLLIN)
                        self._by_fd[fd] = stage
                self._outer = outer
        return self._outer if isinstance(self._outer, select.epoll) else None

    async def _step_ready(self, outer: select.epoll) -> None:
        events = outer.poll(0)
        if not events:
            await anyio.wait_readable(outer.fileno())
            events = outer.poll(0)
        for fd, _ in events:
            stage = self._by_fd.get(fd)
            if stage is not None and not stage.closed:
                await stage.step()  # its own set is ready: no wait, only a checkpoint

    def _forget(self, stage: ChildSession) -> None:
        """Take a stage that is ending out of the outer epoll."""
        for fd, known in list(self._by_fd.items()):
            if known is stage:
                del self._by_fd[fd]
                if isinstance(self._outer, select.epoll):
                    with contextlib.suppress(OSError, ValueError):
                        self._outer.unregister(fd)

    async def _race(self, live: list[ChildSession], feeding: bool) -> None:
        """Step whichever of ``live`` (and the input) can move first; cancel the others.

        Each racer has a scope of its own, so the winner can spare the input while it awaits an
        async iterable's next item (cancelling that would end the iterable): the race then
        ends when the item has come. The caller's cancellation reaches every racer.
        """
        scopes = [anyio.CancelScope() for _ in live]
        feed = anyio.CancelScope() if feeding else None
        async with anyio.create_task_group() as race:
            for stage, scope in zip(live, scopes, strict=True):
                race.start_soon(self._racer, stage.step, scope, scopes, feed)
            if feed is not None:
                assert self._input is not None
                step = functools.partial(self._input.step, lambda: not feed.cancel_called)
                race.start_soon(self._racer, step, feed, scopes, feed)
        self._raise_error()

    async def _racer(
        self,
        step: Callable[[], Awaitable[Any]],
        scope: anyio.CancelScope,
        scopes: list[anyio.CancelScope],
        feed: anyio.CancelScope | None,
    ) -> None:
        with scope:
            try:
                await step()
            except Exception as exc:  # raised by the caller once the race is over
                self._error = self._error or exc
        for other in scopes:
            other.cancel()
        # Never cancel an async iterable's __anext__ half-way: the race waits for the item.
        if feed is not None and not (self._input is not None and self._input.fetching):
            feed.cancel()

    def _raise_error(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error

    async def _end_stage(self, stage: ChildSession) -> None:
        """A stage's direct child has exited: read what it left, sweep its tree, reap it."""
        self._forget(stage)
        await stage.drain()
        await stage.finish()

    async def run_to_exit(self) -> None:
        """Move bytes until every stage has exited (each is finished as it exits).

        Raises:
            Exception: What the input iterable raised.
        """
        async with anyio.create_task_group() as tasks:
            feeding = anyio.CancelScope()
            left = [len(self.stages)]
            for stage in self.stages:
                tasks.start_soon(self._stage_to_end, stage, left, feeding, tasks.cancel_scope)
            if self._input is not None:
                tasks.start_soon(self._feed, feeding, tasks.cancel_scope)
        self._raise_error()

    async def _stage_to_end(
        self,
        stage: ChildSession,
        left: list[int],
        feeding: anyio.CancelScope,
        tasks: anyio.CancelScope,
    ) -> None:
        try:
            await stage.run_to_exit()
            await stage.finish()
        except Exception as exc:
            self._error = self._error or exc
            tasks.cancel()
        left[0] -= 1
        if not left[0]:  # every stage has ended: an input still being fetched is not wanted
            feeding.cancel()

    async def _feed(self, feeding: anyio.CancelScope, tasks: anyio.CancelScope) -> None:
        assert self._input is not None
        with feeding:
            try:
                await self._input.run()
            except Exception as exc:  # the iterable failed: stop the tree, then raise it
                self._error = self._error or exc
                tasks.cancel()

    async def drain(self) -> None:
        """Nothing to do: each stage was drained when it exited."""

    # -- ending -------------------------------------------------------------------------------

    async def finish(self) -> None:
        """Stop every stage that still runs, concurrently (one grace for all), reap, close.

        Shielded like each stage's own ``finish()``; whatever still cuts it short ends in each
        stage's synchronous last step, and anything left open is closed here.

        Raises:
            UnkillableChildError: A stage outlived SIGKILL (the first such one).
        """
        errors: list[UnkillableChildError] = []
        if isinstance(self._outer, select.epoll):
            self._by_fd.clear()
            self._outer.close()
            self._outer = False
        try:
            if self._input is not None:
                self._input.close()  # EOF for the first stage; stops the helper thread
            live = [stage for stage in self.stages if not stage.closed]
            if len(live) == 1:
                try:
                    await live[0].finish()
                except UnkillableChildError as exc:
                    errors.append(exc)
            elif live:
                with anyio.CancelScope(shield=True):
                    async with anyio.create_task_group() as stops:
                        for stage in live:
                            stops.start_soon(self._finish_stage, stage, errors)
        finally:
            for stage in self.stages:
                if not stage.closed:  # cut short (a native cancel): the last resort
                    stage.close_now()
        if errors:
            raise errors[0]

    @staticmethod
    async def _finish_stage(stage: ChildSession, errors: list[UnkillableChildError]) -> None:
        try:
            await stage.finish()
        except UnkillableChildError as exc:
            errors.append(exc)

    # -- outcome ------------------------------------------------------------------------------

    @property
    def returncodes(self) -> list[int | None]:
        """Each stage's exit code, once reaped."""
        return [stage.returncode for stage in self.stages]

    @property
    def returncode(self) -> int | None:
        """The pipefail code (see :func:`pipefail`), once every stage is reaped."""
        codes = self.returncodes
        if any(code is None for code in codes):
            return None
        return pipefail([code for code in codes if code is not None])

    @property
    def duration(self) -> float | None:
        """Seconds from the first spawn to the last reap, once every stage is reaped."""
        ends = [stage.ended_at for stage in self.stages]
        if not ends or any(end is None for end in ends):
            return None
        return max(end for end in ends if end is not None) - min(
            stage.started_at for stage in self.stages
        )
