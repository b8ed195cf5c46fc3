"""``procfound wait-for``: start a command and wait until it is ready; ``--keep`` stays attached.

It owns the readiness wait (the PARTs in the output, then ``--port``/``--http``/``--path``
under one ``--timeout``), the reports of a command that timed out or ended before it was
ready, and ``--keep``'s relay of the output until a stop signal. The command runs as a
:class:`~procfound.ManagedProcess`, stopped gracefully (``--grace``) whatever happens.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import Final

from procfound import (
    ManagedProcess,
    ProcessError,
    ProcessTimeoutError,
    refuse_if_answered,
    wait_for_process_output,
)
from procfound.cli.options import containment
from procfound.cli.output import EXIT_TIMEOUT, EXIT_USAGE, cannot_start, first_line, note
from procfound.cli.signals import Signalled, StopSignals

__all__ = ["wait_for_command"]

# After `read_line_async` returns "", how long to wait for one more character: "" is either a
# blank line or the end of the output, and only a character read tells them apart.
_BLANK_OR_END_PEEK: Final = 0.05
# When the command exits before it is ready, this many of its last stdout lines are shown.
_EXIT_STDOUT_LINES: Final = 20


def wait_for_command(args: argparse.Namespace, signals: StopSignals) -> int:
    """``procfound wait-for``: start the command, wait until it is ready, then stop it (or,
    with ``--keep``, relay its output until a stop signal); return the exit code."""
    parts: list[str] = list(args.parts)
    cmd: list[str] = args.cmd
    if not cmd or not (parts or args.port or args.http or args.path):
        print(
            "procfound wait-for: need a PART or --port/--http/--path, then -- CMD [ARGS...]",
            file=sys.stderr,
        )
        return EXIT_USAGE
    process = ManagedProcess(cmd, **containment(args))
    # A port or socket that answers before CMD starts is someone else's (a StateError: exit 1).
    refuse_if_answered(cmd, port=args.port, http=args.http, path=args.path)
    try:
        try:
            process.launch()
        except ProcessError as exc:
            return cannot_start(exc)
        not_ready = _wait_until_ready(process, parts, args, signals)
        if not_ready is not None:
            return not_ready
        if args.keep:
            _relay_until_interrupted(process, signals)
        return 0
    finally:
        # A stop signal landing in the graceful stop cuts its grace short (the tree is
        # SIGKILLed) but not the cleanup: later signals are ignored (see StopSignals).
        try:
            process.terminate_gracefully(args.grace if args.kill_grace is None else args.kill_grace)
        finally:
            process.cleanup()


def _wait_until_ready(
    process: ManagedProcess, parts: list[str], args: argparse.Namespace, signals: StopSignals
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
        reason = first_line(exc.message).partition(": ")[2] or first_line(exc.message)
        print(f"procfound: not ready within {args.timeout:g}s: {reason}", file=sys.stderr)
        return EXIT_TIMEOUT
    except ProcessError as exc:
        # Its stderr was relayed as it came; its stdout was not shown: show how it ended.
        print(f"procfound: {first_line(exc.message)}", file=sys.stderr)
        last_lines = (exc.stdout or "").splitlines()[-_EXIT_STDOUT_LINES:]
        if last_lines:
            print("procfound: the last lines of its stdout:", file=sys.stderr)
            print("\n".join(last_lines), file=sys.stderr)
        return 1
    return None


def _relay_until_interrupted(process: ManagedProcess, signals: StopSignals) -> None:
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

    handle = process.process
    assert handle is not None  # launched by wait_for_command
    try:
        signals.run_loop(relay_output)
        # The output ended (stdout closed, or the command exited): stay attached until it
        # exits. A sync wait, out of the loop: the sync bridge waits in short slices, so the
        # main thread runs a stop signal's handler at once and the wait is cancelled.
        handle.wait()
    except KeyboardInterrupt as exc:
        note("procfound: stopping the command")
        if isinstance(exc, Signalled) and exc.signum != signal.SIGINT:
            raise  # Ctrl-C is how --keep ends (exit 0); SIGTERM and the rest exit 128+N
