"""The ``procfound`` command line: run a real command with procfound's engine.

It uses only the public API, so what it does is what a library user gets (and the probes'
argument checks, so that a bad ``--port`` or ``--http`` is a usage error before anything runs).
:func:`main` also owns the process's signals, which the library leaves alone: SIGINT, SIGTERM,
SIGHUP and SIGQUIT stop the command's tree as Ctrl-C does and exit 128+N (``_StopSignals``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any, Final, NoReturn, TypeVar, final

import anyio
import idna

from procfound import (
    CompletedProcess,
    Line,
    ManagedProcess,
    PlatformError,
    ProcessError,
    ProcessTimeoutError,
    StateError,
    StopPolicy,
    ValidationError,
    pipe,
    run,
    stop_policy,
    stream,
    wait_for_process_output,
)
from procfound.errors import shorten
from procfound.services.probes import HttpProbe, path_probe, port_probe, refuse_answered_sync

__all__ = ["main"]

T = TypeVar("T")

EXIT_USAGE: Final = 2
EXIT_TIMEOUT: Final = 124  # what coreutils timeout(1) exits with
EXIT_CANNOT_EXECUTE: Final = (
    126  # what a shell and timeout(1) exit with for a file they cannot exec
)
EXIT_CANNOT_RUN: Final = 127  # what a shell exits with for a command it cannot find
EXIT_INTERRUPTED: Final = 130
EXIT_BROKEN_PIPE: Final = 128 + signal.SIGPIPE  # what a tool killed by SIGPIPE reports
# The signals that stop procfound the way Ctrl-C does: coreutils timeout(1), CI runners and
# systemd send SIGTERM, a closed terminal SIGHUP, Ctrl-\ SIGQUIT. Each exits 128+N.
STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
# The word that separates the stages of a pipeline in `procfound run`; a word of one more dash
# (`---pipe`) passes the literal `--pipe` to a command (see _pipeline_stages).
PIPE_WORD: Final = "--pipe"

# After `read_line_async` returns "", how long to wait for one more character: "" is either a
# blank line or the end of the output, and only a character read tells them apart.
_BLANK_OR_END_PEEK: Final = 0.05
# ManagedProcess has no public wait for exit: once the output has ended, poll at this pace.
_EXIT_POLL: Final = 0.2
# When the command exits before it is ready, this many of its last stdout lines are shown.
_EXIT_STDOUT_LINES: Final = 20
# A stop signal the main thread has not handled this long after it arrived is sent to it again.
_FORWARD_AFTER: Final = 0.02

_DESCRIPTION: Final = """\
Run subprocesses that never hang and never leave a process behind.

examples:
  procfound run -- make test
  procfound run --timeout 5 -- sh -c 'sleep 60 & sleep 60'   # exits 124 after 5 s, tree killed
  procfound run --json --env GREETING=hi -- sh -c 'echo "$GREETING"'
  procfound run --timeout 5 -- seq 100 --pipe grep 7 --pipe wc -l   # a pipeline, no shell

signals:
  Ctrl-C, SIGTERM, SIGHUP and SIGQUIT stop the command's whole tree (--stop-signal, then
  SIGKILL after the grace) and procfound exits 128+N: 130, 143, 129, 131 (Ctrl-C ends
  wait-for --keep with 0). A second signal while it stops is ignored: the stop always
  finishes, within the grace.
"""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one short line on stderr and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(
            EXIT_USAGE, f"{self.prog}: {_one_short_line(message)} (see '{self.prog} --help')\n"
        )


# A value quoted in a message (repr) that is too long to show whole.
_LONG_QUOTED: Final = re.compile(r"'(?:[^'\\]|\\.){80,}'" + r'|"(?:[^"\\]|\\.){80,}"')


def _one_short_line(message: str) -> str:
    """A usage error as one line of reasonable length.

    argparse quotes the value as it was given ("invalid choice: '...'"), which may be a
    megabyte of argv: a long quoted value is cut, and then the whole line.
    """
    message = " ".join(message.splitlines())
    message = _LONG_QUOTED.sub(lambda found: shorten(found.group(0), 60), message)
    return shorten(message, 300)


def _seconds(text: str) -> float:
    """A duration option: a number of seconds, 0 or more; ``inf`` means no limit."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if math.isnan(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


def _finite_seconds(text: str) -> float:
    """A duration that must end (a grace period that never ends would never escalate)."""
    value = _seconds(text)
    if math.isinf(value):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds, got {text!r}")
    return value


