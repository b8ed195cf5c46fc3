"""CompletedProcess: what a finished run returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

from procfound.errors import ValidationError
from procfound.usage import ResourceUsage

__all__ = ["CompletedProcess", "StageResult"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StageResult(Generic[T]):
    """How one stage of a pipeline ended (``CompletedProcess.stages``).

    Attributes:
        args: The stage's command as a list.
        returncode: Its exit code; negative (``-signal``) when a signal ended it.
        stderr: Its own captured error output (``str`` or ``bytes``, like the result's).

    Example:
        >>> StageResult(["grep", "x"], 1, "").returncode
        1
    """

    args: list[str]
    returncode: int
    stderr: T


@dataclass(slots=True, eq=True)
class CompletedProcess(Generic[T]):
    """Result of a completed process.

    Attributes:
        args: The command as a list (a shell string is a one-element list); for a pipeline,
            the list of its stages' argument lists.
        returncode: The exit code; negative (``-signal``) when a signal ended the child.
        stdout: Captured output: ``str`` with ``text=True`` (the default; ``\\r\\n`` and a
            lone ``\\r`` read as ``\\n``), ``bytes`` otherwise; empty (``""`` / ``b""``) when it
            was not captured (``capture_output=False``, or ``stdout=`` another target).
        stderr: Captured error output, like ``stdout``.
        cwd: The working directory the command ran in, as a string, or None.
        env: Only the environment *overrides* the caller passed (None when none were given;
            a None value is a variable the caller removed), never the merged environment, so
            logging a result cannot leak credentials.
        duration: Seconds from spawn to reap (monotonic clock).
        rusage: CPU time and peak memory of the child (:class:`ResourceUsage`), read when it
            was reaped.
        stdout_dropped: Bytes of stdout let go because of ``max_output`` (only the last
            ``max_output`` bytes are kept); 0 without a cap.
        stderr_dropped: The same for stderr.
        stages: For a pipeline (:func:`procfound.pipe`), every stage's
            :class:`StageResult` in order; ``returncode`` is then the pipefail code, ``stderr``
            every stage's stderr in stage order, ``duration`` the whole pipeline's and
            ``rusage`` the stages' sum. None for a single command.

    Example:
        >>> CompletedProcess(args=["true"], returncode=0, stdout="", stderr="").returncode
        0
    """

    args: list[Any]
    returncode: int
    stdout: T
    stderr: T
    cwd: str | None = None
    env: dict[str, str | None] | None = field(default=None, repr=False)
    duration: float | None = field(default=None, compare=False)
    rusage: ResourceUsage | None = field(default=None, compare=False, repr=False)
    stdout_dropped: int = 0
    stderr_dropped: int = 0
    stages: tuple[StageResult[T], ...] | None = field(default=None, repr=False)

    __hash__ = None  # type: ignore[assignment]

    def check_returncode(self) -> None:
        """Raise :class:`~procfound.errors.ProcessError` if the command exited non-zero.

        For a pipeline, the error names the failing stage (the rightmost that failed) and
        carries its stderr.

        Raises:
            ProcessError: With this result's return code and output (``.result`` is this).
            ValidationError: If ``returncode`` is not an int, or ``stages`` not a tuple of
                :class:`StageResult` (a result built by hand).

        Example:
            >>> done = CompletedProcess(args=["false"], returncode=1, stdout="", stderr="")
            >>> done.check_returncode()
            Traceback (most recent call last):
            ...
            procfound.errors.ProcessError: Command failed with exit code 1: false
            Command: false
            Return code: 1
        """
        returncode = self.returncode
        if isinstance(returncode, bool) or not isinstance(returncode, int):
            raise ValidationError(
                f"returncode must be an int, not {type(returncode).__name__}",
                code="INVALID_ARGUMENT",
            )
        if returncode == 0:
            return
        from procfound.call.failures import ASYNC_RUN

        if self.stages is not None:  # a pipeline: name the failing stage, with its stderr
            self._stage_failed()

        args = self.args
        # Built by hand, a result may hold anything: it is shown, never re-checked.
        shown = " ".join(map(str, args)) if isinstance(args, list | tuple) else str(args)
        error = ASYNC_RUN.sync_names().exit_failed(
            shown,
            self.returncode,
            cast(Any, self.stdout),
            cast(Any, self.stderr),
            (self.stdout_dropped, self.stderr_dropped),
        )
        error.duration, error.rusage, error.result = self.duration, self.rusage, self
        raise error

    def _stage_failed(self) -> None:
        import shlex

        from procfound.call.failures import ASYNC_RUN
        from procfound.engine.pipeline import failing_stage

        stages = self.stages
        if not isinstance(stages, tuple | list) or not all(
            isinstance(stage, StageResult)
            and isinstance(stage.returncode, int)
            and not isinstance(stage.returncode, bool)
            and isinstance(stage.args, list | tuple)
            for stage in stages
        ):
            raise ValidationError(
                "stages must be a tuple of StageResult with int return codes (a result built "
                "by hand?)",
                code="INVALID_ARGUMENT",
            )
        index = failing_stage([stage.returncode for stage in stages], frozenset({0}))
        if index is None:
            return
        stage = stages[index]
        error = ASYNC_RUN.sync_names().stage_failed(
            " | ".join(shlex.join(map(str, each.args)) for each in stages),
            index,
            shlex.join(map(str, stage.args)),
            stage.returncode,
            cast(Any, self.stdout),
            cast(Any, stage.stderr),
        )
        error.duration, error.rusage, error.result = self.duration, self.rusage, self
        raise error

    def __repr__(self) -> str:
        # Env overrides are often credentials: show only their names.
        env: object = self.env
        if isinstance(env, Mapping):
            env = dict.fromkeys(env, "***")
        elif env is not None:
            env = "***"
        return (
            f"CompletedProcess(args={self.args!r}, returncode={self.returncode!r}, "
            f"stdout={self.stdout!r}, stderr={self.stderr!r}, cwd={self.cwd!r}, env={env!r}, "
            f"duration={self.duration!r})"
        )
