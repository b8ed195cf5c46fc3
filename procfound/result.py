"""CompletedProcess: what a finished run returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from procfound.usage import ResourceUsage


@dataclass(slots=True, eq=True)
class CompletedProcess:
    """Result of a completed process.

    Attributes:
        args: The command as a list (a shell string is a one-element list).
        returncode: The exit code; negative (``-signal``) when a signal ended the child.
        stdout: Captured output: ``str`` with ``text=True`` (the default), ``bytes`` otherwise,
            empty when output was not captured.
        stderr: Captured error output, like ``stdout``.
        cwd: The working directory the command ran in, as a string, or None.
        env: Only the environment *overrides* the caller passed (None when none were given),
            never the merged environment, so logging a result cannot leak credentials.
        duration: Seconds from spawn to reap (monotonic clock).
        rusage: CPU time and peak memory of the child (:class:`ResourceUsage`), read when it
            was reaped.
        stdout_dropped: Bytes of stdout let go because of ``max_output`` (only the last
            ``max_output`` bytes are kept); 0 without a cap.
        stderr_dropped: The same for stderr.

    Example:
        >>> CompletedProcess(args=["true"], returncode=0, stdout="", stderr="").returncode
        0
    """

    args: list[str]
    returncode: int
    stdout: Any
    stderr: Any
    cwd: str | None = None
    env: dict[str, str] | None = field(default=None, repr=False)
    duration: float | None = field(default=None, compare=False)
    rusage: ResourceUsage | None = field(default=None, compare=False, repr=False)
    stdout_dropped: int = 0
    stderr_dropped: int = 0

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        # Env overrides are often credentials: show only their names.
        env = None if self.env is None else {key: "***" for key in self.env}
        return (
            f"CompletedProcess(args={self.args!r}, returncode={self.returncode!r}, "
            f"stdout={self.stdout!r}, stderr={self.stderr!r}, cwd={self.cwd!r}, env={env!r}, "
            f"duration={self.duration!r})"
        )