def _add_containment_options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """``--contain``, ``--stop-signal``, ``--kill-grace``: what is stopped, and how."""
    return [
        parser.add_argument(
            "--contain",
            metavar="{group,tree,cgroup}",
            help=(
                "what is stopped when the command ends: its process group, its whole tree "
                "(default: also descendants that left the group), or the tree by cgroup only"
            ),
        ),
        parser.add_argument(
            "--stop-signal",
            default="TERM",
            metavar="SIG",
            help=(
                "the signal sent first when the command is stopped: a name (TERM, INT, "
                "RTMIN+2) or a number (default TERM)"
            ),
        ),
        parser.add_argument(
            "--kill-grace",
            type=_finite_seconds,
            metavar="S",
            help="seconds from the stop signal to SIGKILL (default 0.5; 0: at once)",
        ),
    ]


def _stop_policy(args: argparse.Namespace) -> StopPolicy:
    """The command's stop policy, checked whole by the library's own :func:`stop_policy` (one
    rule for the API and the CLI). The CLI's default level is the whole tree, unless
    PROCFOUND_CONTAIN says otherwise."""
    return stop_policy(
        args.stop_signal,
        StopPolicy().kill_grace if args.kill_grace is None else args.kill_grace,
        args.contain,
        default_contain="tree",
    )


def _containment(args: argparse.Namespace) -> dict[str, Any]:
    """The stop policy as the API's keywords."""
    policy: StopPolicy = args.policy
    return {
        "stop_signal": policy.stop_signal,
        "kill_grace": policy.kill_grace,
        "contain": policy.contain,
    }


def _port_option(text: str) -> tuple[str, int]:
    """``--port``: ``PORT`` (on 127.0.0.1), ``HOST:PORT`` or ``[IPV6]:PORT``."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host = "127.0.0.1"
    elif ":" in host or "[" in host or "]" in host:
        # Only an IPv6 address has a ":" in it, and it must be in brackets, whole: "[::1"
        # or "[::1]x:80" is not a host with a port.
        inner = host[1:-1]
        if not (host.startswith("[") and host.endswith("]")) or "[" in inner or "]" in inner:
            raise argparse.ArgumentTypeError(
                f"write an IPv6 host in brackets ([::1]:PORT), got {text!r}"
            )
    # Checked here rather than by port_probe, which takes an int: ASCII digits only (int()
    # takes "٣" and " 8"), and no more than five (int() refuses thousands of them).
    number = int(port) if port.isascii() and port.isdigit() and len(port) <= 5 else 0
    if not 1 <= number <= 65535:
        within = f" (in {text!r})" if sep else ""
        raise argparse.ArgumentTypeError(f"expected a port from 1 to 65535, got {port!r}{within}")
    try:
        probe = port_probe(number, host)
        _check_resolvable(probe.host)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(f"{exc.message} (in {text!r})") from None
    return probe.host, probe.port


def _check_resolvable(host: str) -> None:
    """A host the resolver can be asked about: ASCII, or a valid IDNA 2008 name.

    AnyIO encodes a non-ASCII host name this way before it looks it up; doing it here makes a
    name it cannot encode ("😀", an undecodable byte from argv) a usage error before the
    command starts, instead of an error once it runs.
    """
    if host.isascii():
        return
    try:
        idna.encode(host, uts46=True)
    except UnicodeError as exc:  # idna.IDNAError is one
        raise ValidationError(
            f"host {host!r} is not a valid host name: {exc}", code="INVALID_ARGUMENT"
        ) from None


def _http_option(text: str) -> str:
    """``--http``: an http:// URL (checked here, so a bad one is a usage error)."""
    try:
        _check_resolvable(HttpProbe(text).host)  # the message never shows the URL: a password
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None
    return text


def _path_option(text: str) -> str:
    try:
        path_probe(text)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None
    return text


