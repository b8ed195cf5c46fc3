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

from procfound.errors import ProcessError, ProcessTimeoutError, ProcfoundError
from procfound.run import run

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
            "Run CMD in its own process group, show its output as it comes, and exit with its "
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
    return parser


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def _run_command(args: argparse.Namespace) -> int:
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        print("procfound run: no command given (procfound run -- CMD [ARGS...])", file=sys.stderr)
        return 2
    started = time.monotonic()
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
        _print_json(cmd, result.returncode, result.stdout, result.stderr, started)
    return _exit_code(result.returncode)


def _print_json(
    cmd: list[str],
    returncode: int | None,
    stdout: str,
    stderr: str,
    started: float,
    *,
    timed_out: bool = False,
) -> None:
    document = {
        "args": cmd,
        "returncode": returncode,
        "stdout": stdout,
        "stderr": stderr,
        "duration": round(time.monotonic() - started, 6),
        "timed_out": timed_out,
    }
    json.dump(document, sys.stdout)
    sys.stdout.write("\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``procfound`` command; returns the exit code."""
    args = _build_parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run_command(args)
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
