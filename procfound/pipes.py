"""Pipelines without a shell: :func:`pipe` makes a :class:`Pipeline`, which ``run``,
``async_run`` and the stream functions accept wherever they accept a command list.

Each stage's stdout goes straight into the next stage's stdin through an OS pipe the engine
makes (engine/pipeline.py); the bytes between stages never pass through Python. ``input=``
feeds the first stage, the last stage's stdout is the output, and every stage's stderr is
captured on its own. One deadline, one stop policy and one set of keywords cover the whole
pipeline; the keywords that would have to mean something per stage are refused.

This module also runs a single command whose ``input=`` is produced while it runs (an iterable
or async iterable): the engine treats it as a pipeline of one stage.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, cast

import anyio

from procfound.call.captured import Undecodable, captured_output, decode_failure
from procfound.call.failures import ASYNC_RUN, Operation
from procfound.call.invocation import Invocation
from procfound.call.observe import CommandObserver
from procfound.call.options import check_max_bytes, command_list, to_input_bytes
from procfound.engine.buffers import OutputBuffer
from procfound.engine.echo import Echo
from procfound.engine.pipeline import PipelineSession, StageSpawnError, failing_stage, pipefail
from procfound.engine.session import Sink, UnkillableChildError
from procfound.engine.spawn import SpawnError, SpawnRequest, Stdio
from procfound.engine.watch import Watch, watch_until_exit
from procfound.errors import ProcessError, ValidationError, command_display
from procfound.result import CompletedProcess, StageResult
from procfound.usage import ResourceUsage

__all__ = ["Pipeline", "pipe"]


@dataclass(frozen=True, slots=True)
class Pipeline:
    """Two or more commands joined stdout to stdin, made by :func:`pipe`. Immutable.

    Attributes:
        commands: Each stage's command, in order, as a tuple of arguments.

    Example:
        >>> str(pipe(["seq", "3"], ["grep", "-v", "2"]))
        'seq 3 | grep -v 2'
    """

    commands: tuple[tuple[str, ...], ...]

    def __post_init__(self) -> None:
        # Built by hand (not by pipe()), a Pipeline is still checked before anything runs.
        commands = self.commands
        if (
            not isinstance(commands, tuple)
            or len(commands) < 2
            or not all(
                isinstance(command, tuple)
                and command
                and all(isinstance(arg, str) for arg in command)
                for command in commands
            )
        ):
            raise ValidationError(
                "Pipeline(commands=) must be a tuple of two or more non-empty tuples of str; "
                "make one with pipe(*commands)",
                code="INVALID_COMMAND_TYPE",
            )

    @property
    def args(self) -> list[list[str]]:
        """The stages' argument lists (what ``CompletedProcess.args`` holds for a pipeline)."""
        return [list(command) for command in self.commands]

    def __str__(self) -> str:
        return " | ".join(shlex.join(command) for command in self.commands)

    def __len__(self) -> int:
        return len(self.commands)

    def __iter__(self) -> Iterator[list[str]]:
        return iter(self.args)


def pipe(*commands: Sequence[str] | Pipeline) -> Pipeline:
    """Join commands into a pipeline, as the shell's ``a | b | c`` does, without a shell.

    Pass the result to :func:`run`, :func:`async_run`, :func:`stream`, :func:`async_stream`,
    :func:`stream_batches` or :func:`async_stream_batches`. A pipeline given as one of the
    commands is spliced in (``pipe(pipe(a, b), c)`` is ``pipe(a, b, c)``).

    Args:
        *commands: Two or more commands, each a non-empty list of str (a ``Path`` argument is
            converted), as ``run`` takes them.

    Returns:
        The :class:`Pipeline`.

    Raises:
        ValidationError: Fewer than two commands, a command given as a str (it would need a
            shell to be split), or a command ``run`` would refuse.

    Example:
        >>> from procfound import run
        >>> run(pipe(["seq", "100"], ["grep", "7"], ["wc", "-l"])).stdout.strip()
        '19'
    """
    stages: list[tuple[str, ...]] = []
    for index, command in enumerate(commands):
        if isinstance(command, Pipeline):
            stages.extend(command.commands)
            continue
        if isinstance(command, str | bytes):
            raise ValidationError(
                f"pipe(): command {index} is a str; give each command as a list of arguments "
                f"(shlex.split({shorten_repr(command)}) splits one as a shell would)",
                code="INVALID_COMMAND_TYPE",
            )
        stages.append(tuple(command_list(command, shell=False)))
    if len(stages) < 2:
        raise ValidationError(
            f"pipe() needs two or more commands, got {len(stages)}; run a single command "
            "without pipe()",
            code="INVALID_COMMAND_TYPE",
        )
    return Pipeline(tuple(stages))


