"""The CLI's grammar: the ``procfound`` parser with its ``run`` and ``wait-for`` commands.

It owns the argparse definitions and help texts, usage errors as one short line (exit 2), and
:func:`split_command_line`, which keeps the command's own words (after the first word that is
not an option, or after ``--``) away from argparse. The options' values are checked by
:mod:`procfound.cli.options`.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, NoReturn, final

from procfound.cli.options import (
    directory,
    env_pair,
    finite_seconds,
    http_option,
    path_option,
    port_option,
    seconds,
)
from procfound.cli.output import EXIT_USAGE

__all__ = ["Grammar", "build_grammar", "split_command_line"]

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
    message = _LONG_QUOTED.sub(lambda found: _shorten(found.group(0), 60), message)
    return _shorten(message, 300)


def _shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters (saying how many more there were), and printable:
    an undecodable byte of argv (a lone surrogate) shows as its backslash escape, so printing
    the message cannot raise ``UnicodeEncodeError``."""
    if len(text) > limit:
        text = f"{text[:limit]}... ({len(text) - limit} more characters)"
    try:
        raw = text.encode("utf-8", "surrogateescape")  # each escaped byte as the byte it was
    except UnicodeEncodeError:  # a surrogate no byte stands for
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


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
            type=finite_seconds,
            metavar="S",
            help="seconds from the stop signal to SIGKILL (default 0.5; 0: at once)",
        ),
    ]


@final
@dataclass(frozen=True)
class Grammar:
    """The parser, each command's own parser, and each command's options that take a value."""

    parser: argparse.ArgumentParser
    commands: dict[str, argparse.ArgumentParser]
    value_options: dict[str, frozenset[str]]


def build_grammar() -> Grammar:
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
            "[--tag] [--timestamps] [--foreground] [--pty] [--contain LEVEL] [--stop-signal SIG] "
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
            "--timeout", type=seconds, metavar="S", help="seconds before the tree is killed"
        ),
        run_parser.add_argument(
            "--cwd", type=directory, metavar="DIR", help="working directory for the command"
        ),
        run_parser.add_argument(
            "--env",
            type=env_pair,
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
            "--pty",
            action="store_true",
            help=(
                "run the command on a pseudo-terminal of its own (the size of ours when stdout "
                "is one): it writes as to a terminal (colours, line buffering), its output "
                "shown as it comes, byte for byte; its input ends at once"
            ),
        ),
        run_parser.add_argument(
            "--idle-timeout",
            type=seconds,
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
            type=port_option,
            metavar="P",
            help="a port that must accept a TCP connection: PORT (on 127.0.0.1), HOST:PORT, "
            "[::1]:PORT",
        ),
        wait_parser.add_argument(
            "--http",
            type=http_option,
            metavar="URL",
            help="an http:// URL that must answer 2xx/3xx",
        ),
        wait_parser.add_argument(
            "--path",
            type=path_option,
            metavar="P",
            help="a path (unix socket, pid file) that must exist",
        ),
        wait_parser.add_argument(
            "--timeout",
            type=seconds,
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
            type=finite_seconds,
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
    return Grammar(parser, {"run": run_parser, "wait-for": wait_parser}, value_options)


def split_command_line(
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
