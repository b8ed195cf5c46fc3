"""``procfound run``: run a command or a ``--pipe`` pipeline and exit with its code.

It owns the choice of the library call for the options given (``stream`` to show lines as
they come, ``run`` for ``--json``, ``--foreground`` and ``--pty`` (whose output is passed
through as it comes, byte for byte), a tagged ``stream`` for ``--json
--tag``), the pipeline syntax (``--pipe``, ``---pipe``), and ``--tag``/``--timestamps``'
line prefixes. A stop signal raises in the library's sync call, which stops the tree before
the exception goes on to ``main()``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Final

from procfound import Line, Pipeline, ProcessError, ProcessTimeoutError, pipe, run, stream
from procfound.cli.options import containment
from procfound.cli.output import (
    EXIT_USAGE,
    cannot_start,
    exit_code,
    print_json,
    print_result_json,
    report_stopped,
    stages_json,
)
from procfound.cli.signals import StopSignals

__all__ = ["PIPE_WORD", "run_command"]

# The word that separates the stages of a pipeline in `procfound run`; a word of one more dash
# (`---pipe`) passes the literal `--pipe` to a command (see _pipeline_stages).
PIPE_WORD: Final = "--pipe"


def _pipeline_stages(words: list[str]) -> list[list[str]]:
    """Split a command line at each ``--pipe`` word; ``---pipe`` stands for a literal
    ``--pipe`` (each word of three or more dashes and ``pipe`` loses one dash)."""
    stages: list[list[str]] = [[]]
    for word in words:
        if word == PIPE_WORD:
            stages.append([])
        elif word.lstrip("-") == "pipe" and word.startswith("---"):
            stages[-1].append(word[1:])
        else:
            stages[-1].append(word)
    return stages


def _run_pipeline(stages: list[list[str]], args: argparse.Namespace) -> int:
    """``procfound run CMD1 --pipe CMD2 ...``: the stages' output comes through as it is."""
    if args.pty:
        print(
            "procfound run: --pty gives one command a terminal; a pipeline's stages cannot "
            "share it",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if any(not stage for stage in stages):
        print(
            "procfound run: an empty command next to --pipe (CMD1 --pipe CMD2 ...; write "
            "---pipe for a literal --pipe)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.tag or args.timestamps or (args.idle_timeout is not None and not args.json):
        print(
            "procfound run: a pipeline's output comes through as it is, not line by line: "
            "--tag and --timestamps cannot apply, and --idle-timeout needs --json",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return _run_to_end(pipe(*stages), args, dict(args.env) or None)


def _run_to_end(
    runnable: list[str] | Pipeline, args: argparse.Namespace, env: dict[str, str] | None
) -> int:
    """``run`` to the end (a pipeline, ``--json``, ``--foreground``): print the ``--json``
    document if asked, report a timeout, and return the exit code."""
    if isinstance(runnable, Pipeline):
        words: list[str] | list[list[str]] = runnable.args
        shown: list[str] | str = str(runnable)
    else:
        words = shown = runnable
    started = time.monotonic()
    try:
        result = run(
            runnable,
            capture_output=args.json,
            check=False,
            foreground=args.foreground,
            **_terminal_keywords(args),
            **_call_keywords(args, env),
        )
    except ProcessTimeoutError as exc:
        if args.json:
            partial = exc.result  # what ran before the timeout: a pipeline's stages
            print_json(
                words,
                None,
                exc.stdout or "",
                exc.stderr or "",
                started,
                timed_out=True,
                stages=None if partial is None else stages_json(partial.stages),
            )
        return report_stopped(shown, exc)
    except ProcessError as exc:
        return cannot_start(exc)
    if args.json:
        print_result_json(words, result, started)
    return exit_code(result.returncode)


def run_command(args: argparse.Namespace, signals: StopSignals) -> int:
    """``procfound run``: run the command (or pipeline) and return the exit code to exit with."""
    del signals  # a stop signal raises in the sync call (run, the stream's read), which stops
    # the tree before the exception goes on to main(): there is nothing to add here
    cmd: list[str] = args.cmd
    if not cmd:
        print("procfound run: no command given (procfound run -- CMD [ARGS...])", file=sys.stderr)
        return EXIT_USAGE
    if not args.no_pipe:
        stages = _pipeline_stages(cmd)
        if len(stages) > 1:
            return _run_pipeline(stages, args)
        cmd = args.cmd = stages[0]
    env = dict(args.env) or None
    tagged = args.tag or args.timestamps
    if args.foreground and (tagged or args.idle_timeout is not None):
        print(
            "procfound run: --foreground leaves the output on the terminal; --tag, --timestamps "
            "and --idle-timeout need to read it",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.pty and (tagged or args.foreground):
        print(
            "procfound run: --pty shows the terminal's output as it comes, byte for byte, and "
            "gives the command a terminal of its own: --tag, --timestamps and --foreground "
            "cannot apply",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.json and args.tag:
        return _json_tagged_command(cmd, args, env)
    if args.pty:
        return _run_to_end(cmd, args, env)
    if not args.json and not args.foreground:
        return _stream_command(cmd, args, env)
    return _run_to_end(cmd, args, env)


def _call_keywords(args: argparse.Namespace, env: dict[str, str] | None) -> dict[str, Any]:
    """The keywords every call of ``run`` passes to the library: where, how long, how to stop."""
    observing = {} if args.idle_timeout is None else {"idle_timeout": args.idle_timeout}
    return {"cwd": args.cwd, "env": env, "timeout": args.timeout, **observing, **containment(args)}


def _terminal_keywords(args: argparse.Namespace) -> dict[str, Any]:
    """``--pty``: a terminal the size of ours when our stdout is one (else 24x80)."""
    if not args.pty:
        return {}
    try:
        columns, lines = os.get_terminal_size(sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a terminal, or no fileno (captured)
        return {"pty": True}
    if lines < 1 or columns < 1:  # a terminal that does not know its size
        return {"pty": True}
    return {"pty": True, "pty_size": (min(lines, 65535), min(columns, 65535))}


def _line_prefix(line: Line, args: argparse.Namespace) -> str:
    """``--timestamps`` and ``--tag``'s prefix of one tagged line."""
    stamp = f"[{line.time:9.3f}] " if args.timestamps else ""
    tag = ("out│ " if line.stream == "stdout" else "err│ ") if args.tag else ""
    return stamp + tag


def _stream_command(cmd: list[str], args: argparse.Namespace, env: dict[str, str] | None) -> int:
    # Lines are printed as the child writes them (stderr merged in the child's order; with --tag
    # or --timestamps both streams are read apart and printed in the order they arrived).
    # Leaving the `with` early (a closed stdout, Ctrl-C) kills the child's tree before it returns.
    tagged = args.tag or args.timestamps
    try:
        with stream(
            cmd, stream_stderr=not tagged, tagged=tagged, **_call_keywords(args, env)
        ) as lines:
            if tagged:
                for line in lines:
                    print(_line_prefix(line, args) + line.text, flush=True)
            else:
                for line in lines:
                    print(line, flush=True)
    except ProcessTimeoutError as exc:
        return report_stopped(cmd, exc)
    except ProcessError as exc:
        if exc.return_code is None:
            return cannot_start(exc)
        return exit_code(exc.return_code)
    return 0


def _json_tagged_command(
    cmd: list[str], args: argparse.Namespace, env: dict[str, str] | None
) -> int:
    """``--json --tag``: the result document with every line, tagged, in arrival order."""
    started = time.monotonic()
    lines: list[Line] = []
    returncode: int | None = 0
    error: ProcessError | None = None
    try:
        with stream(cmd, tagged=True, **_call_keywords(args, env)) as tagged:
            lines.extend(tagged)
    except ProcessError as exc:
        if exc.return_code is None and not isinstance(exc, ProcessTimeoutError):
            return cannot_start(exc)
        error, returncode = exc, exc.return_code
    timed_out = isinstance(error, ProcessTimeoutError)
    print_json(
        cmd,
        None if timed_out else returncode,
        "".join(f"{line.text}\n" for line in lines if line.stream == "stdout"),
        "".join(f"{line.text}\n" for line in lines if line.stream == "stderr"),
        started,
        timed_out=timed_out,
        lines=[line._asdict() for line in lines],
    )
    if isinstance(error, ProcessTimeoutError):
        return report_stopped(cmd, error)
    return 0 if returncode is None else exit_code(returncode)
