"""What the CLI prints and the exit codes it reports.

It owns the exit codes (coreutils' and the shell's conventions), the ``--json`` result document,
the one-line reports of a command that could not start or was stopped on a timeout, and the
helpers that write to stderr and stdout safely once a terminal or a reader may be gone. It
imports only the public API.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from typing import Any, Final

from procfound import CompletedProcess, ProcessError, ProcessTimeoutError

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_INTERRUPTED",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "cannot_start",
    "exit_code",
    "first_line",
    "note",
    "print_json",
    "print_result_json",
    "report_stopped",
    "silence_stdout",
    "stages_json",
]

EXIT_USAGE: Final = 2
EXIT_TIMEOUT: Final = 124  # what coreutils timeout(1) exits with
EXIT_CANNOT_EXECUTE: Final = (
    126  # what a shell and timeout(1) exit with for a file they cannot exec
)
EXIT_CANNOT_RUN: Final = 127  # what a shell exits with for a command it cannot find
EXIT_INTERRUPTED: Final = 130
EXIT_BROKEN_PIPE: Final = 128 + signal.SIGPIPE  # what a tool killed by SIGPIPE reports


def exit_code(returncode: int) -> int:
    """A child's return code as an exit code: 128+N when signal N killed it."""
    return 128 - returncode if returncode < 0 else returncode


def first_line(text: str) -> str:
    return text.splitlines()[0] if text else text


def cannot_start(exc: ProcessError) -> int:
    """Report a command that could not be started; exit like a shell would."""
    print(f"procfound: {first_line(exc.message)}", file=sys.stderr)
    # Found but not executable (EACCES, a directory) is 126 for a shell and for timeout(1).
    return EXIT_CANNOT_EXECUTE if isinstance(exc.__cause__, PermissionError) else EXIT_CANNOT_RUN


def report_stopped(cmd: list[str] | str, exc: ProcessTimeoutError) -> int:
    """Report a timeout, the whole-call one or --idle-timeout's; exit like timeout(1)."""
    idle = exc.context.get("process.idle_timeout")
    if idle is None:
        why = f"timed out after {exc.timeout_seconds or 0.0:g}s"
    else:
        why = f"no output for {idle:g}s"
    shown = cmd if isinstance(cmd, str) else " ".join(cmd)
    print(f"procfound: {why}; killed the process tree of: {shown}", file=sys.stderr)
    return EXIT_TIMEOUT


def print_result_json(
    cmd: list[str] | list[list[str]], result: CompletedProcess[Any], started: float
) -> None:
    """``--json`` for a command that ran to its end (a pipeline's stages included)."""
    print_json(
        cmd,
        result.returncode,
        result.stdout,
        result.stderr,
        started,
        duration=result.duration,
        rusage=None if result.rusage is None else result.rusage.to_dict(),
        stages=stages_json(result.stages),
    )


def stages_json(stages: Any) -> list[dict[str, Any]] | None:
    """A pipeline's stages in the ``--json`` document (None for a single command)."""
    if stages is None:
        return None
    return [
        {"args": stage.args, "returncode": stage.returncode, "stderr": stage.stderr}
        for stage in stages
    ]


def print_json(
    cmd: list[str] | list[list[str]],
    returncode: int | None,
    stdout: str,
    stderr: str,
    started: float,
    *,
    timed_out: bool = False,
    duration: float | None = None,
    rusage: dict[str, float | int] | None = None,
    lines: list[dict[str, Any]] | None = None,
    stages: list[dict[str, Any]] | None = None,
) -> None:
    """The ``--json`` document: one line on stdout, flushed."""
    document: dict[str, Any] = {
        "args": cmd,
        "returncode": returncode,
        "stdout": stdout,
        "stderr": stderr,
        "duration": round(time.monotonic() - started if duration is None else duration, 6),
        "rusage": rusage,
        "timed_out": timed_out,
    }
    if lines is not None:
        document["lines"] = lines
    if stages is not None:  # a pipeline: args is the stages' argument lists
        document["stages"] = stages
    json.dump(document, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()  # a closed pipe must fail here, inside main, not in the flush at exit


def note(text: str) -> None:
    """A line on stderr that must not fail: after SIGHUP the terminal may be gone (EIO)."""
    with contextlib.suppress(OSError, ValueError):
        print(text, file=sys.stderr, flush=True)


def silence_stdout() -> None:
    """Point stdout at /dev/null once its reader has gone (a closed pipe)."""
    # The Python docs' recipe for SIGPIPE: so that the interpreter's own flush at exit does
    # not raise BrokenPipeError a second time.
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)
