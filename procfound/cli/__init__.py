"""The ``procfound`` command line: run a real command with procfound's engine.

It uses only the public API, so what it does is what a library user gets (and the probes'
argument checks, so that a bad ``--port`` or ``--http`` is a usage error before anything runs).
:func:`main` also owns the process's signals, which the library leaves alone: SIGINT, SIGTERM,
SIGHUP and SIGQUIT stop the command's tree as Ctrl-C does and exit 128+N.

This package is the command, not an API: :func:`main` (the ``procfound`` entry point, and
``python -m procfound``) is its one public name. Its modules, each with one job:

- :mod:`~procfound.cli.parser`: the grammar (argparse, help texts, the command's own words);
- :mod:`~procfound.cli.options`: the options' values and the stop policy they make;
- :mod:`~procfound.cli.run_command`: ``procfound run``, a command or a ``--pipe`` pipeline;
- :mod:`~procfound.cli.wait_for`: ``procfound wait-for`` and ``--keep``;
- :mod:`~procfound.cli.output`: exit codes, ``--json``, the one-line reports;
- :mod:`~procfound.cli.signals`: the stop signals' handlers and the loop they cancel.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Final

from procfound import PlatformError, StateError, ValidationError
from procfound.cli.options import policy_of
from procfound.cli.output import (
    EXIT_BROKEN_PIPE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    first_line,
    note,
    silence_stdout,
)
from procfound.cli.parser import build_grammar, split_command_line
from procfound.cli.run_command import run_command
from procfound.cli.signals import Signalled, StopSignals
from procfound.cli.wait_for import wait_for_command

__all__ = ["main"]

_COMMANDS: Final[dict[str, Callable[[argparse.Namespace, StopSignals], int]]] = {
    "run": run_command,
    "wait-for": wait_for_command,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``procfound`` command; returns the exit code.

    SIGINT, SIGTERM, SIGHUP and SIGQUIT stop the command's tree with its stop policy and make
    it return 128+N (see :class:`~procfound.cli.signals.StopSignals`); usage errors raise
    ``SystemExit(2)``.
    """
    signals = StopSignals(owns_process=argv is None)
    # The first stop signal may raise anywhere in the inner block, install() and uninstall()
    # included (the moment just after _main returned), and the outer one catches it there.
    try:
        try:
            signals.install()
            return _main(sys.argv[1:] if argv is None else argv, signals)
        finally:
            signals.uninstall()
    except Signalled as exc:
        signals.uninstall()  # again: the signal may have cut it short
        if exc.signum != signal.SIGINT:  # Ctrl-C needs no word: the user pressed it
            note(f"procfound: ended by {signal.Signals(exc.signum).name}")
        return 128 + exc.signum


def _main(argv: Sequence[str], signals: StopSignals) -> int:
    """Parse ``argv``, run its command, and turn the library's errors into exit codes."""
    grammar = build_grammar()
    words = list(argv)
    own, command = split_command_line(words, grammar.value_options)
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
        args.policy = policy_of(args)
    except ValidationError as exc:  # a usage error, before anything starts
        grammar.commands[args.command].error(first_line(exc.message))
    try:
        signals.forward_from_other_threads()
        return _COMMANDS[args.command](args, signals)
    except ValidationError as exc:
        print(f"procfound: {first_line(exc.message)}", file=sys.stderr)
        return EXIT_USAGE
    except (PlatformError, StateError) as exc:
        print(f"procfound: {first_line(exc.message)}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # Whoever read our output has gone (`| head -1`); the child is already stopped.
        silence_stdout()
        return EXIT_BROKEN_PIPE
    except Signalled:
        raise  # main() exits 128+N
    except KeyboardInterrupt:
        # Only where main() runs outside the main thread (no handlers of ours). The child's
        # tree is already gone: the sync call waits for its kill path.
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    raise SystemExit(main())
