"""The ``procfound`` command line: run a real command with procfound's engine.

It uses only the public API, so what it does is what a library user gets.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Sequence
from typing import Final

import anyio

from procfound.errors import ProcessError, ProcessTimeoutError, ProcfoundError
from procfound.managed import ManagedProcess, wait_for_process_output
from procfound.run import run
from procfound.streaming import stream

__all__ = ["main"]

EXIT_TIMEOUT: Final = 124  # what coreutils timeout(1) exits with
EXIT_CANNOT_RUN: Final = 127  # what a shell exits with for a command it cannot run
EXIT_INTERRUPTED: Final = 130

_DESCRIPTION: Final = """\
Run subprocesses that never hang and never leave a process behind.

examples:
  procfound run -- make test
  procfound run --timeout 5 -- sh -c 'sleep 60 & sleep 60'   # exits 124 after 5 s, tree killed
  procfound run --json --env GREETING=hi -- sh -c 'echo "$GREETING"'
"""


def _parse_env(pairs: Sequence[str]) -> dict[str, str] | None:
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"procfound: --env needs KEY=VALUE, got {pair!r}")
        env[key] = value
    return env or None


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="procfound",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run_parser = commands.add_parser(
        "run",
        help="run a command, show its output live, exit with its code",
        description=(
            "Run CMD in its own process group, show its output line by line as it comes (stderr "
            "merged into stdout in the child's order; --json keeps them apart), and exit with its "
            "exit code (128+N when signal N killed it). On --timeout the whole process tree is "
            "killed and procfound exits 124, like timeout(1)."
        ),
    )
    run_parser.add_argument(
        "--timeout", type=float, metavar="S", help="seconds before the tree is killed"
    )
    run_parser.add_argument("--cwd", metavar="DIR", help="working directory for the command")
    run_parser.add_argument(
        "--env", action="append", default=[], metavar="K=V", help="set a variable (repeatable)"
    )
    run_parser.add_argument(
        "--json",
        action="store_true",
        help="capture the output and print the result as one JSON document",
    )
    run_parser.add_argument(
        "--foreground",
        action="store_true",
        help="let the command use the terminal (stdin, job control); only it is killed on timeout",
    )
    run_parser.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD [ARGS...]")
    wait_parser = commands.add_parser(
        "wait-for",
        help="start a command and wait until its output shows every PART (a handshake)",
        usage="procfound wait-for [-h] [--timeout S] [--keep] [--grace S] PART [PART ...] -- CMD",
        description=(
            "Start CMD, print its output up to the line where every PART has appeared, and exit "
            "0. Exits 1 with a message if CMD ends first, 124 on --timeout; either way CMD is "
            "stopped. With --keep, stay attached and relay its output until Ctrl-C, then stop "
            "it gracefully (SIGTERM to its process group, SIGKILL after --grace seconds)."
        ),
    )
    wait_parser.add_argument("parts", nargs="+", metavar="PART", help="text that must appear")
    wait_parser.add_argument("--timeout", type=float, default=10.0, metavar="S")
    wait_parser.add_argument("--keep", action="store_true", help="stay attached until Ctrl-C")
    wait_parser.add_argument("--grace", type=float, default=7.0, metavar="S")
    return parser


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def _run_command(args: argparse.Namespace) -> int:
    cmd = _split_command(list(args.cmd))
    if not cmd:
        print("procfound run: no command given (procfound run -- CMD [ARGS...])", file=sys.stderr)
        return 2
    started = time.monotonic()
    if not args.json and not args.foreground:
        return _stream_command(cmd, args)
    try:
        result = run(
            cmd,
            cwd=args.cwd,
            env=_parse_env(args.env),
            capture_output=args.json,
            check=False,
            timeout=args.timeout,
            foreground=args.foreground,
        )
    except ProcessTimeoutError as exc:
        if args.json:
            _print_json(cmd, None, exc.stdout or "", exc.stderr or "", started, timed_out=True)
        print(
            f"procfound: timed out after {args.timeout:g}s; killed the process tree of: "
            f"{' '.join(cmd)}",
            file=sys.stderr,
        )
        return EXIT_TIMEOUT
    except ProcessError as exc:
        print(f"procfound: {exc.message.splitlines()[0]}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    if args.json:
        _print_json(
            cmd,
            result.returncode,
            result.stdout,
            result.stderr,
            started,
            duration=result.duration,
            rusage=None if result.rusage is None else result.rusage.to_dict(),
        )
    return _exit_code(result.returncode)


def _stream_command(cmd: list[str], args: argparse.Namespace) -> int:
    # Lines are printed as the child writes them (stderr merged in the child's order).
    try:
        for line in stream(
            cmd,
            cwd=args.cwd,
            env=_parse_env(args.env),
            timeout=args.timeout,
            stream_stderr=True,
        ):
            print(line, flush=True)
    except ProcessTimeoutError:
        print(
            f"procfound: timed out after {args.timeout:g}s; killed the process tree of: "
            f"{' '.join(cmd)}",
            file=sys.stderr,
        )
        return EXIT_TIMEOUT
    except ProcessError as exc:
        if exc.return_code is None:
            print(f"procfound: {exc.message.splitlines()[0]}", file=sys.stderr)
            return EXIT_CANNOT_RUN
        return _exit_code(exc.return_code)
    return 0


def _split_command(raw: list[str]) -> list[str]:
    return raw[1:] if raw and raw[0] == "--" else raw


def _wait_for_command(args: argparse.Namespace) -> int:
    parts: list[str] = list(args.parts)
    cmd = _split_command(list(args.cmd))
    if not cmd or not parts:
        print("procfound wait-for: need PART... -- CMD [ARGS...]", file=sys.stderr)
        return 2
    process = ManagedProcess(cmd)
    try:
        process.launch()
        try:
            text = anyio.run(wait_for_process_output, process, parts, args.timeout)
        except ProcessTimeoutError:
            print(f"procfound: {parts} did not appear within {args.timeout:g}s", file=sys.stderr)
            return EXIT_TIMEOUT
        except ProcessError as exc:
            print(f"procfound: {exc.message.splitlines()[0]}", file=sys.stderr)
            return 1
        sys.stdout.write(text)
        sys.stdout.flush()
        if args.keep:
            _relay_until_interrupted(process)
        return 0
    finally:
        process.terminate_gracefully(args.grace)
        process.cleanup()


def _relay_until_interrupted(process: ManagedProcess) -> None:
    async def relay() -> None:
        while True:
            try:
                line = await process.read_line_async(timeout=3600)
            except TimeoutError:
                continue
            if not line and not process.is_running():
                return
            print(line, flush=True)

    try:
        anyio.run(relay)
    except KeyboardInterrupt:
        print("procfound: stopping the command", file=sys.stderr)


def _print_json(
    cmd: list[str],
    returncode: int | None,
    stdout: str,
    stderr: str,
    started: float,
    *,
    timed_out: bool = False,
    duration: float | None = None,
    rusage: dict[str, float | int] | None = None,
) -> None:
    document = {
        "args": cmd,
        "returncode": returncode,
        "stdout": stdout,
        "stderr": stderr,
        "duration": round(time.monotonic() - started if duration is None else duration, 6),
        "rusage": rusage,
        "timed_out": timed_out,
    }
    json.dump(document, sys.stdout)
    sys.stdout.write("\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``procfound`` command; returns the exit code."""
    words = list(sys.argv[1:] if argv is None else argv)
    # Everything after the first "--" is the command, verbatim: options of the command (or
    # words that look like ours) must never be parsed as procfound's.
    tail: list[str] | None = None
    if "--" in words:
        split = words.index("--")
        words, tail = words[:split], words[split + 1 :]
    args = _build_parser().parse_args(words)
    if tail is not None or args.command == "wait-for":
        args.cmd = tail or []
    try:
        if args.command == "run":
            return _run_command(args)
        if args.command == "wait-for":
            return _wait_for_command(args)
    except ProcfoundError as exc:
        print(f"procfound: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # The child's tree is already gone: the sync call waits for its kill path.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        return EXIT_INTERRUPTED
    raise AssertionError(f"unhandled command {args.command}")  # argparse guarantees a command


if __name__ == "__main__":
    raise SystemExit(main())