def shorten_repr(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# The keywords that would have to mean something per stage: refused rather than guessed.
_PER_STAGE: Final = {
    "executable": "executable names one program",
    "process_title": "process_title names one program",
    "process_group": "each stage leads a process group of its own",
    "start_new_session": "each stage leads a process group of its own",
    "foreground": "a pipeline's stages run in groups of their own",
    "pass_fds": "pass_fds would reach every stage",
    "pty": "a terminal belongs to one command",
}


class StageObservers:
    """Each stage's observer (its own log records and span), told together when a clock of
    the pipeline ran out."""

    __slots__ = ("each",)

    def __init__(self, each: list[CommandObserver | None]) -> None:
        self.each = each

    def timed_out(self, seconds: float) -> None:
        for observer in self.each:
            if observer is not None:
                observer.timed_out(seconds)

    def idled(self, seconds: float) -> None:
        for observer in self.each:
            if observer is not None:
                observer.idled(seconds)


def check_pipeline_call(call: Invocation) -> None:
    """Refuse the options a pipeline cannot apply to the whole of it.

    Raises:
        ValidationError: Naming the option and what to do instead.
    """
    options = call.options
    for name, why in _PER_STAGE.items():
        value = getattr(options, name)
        if value is not None and value is not False and value != ():  # 0 is a group id
            raise ValidationError(
                f"{name}= cannot apply to a pipeline ({why}); run the stages as separate "
                "commands if one needs it",
                code="INVALID_ARGUMENT",
            )
    if call.target("stderr") not in (None, Stdio.PIPE):
        raise ValidationError(
            "stderr= cannot apply to a pipeline: every stage's stderr is captured on its own "
            "(result.stages[i].stderr)",
            code="INVALID_ARGUMENT",
        )


def stage_calls(call: Invocation, pipeline: Pipeline | None) -> list[Invocation]:
    """One invocation per stage: the call's, with each stage's command."""
    if pipeline is None:
        return [call]
    return [replace(call, command=list(c), argv=list(c)) for c in pipeline.commands]


def stage_requests(
    calls: Sequence[Invocation], *, stdin: Stdio, stdout: Stdio, stderr: Stdio
) -> list[SpawnRequest]:
    """The stages' spawn requests (the pipes between them are made by the engine)."""
    return [each.request(stdin=stdin, stdout=stdout, stderr=stderr) for each in calls]


def encoder(call: Invocation) -> Any:
    """How one item of a streamed ``input=`` becomes bytes (str: the call's encoding)."""
    encoding = call.options.encoding

    def encode(item: object) -> bytes:
        if isinstance(item, str | bytes | bytearray | memoryview):
            data = to_input_bytes(item, encoding)
            assert data is not None
            return data
        raise ValidationError(
            f"each item of input= must be bytes or str, not {type(item).__name__}",
            code="INVALID_ARGUMENT",
        )

    return encode


def spawn_failure(
    operation: Operation, call: Invocation, pipeline: Pipeline | None, exc: StageSpawnError
) -> ProcessError:
    """The error of a stage that could not start, naming the stage and its program."""
    if pipeline is None:
        return operation.spawn_failed(call.shown, exc.error)
    stage = pipeline.args[exc.index]
    error = SpawnError(
        f"stages[{exc.index}] ({command_display(shlex.join(stage))}): {exc.error.reason}",
        errno_=exc.error.errno,
        filename=exc.error.filename,
    )
    return operation.spawn_failed(str(pipeline), error)


def summed_usage(session: PipelineSession) -> ResourceUsage | None:
    """The stages' CPU time and peak memory, added up (they ran at the same time)."""
    usages = [ResourceUsage.from_rusage(s.rusage) for s in session.stages if s.rusage is not None]
    if not usages:
        return None
    return ResourceUsage(
        user_time=sum(u.user_time for u in usages),
        system_time=sum(u.system_time for u in usages),
        max_rss=sum(u.max_rss for u in usages),
    )


async def run_pipeline(
    call: Invocation,
    pipeline: Pipeline | None,
    *,
    capture_output: bool,
    check: bool,
    max_output: int | None,
) -> CompletedProcess[Any]:
    """``async_run`` for a :class:`Pipeline`, or for one command with a streamed ``input=``.

    The call was validated by ``async_run`` (with the first stage's command).
    """
    if pipeline is not None:
        check_pipeline_call(call)
    cap = check_max_bytes(max_output, "max_output")
    calls = stage_calls(call, pipeline)
    piped = Stdio.PIPE if capture_output else Stdio.INHERIT
    fed = call.input is not None or call.input_stream is not None
    requests = stage_requests(
        calls, stdin=Stdio.PIPE if fed else Stdio.DEVNULL, stdout=piped, stderr=piped
    )
    idle = call.options.idle_timeout
    if idle is not None and not capture_output:
        raise ValidationError(
            "idle_timeout watches the output procfound reads; with capture_output=False it "
            "reads none (use timeout=, or capture the output)",
            code="INVALID_ARGUMENT",
        )
    out = OutputBuffer(cap)
    errs = [OutputBuffer(cap) for _ in calls]
    echo = call.options.print_output
    sinks: list[Sink] = [Echo(err) if echo else err for err in errs]
    policy = call.stop_policy()
    observers = StageObservers([each.observer(policy) for each in calls])
    try:
        session = PipelineSession(
            requests,
            policy,
            stdout=Echo(out) if echo else out,
            stderrs=sinks,
            input=call.input,
            input_stream=call.input_stream,
            encode=encoder(call),
            observers=observers.each,
        )
    except StageSpawnError as exc:
        raise spawn_failure(ASYNC_RUN, call, pipeline, exc) from exc.error.os_error
    timed_out = idled = False
    try:
        if idle is not None:  # (each wait bounded by both clocks: no task per stage then)
            read = (out, *errs)
            watch = Watch(call.timeout, idle, lambda: sum(b.size + b.dropped for b in read))
            ending = await watch_until_exit(cast(Any, session), watch)
            timed_out, idled = ending == "timeout", ending == "idle"
        elif call.timeout is None:
            await session.run_to_exit()
        else:
            with anyio.move_on_after(call.timeout) as scope:
                await session.run_to_exit()
            timed_out = scope.cancelled_caught
        if idled:
            assert idle is not None
            observers.idled(idle)
        elif timed_out:
            assert call.timeout is not None
            observers.timed_out(call.timeout)
    finally:
        try:
            await session.finish()
        except UnkillableChildError as exc:
            raise ASYNC_RUN.unkillable(call.shown, exc) from exc

    codes = [code for code in session.returncodes if code is not None]
    assert len(codes) == len(calls)  # finish() reaped every stage, or raised
    # run()'s decoding, so errors="strict" fails the same way (the bytes stay on .result).
    failed: Undecodable | None = None
    try:  # (before the dropped counts are read: cutting to max_output counts the drop)
        stdout = captured_output(out, call, "stdout")
        stderrs = [captured_output(err, call, "stderr") for err in errs]
    except Undecodable as exc:
        failed, stdout, stderrs = exc, out.getvalue(), [err.getvalue() for err in errs]
    dropped = (out.dropped, sum(err.dropped for err in errs))
    shown = call.shown if pipeline is None else str(pipeline)
    result: CompletedProcess[Any] = CompletedProcess(
        args=call.args if pipeline is None else pipeline.args,
        returncode=pipefail(codes),
        stdout=stdout,
        stderr=stderrs[0] if pipeline is None else _join(stderrs),
        cwd=call.cwd,
        env=call.env,
        duration=session.duration,
        rusage=summed_usage(session),
        stdout_dropped=dropped[0],
        stderr_dropped=dropped[1],
        stages=None
        if pipeline is None
        else tuple(
            StageResult(args, code, err)
            for args, code, err in zip(pipeline.args, codes, stderrs, strict=True)
        ),
    )
    if failed is not None:
        shown_call = call if pipeline is None else replace(call, command=shown)
        raise decode_failure(failed, shown_call, result, timed_out or idled) from failed.error
    failing = failing_stage(codes, call.options.ok_codes)
    if idled:
        assert idle is not None
        error: ProcessError = ASYNC_RUN.idle_timed_out(
            shown, idle, result.stdout, result.stderr, result.returncode, dropped
        )
    elif timed_out:
        assert call.timeout is not None
        error = ASYNC_RUN.timed_out(
            shown, call.timeout, result.stdout, result.stderr, result.returncode, dropped
        )
    elif check and failing is not None and pipeline is not None:
        error = ASYNC_RUN.stage_failed(
            shown,
            failing,
            shlex.join(pipeline.args[failing]),
            codes[failing],
            result.stdout,
            stderrs[failing],
            (out.dropped, errs[failing].dropped),
        )
    elif check and failing is not None:
        error = ASYNC_RUN.exit_failed(shown, codes[0], result.stdout, result.stderr, dropped)
    else:
        return result
    error.duration, error.rusage, error.result = result.duration, result.rusage, result
    raise error


def _join(parts: list[Any]) -> Any:
    return b"".join(parts) if parts and isinstance(parts[0], bytes) else "".join(parts)
