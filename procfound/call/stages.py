"""The call plumbing of a pipeline: one invocation and spawn request per stage, the options a
pipeline refuses, the error of a stage that cannot start, and the stages' observers and usage.

Shared by ``run`` and the streams (through ``procfound.pipes`` and ``procfound.call.chunks``).
A pipeline is anything with the :class:`Stages` shape (``procfound.pipes.Pipeline`` is one), so
this layer never imports the public API above it.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Final, Protocol

from procfound.call.failures import Operation
from procfound.call.invocation import Invocation
from procfound.call.observe import CommandObserver
from procfound.call.options import to_input_bytes
from procfound.engine.pipeline import PipelineSession, StageSpawnError
from procfound.engine.spawn import SpawnError, SpawnRequest, Stdio
from procfound.errors import ProcessError, ValidationError, command_display
from procfound.usage import ResourceUsage

__all__ = [
    "StageObservers",
    "Stages",
    "check_pipeline_call",
    "encoder",
    "spawn_failure",
    "stage_calls",
    "stage_requests",
    "summed_usage",
]


class Stages(Protocol):
    """What the call layer needs of a pipeline: its stages' commands (``str()`` shows it)."""

    @property
    def commands(self) -> tuple[tuple[str, ...], ...]: ...

    @property
    def args(self) -> list[list[str]]: ...


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


def stage_calls(call: Invocation, pipeline: Stages | None) -> list[Invocation]:
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
    operation: Operation, call: Invocation, pipeline: Stages | None, exc: StageSpawnError
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