def _env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _directory(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("expected a directory, got an empty string")
    return text


@final
@dataclass(frozen=True)
class _Grammar:
    """The parser, each command's own parser, and each command's options that take a value."""

    parser: argparse.ArgumentParser
    commands: dict[str, argparse.ArgumentParser]
    value_options: dict[str, frozenset[str]]


def _build_grammar() -> _Grammar:
    parser = _Parser(
        prog="procfound",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run_parser = commands.add_parser(
        "run",
        help="run a command, show its output live, exit with its code",
        usage=(
            "procfound run [-h] [--timeout S] [--idle-timeout S] [--cwd DIR] [--env K=V] [--json] "
            "[--tag] [--timestamps] [--foreground] [--contain LEVEL] [--stop-signal SIG] "
            "[--kill-grace S] [--no-pipe] [--] CMD [ARGS...] [--pipe CMD [ARGS...]]..."
        ),
        description=(
            "Run CMD in its own process group, show its output line by line as it comes (stderr "
            "merged into stdout in the child's order; --json keeps them apart), and exit with its "
            "exit code (128+N when signal N killed it). On --timeout the whole process tree is "
            "killed and procfound exits 124, like timeout(1); on Ctrl-C, SIGTERM, SIGHUP or "
            "SIGQUIT it is stopped the same way and procfound exits 128+N. The first word that "
            "is not an option starts CMD: everything after it is CMD's, '--' included. A word "
            "'--pipe' between commands makes a pipeline without a shell (CMD1 --pipe CMD2 ...): "
            "each stage's stdout goes to the next one's stdin, the last one's stdout and every "
            "stage's stderr come through as they are, the exit code follows pipefail (the "
            "rightmost failing stage's; SIGPIPE upstream is not a failure) and --json shows "
            "every stage. Write '---pipe' to pass a literal '--pipe' to a command, or use "
            "--no-pipe."
        ),
        allow_abbrev=False,
    )
    run_options = [
        run_parser.add_argument(
            "--timeout", type=_seconds, metavar="S", help="seconds before the tree is killed"
        ),
        run_parser.add_argument(
            "--cwd", type=_directory, metavar="DIR", help="working directory for the command"
        ),
        run_parser.add_argument(
            "--env",
            type=_env_pair,
            action="append",
            default=[],
            metavar="K=V",
            help="set a variable (repeatable)",
        ),
        run_parser.add_argument(
            "--json",
            action="store_true",
            help="capture the output and print the result as one JSON document",
        ),
        run_parser.add_argument(
            "--foreground",
            action="store_true",
            help=(
                "let the command use the terminal (stdin, job control); only it is killed on "
                "timeout"
            ),
        ),
        run_parser.add_argument(
            "--idle-timeout",
            type=_seconds,
            metavar="S",
            help="kill the tree when the command writes nothing for S seconds (exit 124)",
        ),
        run_parser.add_argument(
            "--tag",
            action="store_true",
            help="prefix each line with its stream (out│ or err│); with --json, list the lines",
        ),
        run_parser.add_argument(
            "--timestamps",
            action="store_true",
            help="prefix each line with the seconds since the command started",
        ),
        run_parser.add_argument(
            "--no-pipe",
            action="store_true",
            help="treat the word --pipe as the command's own argument (no pipeline)",
        ),
        *_add_containment_options(run_parser),
    ]
    wait_parser = commands.add_parser(
        "wait-for",
        help="start a command and wait until it is ready (output PARTs, a port, HTTP, a path)",
        usage=(
            "procfound wait-for [-h] [PART ...] [--port P] [--http URL] [--path P] [--timeout S] "
            "[--keep] [--grace S] -- CMD"
        ),
        description=(
            "Start CMD and wait until it is ready: every PART has appeared in its output (that "
            "output is printed, up to the line where the last PART appeared), then --port accepts "
            "a TCP connection, --http answers a GET with 2xx or 3xx, and --path exists; one "
            "--timeout for all. Give at least one PART or probe. Exits 0 when ready, 1 with a "
            "message if CMD ends first, 124 on --timeout; either way CMD is stopped. With --keep, "
            "stay attached and relay its output until Ctrl-C (exit 0) or SIGTERM, SIGHUP, SIGQUIT "
            "(exit 128+N), then stop it gracefully (SIGTERM to its process group, SIGKILL after "
            "--grace seconds). Everything after the first '--' is CMD's."
        ),
        allow_abbrev=False,
    )
    wait_options = [
        wait_parser.add_argument("parts", nargs="*", metavar="PART", help="text that must appear"),
        wait_parser.add_argument(
            "--port",
            type=_port_option,
            metavar="P",
            help="a port that must accept a TCP connection: PORT (on 127.0.0.1), HOST:PORT, "
            "[::1]:PORT",
        ),
        wait_parser.add_argument(
            "--http",
            type=_http_option,
            metavar="URL",
            help="an http:// URL that must answer 2xx/3xx",
        ),
        wait_parser.add_argument(
            "--path",
            type=_path_option,
            metavar="P",
            help="a path (unix socket, pid file) that must exist",
        ),
        wait_parser.add_argument(
            "--timeout",
            type=_seconds,
            default=10.0,
            metavar="S",
            help="seconds for the PARTs and the probes together (default 10)",
        ),
        wait_parser.add_argument(
            "--keep",
            action="store_true",
            help="stay attached until Ctrl-C (exit 0) or SIGTERM, SIGHUP, SIGQUIT (128+N)",
        ),
        wait_parser.add_argument(
            "--grace",
            type=_finite_seconds,
            default=7.0,
            metavar="S",
            help="seconds from the stop signal to SIGKILL when CMD is stopped (default 7; "
            "--kill-grace, if given, wins)",
        ),
        *_add_containment_options(wait_parser),
    ]
    value_options = {
        name: frozenset(
            option for action in actions if action.nargs != 0 for option in action.option_strings
        )
        for name, actions in (("run", run_options), ("wait-for", wait_options))
    }
    return _Grammar(parser, {"run": run_parser, "wait-for": wait_parser}, value_options)


def _split_command_line(
    words: list[str], value_options: Mapping[str, frozenset[str]]
) -> tuple[list[str], list[str]]:
    """Split argv into procfound's own words and the command's, which are never parsed.

    ``run``: the command starts at the first word that is not an option (or after a ``--`` in
    front of it). ``wait-for`` takes PARTs first, so its command starts after the first ``--``.
    Either way every later word is the command's, ``--`` included.
    """
    if not words or words[0] not in value_options:
        return words, []
    takes_value = value_options[words[0]]
    index = 1
    while index < len(words):
        word = words[index]
        if word == "--":
            return words[:index], words[index + 1 :]
        if word.startswith("-") and word != "-":
            if word in takes_value and index + 1 < len(words) and words[index + 1] != "--":
                index += 1  # the option's value, even when it looks like an option ("-1")
        elif words[0] == "run":
            return words[:index], words[index:]
        index += 1
    return words, []


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else text


def _cannot_start(exc: ProcessError) -> int:
    """Report a command that could not be started; exit like a shell would."""
    print(f"procfound: {_first_line(exc.message)}", file=sys.stderr)
    # Found but not executable (EACCES, a directory) is 126 for a shell and for timeout(1).
    return EXIT_CANNOT_EXECUTE if isinstance(exc.__cause__, PermissionError) else EXIT_CANNOT_RUN


def _report_timeout(cmd: list[str] | str, seconds: float) -> int:
    shown = cmd if isinstance(cmd, str) else " ".join(cmd)
    print(
        f"procfound: timed out after {seconds:g}s; killed the process tree of: {shown}",
        file=sys.stderr,
    )
    return EXIT_TIMEOUT


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
    pipeline = pipe(*stages)
    started = time.monotonic()
    try:
        result = run(
            pipeline,
            cwd=args.cwd,
            env=dict(args.env) or None,
            capture_output=args.json,
            check=False,
            timeout=args.timeout,
            idle_timeout=args.idle_timeout,
            foreground=args.foreground,
            **_containment(args),
        )
    except ProcessTimeoutError as exc:
        if args.json:
            partial = exc.result
            _print_json(
                pipeline.args,
                None,
                exc.stdout or "",
                exc.stderr or "",
                started,
                timed_out=True,
                stages=None if partial is None else _stages_json(partial.stages),
            )
        return _report_stopped(str(pipeline), exc)
    except ProcessError as exc:
        return _cannot_start(exc)
    if args.json:
        _print_result_json(pipeline.args, result, started)
    return _exit_code(result.returncode)


def _print_result_json(
    cmd: list[str] | list[list[str]], result: CompletedProcess[Any], started: float
) -> None:
    """``--json`` for a command that ran to its end (a pipeline's stages included)."""
    _print_json(
        cmd,
        result.returncode,
        result.stdout,
        result.stderr,
        started,
        duration=result.duration,
        rusage=None if result.rusage is None else result.rusage.to_dict(),
        stages=_stages_json(result.stages),
    )


def _stages_json(stages: Any) -> list[dict[str, Any]] | None:
    if stages is None:
        return None
    return [
        {"args": stage.args, "returncode": stage.returncode, "stderr": stage.stderr}
        for stage in stages
    ]


def _report_stopped(cmd: list[str] | str, exc: ProcessTimeoutError) -> int:
    """Report a timeout: the whole-call one, or --idle-timeout's."""
    idle = exc.context.get("process.idle_timeout")
    if idle is None:
        return _report_timeout(cmd, exc.timeout_seconds or 0.0)
    shown = cmd if isinstance(cmd, str) else " ".join(cmd)
    print(
        f"procfound: no output for {idle:g}s; killed the process tree of: {shown}",
        file=sys.stderr,
    )
    return EXIT_TIMEOUT


def _run_command(args: argparse.Namespace, signals: _StopSignals) -> int:
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
    started = time.monotonic()
    env = dict(args.env) or None
    tagged = args.tag or args.timestamps
    if args.foreground and (tagged or args.idle_timeout is not None):
        print(
            "procfound run: --foreground leaves the output on the terminal; --tag, --timestamps "
            "and --idle-timeout need to read it",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.json and args.tag:
        return _json_tagged_command(cmd, args, env, started)
    if not args.json and not args.foreground:
        return _stream_command(cmd, args, env)
    try:
        result = run(
            cmd,
            cwd=args.cwd,
            env=env,
            capture_output=args.json,
            check=False,
            timeout=args.timeout,
            foreground=args.foreground,
            **_observing(args),
            **_containment(args),
        )
    except ProcessTimeoutError as exc:
        if args.json:
            _print_json(cmd, None, exc.stdout or "", exc.stderr or "", started, timed_out=True)
        return _report_stopped(cmd, exc)
    except ProcessError as exc:
        return _cannot_start(exc)
    if args.json:
        _print_result_json(cmd, result, started)
    return _exit_code(result.returncode)


def _observing(args: argparse.Namespace) -> dict[str, Any]:
    return {} if args.idle_timeout is None else {"idle_timeout": args.idle_timeout}


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
            cmd,
            cwd=args.cwd,
            env=env,
            timeout=args.timeout,
            stream_stderr=not tagged,
            tagged=tagged,
            **_observing(args),
            **_containment(args),
        ) as lines:
            if tagged:
                for line in lines:
                    print(_line_prefix(line, args) + line.text, flush=True)
            else:
                for line in lines:
                    print(line, flush=True)
    except ProcessTimeoutError as exc:
        return _report_stopped(cmd, exc)
    except ProcessError as exc:
        if exc.return_code is None:
            return _cannot_start(exc)
        return _exit_code(exc.return_code)
    return 0


def _json_tagged_command(
    cmd: list[str], args: argparse.Namespace, env: dict[str, str] | None, started: float
) -> int:
    """``--json --tag``: the result document with every line, tagged, in arrival order."""
    lines: list[Line] = []
    returncode: int | None = 0
    error: ProcessError | None = None
    try:
        with stream(
            cmd,
            cwd=args.cwd,
            env=env,
            timeout=args.timeout,
            tagged=True,
            **_observing(args),
            **_containment(args),
        ) as tagged:
            lines.extend(tagged)
    except ProcessError as exc:
        if exc.return_code is None and not isinstance(exc, ProcessTimeoutError):
            return _cannot_start(exc)
        error, returncode = exc, exc.return_code
    timed_out = isinstance(error, ProcessTimeoutError)
    _print_json(
        cmd,
        None if timed_out else returncode,
        "".join(f"{line.text}\n" for line in lines if line.stream == "stdout"),
        "".join(f"{line.text}\n" for line in lines if line.stream == "stderr"),
        started,
        timed_out=timed_out,
        lines=[line._asdict() for line in lines],
    )
    if isinstance(error, ProcessTimeoutError):
        return _report_stopped(cmd, error)
    return 0 if returncode is None else _exit_code(returncode)


def _wait_for_command(args: argparse.Namespace, signals: _StopSignals) -> int:
    parts: list[str] = list(args.parts)
    cmd: list[str] = args.cmd
    if not cmd or not (parts or args.port or args.http or args.path):
        print(
            "procfound wait-for: need a PART or --port/--http/--path, then -- CMD [ARGS...]",
            file=sys.stderr,
        )
        return EXIT_USAGE
    process = ManagedProcess(cmd, **_containment(args))
    # A port or socket that answers before CMD starts is someone else's (a StateError: exit 1).
    refuse_answered_sync(cmd, port=args.port, http=args.http, path=args.path)
    try:
        try:
            process.launch()
        except ProcessError as exc:
            return _cannot_start(exc)
        not_ready = _wait_until_ready(process, parts, args, signals)
        if not_ready is not None:
            return not_ready
        if args.keep:
            _relay_until_interrupted(process, signals)
        return 0
    finally:
        # A stop signal landing in the graceful stop cuts its grace short (the tree is
        # SIGKILLed) but not the cleanup: later signals are ignored (see _StopSignals).
        try:
            process.terminate_gracefully(args.grace if args.kill_grace is None else args.kill_grace)
        finally:
            process.cleanup()


def _wait_until_ready(
    process: ManagedProcess, parts: list[str], args: argparse.Namespace, signals: _StopSignals
) -> int | None:
    """Wait for the PARTs (printing the output read), then the probes, under one --timeout.

    Returns None when ready, or the exit code: 124 on timeout, 1 when the command ended first.
    """
    deadline = time.monotonic() + args.timeout
    try:
        if parts:
            try:
                text = signals.run_loop(wait_for_process_output, process, parts, args.timeout)
            except ProcessTimeoutError:
                print(
                    f"procfound: {parts} did not appear within {args.timeout:g}s", file=sys.stderr
                )
                return EXIT_TIMEOUT
            sys.stdout.write(text)
            sys.stdout.flush()
        if args.port or args.http or args.path:
            process.wait_ready(
                port=args.port,
                http=args.http,
                path=args.path,
                timeout=max(0.0, deadline - time.monotonic()),
            )
    except ProcessTimeoutError as exc:
        # "Not ready within 10s: waiting for a TCP connection to 127.0.0.1:8080; last attempt:
        # Connection refused". The PARTs' wait counts in the time, so name the whole timeout.
        reason = _first_line(exc.message).partition(": ")[2] or _first_line(exc.message)
        print(f"procfound: not ready within {args.timeout:g}s: {reason}", file=sys.stderr)
        return EXIT_TIMEOUT
    except ProcessError as exc:
        # Its stderr was relayed as it came; its stdout was not shown: show how it ended.
        print(f"procfound: {_first_line(exc.message)}", file=sys.stderr)
        last_lines = (exc.stdout or "").splitlines()[-_EXIT_STDOUT_LINES:]
        if last_lines:
            print("procfound: the last lines of its stdout:", file=sys.stderr)
            print("\n".join(last_lines), file=sys.stderr)
        return 1
    return None


def _relay_until_interrupted(process: ManagedProcess, signals: _StopSignals) -> None:
    """Relay the command's output until Ctrl-C (then return) or another stop signal (raised)."""

    async def relay_output() -> None:
        ahead = ""  # a character read past a "" line, which belongs to the next line
        while True:
            if ahead == "\n":
                ahead = ""
                print(flush=True)
                continue
            try:
                rest = await process.read_line_async(timeout=3600)
            except TimeoutError:
                continue
            line, ahead = ahead + rest, ""
            if not rest:
                line = line.removesuffix("\r")  # the "\r" of a "\r\n" read ahead
            if not line:
                # A blank line, or the end of the output (a blank line just before the end is
                # indistinguishable from it and is not shown).
                try:
                    ahead = await process.read_char_async(timeout=_BLANK_OR_END_PEEK)
                except TimeoutError:
                    pass  # nothing yet, but the output goes on: it was a blank line
                else:
                    if not ahead:
                        return
            print(line, flush=True)

    async def relay() -> None:
        await relay_output()
        # The output ended (stdout closed, or the command exited): stay attached until it exits.
        while process.is_running():
            await anyio.sleep(_EXIT_POLL)

    try:
        signals.run_loop(relay)
    except KeyboardInterrupt as exc:
        _note("procfound: stopping the command")
        if isinstance(exc, _Signalled) and exc.signum != signal.SIGINT:
            raise  # Ctrl-C is how --keep ends (exit 0); SIGTERM and the rest exit 128+N


def _print_json(
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


def _note(text: str) -> None:
    """A line on stderr that must not fail: after SIGHUP the terminal may be gone (EIO)."""
    with contextlib.suppress(OSError, ValueError):
        print(text, file=sys.stderr, flush=True)


def _silence_stdout() -> None:
    # The Python docs' recipe for SIGPIPE: point stdout at /dev/null so that the interpreter's
    # own flush at exit does not raise BrokenPipeError a second time.
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


class _Signalled(KeyboardInterrupt):
    """Stop signal ``signum`` arrived: stop the command's tree as on Ctrl-C, then exit 128+N.

    A ``KeyboardInterrupt``, so the sync bridge takes it for Ctrl-C: it cancels the call running
    in the portal and waits for its kill path (the call's stop policy: stop signal, kill grace,
    containment, cgroup removed) before letting it through.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@final
class _StopSignals:
    """``main()``'s handlers for :data:`STOP_SIGNALS` (the library itself installs none).

    The first signal raises :class:`_Signalled` in the main thread, wherever it is; inside an
    event loop the CLI runs (see :meth:`run_loop`) it cancels the loop's work instead, as asyncio
    does for Ctrl-C, rather than raising in the middle of the loop's own code. Every later
    signal is ignored: a second one must not cut the stop short (it leaves the tree, or its
    cgroup, behind), and the stop is bounded anyway (the stop signal, at most the kill grace,
    then SIGKILL). :meth:`uninstall` restores the handlers it found, unless ``main()`` owns
    the process (``argv`` is None): then only the interpreter's exit is left, everything has
    been stopped, and a signal must neither raise in an exit hook (a traceback) nor change the
    outcome of a stop already made. So after a stop signal the later ones stay ignored, and
    without one the first exits 128+N at once. While a command runs, a signal the kernel gave
    another thread is forwarded to the main one (:meth:`forward_from_other_threads`).
    """

    __slots__ = ("_cancel", "_deferred", "_owns_process", "_previous", "_wakeup", "received")

    def __init__(self, *, owns_process: bool) -> None:
        self._owns_process = owns_process
        self._previous: dict[int, Any] = {}
        self.received: int | None = None  # the first stop signal
        self._cancel: Callable[[], object] | None = None  # set while run_loop's work runs
        self._deferred = False  # the first signal cancelled run_loop's work: raise after it
        self._wakeup: tuple[int, int] | None = None  # our wakeup fd and the one it replaced

    def install(self) -> None:
        """Install the handlers (a signal may raise as soon as the first one is in place)."""
        # Python runs signal handlers in the main thread only; a main() called from another
        # thread (embedded use) leaves signals to whoever owns the process.
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                # None (a handler set outside Python) cannot be put back: the default is, then
                self._previous[signum] = signal.getsignal(signum) or signal.SIG_DFL
                signal.signal(signum, self._handle)

    def forward_from_other_threads(self) -> None:
        """See that a stop signal reaches the main thread, whichever thread the kernel gave it.

        The kernel hands a process-directed signal to any thread that does not block it, and
        Python runs the handler only in the main thread, once that thread runs Python code. One
        that lands in procfound's portal thread while the main thread sleeps on a call's lock
        (or in its event loop) would wait until the call ended: SIGTERM during the spawn of a
        silent command hung the CLI 5 times in 80. Blocking the signals in the portal thread
        is no cure, as the children it spawns would inherit the mask. So every signal also
        writes its number to a pipe (``signal.set_wakeup_fd``), and a thread of ours that
        blocks them re-sends it to the main thread while the handler has not run there.
        """
        if not self._previous or self._wakeup is not None:  # not the main thread, or done
            return
        try:
            read_fd, write_fd = os.pipe()
        except OSError:  # no fds left: the command cannot start either, and says so
            return
        os.set_blocking(write_fd, False)
        self._wakeup = (write_fd, signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False))
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:  # the thread inherits the mask: the kernel never hands it a stop signal
            threading.Thread(
                target=self._forward, args=(read_fd,), name="procfound-cli-signals", daemon=True
            ).start()
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def _forward(self, read_fd: int) -> None:
        main_thread = threading.main_thread().ident
        assert main_thread is not None
        try:
            while data := os.read(read_fd, 64):
                for signum in data:
                    # Give the main thread a moment: if it got the signal itself, its handler
                    # has run by then. Re-sent, the signal writes here again: until it has.
                    time.sleep(_FORWARD_AFTER)
                    if signum in STOP_SIGNALS and self.received is None:
                        with contextlib.suppress(OSError):
                            signal.pthread_kill(main_thread, signum)
        finally:
            os.close(read_fd)

    def uninstall(self) -> None:
        """Put back the handlers found, or the process's exit handlers (see the class).

        The first stop signal may land in it and raise (main() then calls it again: once one
        has landed, no signal raises any more).
        """
        for signum, previous in self._previous.items():
            if not self._owns_process:
                handler = previous
            elif self.received is not None:
                # Ignored by the kernel, not by a Python handler: Python's finalization puts
                # back the default action of a signal with a Python handler, and a second
                # signal would then kill procfound (-N instead of the first one's 128+N).
                handler = signal.SIG_IGN
            else:
                handler = self._exit_now
            signal.signal(signum, handler)
        wakeup, self._wakeup = self._wakeup, None
        if wakeup is not None:
            write_fd, previous_fd = wakeup
            signal.set_wakeup_fd(previous_fd)
            os.close(write_fd)  # the forwarding thread reads the end of the pipe, and ends

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            return  # already stopping: see the class docstring
        self.received = signum
        cancel = self._cancel
        if cancel is None:
            raise _Signalled(signum)
        self._deferred = True
        cancel()

    def _exit_now(self, signum: int, frame: FrameType | None) -> None:
        """The handler once main() is done (see the class): nothing is left to stop."""
        if self.received is not None:
            return  # procfound exits 128+N for the first signal
        with contextlib.suppress(Exception):  # a write the signal interrupted may hold a buffer
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(128 + signum)

    def run_loop(self, fn: Callable[..., Awaitable[T]], *args: object) -> T:
        """``anyio.run(fn, *args)``, which the first stop signal cancels.

        From before the loop is built until it is closed, the handler does not raise: an
        exception in the middle of building or closing a loop leaves a broken one behind (and
        a traceback at exit). A signal that lands while there is nothing to cancel yet is
        acted on when ``fn`` would start; either way it is raised once the loop is gone.

        Raises:
            _Signalled: If a stop signal arrived while it ran.
        """
        outcome: list[T] = []

        async def guarded() -> None:
            with anyio.CancelScope() as scope:
                # The loop's own signal-safe wake-up: the handler may interrupt any line of
                # the loop's code, and only this is safe to call from there.
                call_soon = asyncio.get_running_loop().call_soon_threadsafe

                def cancel() -> None:
                    with contextlib.suppress(RuntimeError):  # the loop is closing: raised below
                        call_soon(scope.cancel)

                self._cancel = cancel
                try:
                    if not self._deferred:  # else it landed while the loop was being built
                        outcome.append(await fn(*args))
                finally:
                    self._cancel = _later

        self._cancel = _later
        try:
            anyio.run(guarded, backend="asyncio")
        except Exception:
            if not self._deferred:
                raise
            # fn failed (timed out, its command exited) as the signal landed: the signal wins
        finally:
            self._cancel = None
        if self._deferred:
            self._deferred = False
            assert self.received is not None
            raise _Signalled(self.received)
        return outcome[0]  # only a stop signal cancels guarded, and that raised above


def _later() -> None:
    """The handler's "cancel" while there is nothing to cancel: run_loop raises afterwards."""


_COMMANDS: Final[dict[str, Callable[[argparse.Namespace, _StopSignals], int]]] = {
    "run": _run_command,
    "wait-for": _wait_for_command,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``procfound`` command; returns the exit code.

    SIGINT, SIGTERM, SIGHUP and SIGQUIT stop the command's tree with its stop policy and make
    it return 128+N (see :class:`_StopSignals`); usage errors raise ``SystemExit(2)``.
    """
    signals = _StopSignals(owns_process=argv is None)
    # The first stop signal may raise anywhere in the inner block, install() and uninstall()
    # included (the moment just after _main returned), and the outer one catches it there.
    try:
        try:
            signals.install()
            return _main(sys.argv[1:] if argv is None else argv, signals)
        finally:
            signals.uninstall()
    except _Signalled as exc:
        signals.uninstall()  # again: the signal may have cut it short
        if exc.signum != signal.SIGINT:  # Ctrl-C needs no word: the user pressed it
            _note(f"procfound: ended by {signal.Signals(exc.signum).name}")
        return 128 + exc.signum


def _main(argv: Sequence[str], signals: _StopSignals) -> int:
    grammar = _build_grammar()
    words = list(argv)
    own, command = _split_command_line(words, grammar.value_options)
    for word in own[1:]:
        option, equals, value = word.partition("=")
        if equals and value == "--" and option.startswith("--"):
            # argparse drops a "--" given as "--opt=--" and sets the option to [] unchecked.
            parser = grammar.commands.get(own[0], grammar.parser)
            parser.error(f"argument {option}: expected a value, got '--' (the separator)")
    args, unknown = grammar.parser.parse_known_args(own)
    if unknown:  # reported by the command's parser, so the hint names its --help
        grammar.commands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    args.cmd = command
    try:
        args.policy = _stop_policy(args)
    except ValidationError as exc:  # a usage error, before anything starts
        grammar.commands[args.command].error(_first_line(exc.message))
    try:
        signals.forward_from_other_threads()
        return _COMMANDS[args.command](args, signals)
    except ValidationError as exc:
        print(f"procfound: {_first_line(exc.message)}", file=sys.stderr)
        return EXIT_USAGE
    except (PlatformError, StateError) as exc:
        print(f"procfound: {_first_line(exc.message)}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # Whoever read our output has gone (`| head -1`); the child is already stopped.
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except _Signalled:
        raise  # main() exits 128+N
    except KeyboardInterrupt:
        # Only where main() runs outside the main thread (no handlers of ours). The child's
        # tree is already gone: the sync call waits for its kill path.
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    raise SystemExit(main())
