"""Every option of every CLI command, given garbage: a usage error (or the documented code), one
short line on stderr, never a traceback.

The options come from each command's own ``--help``, so a new option is fuzzed without a
change here. The cases run ``procfound.cli.main(argv)`` in this process, which is safe: the
command is a path that does not exist, so a value that happens to be valid ends in exit 127
("cannot start") and nothing is ever spawned. A handful of cases run a real ``procfound``
process, with undecodable bytes in argv as only a real argv carries them.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from conftest import PY
from test_cli import cli_env

from procfound.cli import main

NOT_A_PROGRAM = "/nonexistent/procfound-fuzz-program"
EXIT_USAGE = 2
EXIT_CANNOT_RUN = 127
# What a run may end with: a usage error, or "cannot start" once every value was acceptable.
ALLOWED = {EXIT_USAGE, EXIT_CANNOT_RUN}
SHORT = 400  # characters of stderr: one line, with the value shortened if it is long

# Values as argv can hold them (no NUL); os.fsdecode of undecodable bytes gives the lone
# surrogates a real argv decodes to.
GARBAGE = [
    "",
    " ",
    "\t",
    "-1",
    "0",
    "-0",
    "nan",
    "NaN",
    "-nan",
    "inf",
    "-inf",
    "1e400",
    "-1e400",
    "1e-400",
    str(2**64),
    str(-(2**63)),
    "9" * 5000,
    "0x10",
    "1_000",
    "٣",  # an Arabic-Indic digit: int() takes it
    "ü",
    "😀",
    "\u202e",
    os.fsdecode(b"\xff\xfe"),
    os.fsdecode(b"/tmp/\xff"),
    "x" * 100_000,
    "-",
    "--",
    "-x",
    "=",
    "a=b",
    "[::1",
    "[::1]:",
    "http://😀:1/",
    "http://" + os.fsdecode(b"\xff") + ":1/",
    "http://user:secret@[::1/",
]


def help_options(command: str, capsys: pytest.CaptureFixture[str]) -> dict[str, bool]:
    """The options of ``procfound COMMAND --help``, each mapped to whether it takes a value."""
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    options = {}
    for found in re.finditer(r"^ {2}(?:-\w, )?(--[a-z][a-z-]*)( \S+)?", text, re.M):
        if found.group(1) != "--help":
            options[found.group(1)] = found.group(2) is not None
    return options


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def problem(code: int, out: str, err: str, argv: list[str]) -> str | None:
    """What is wrong with one run's outcome, or None."""
    if code not in ALLOWED:
        wrong = f"exit {code}"
    elif "Traceback" in err:
        wrong = "a traceback"
    elif len(err) >= SHORT or len(err.strip().splitlines()) != 1:
        wrong = "not one short line on stderr"
    elif out:
        wrong = "output on stdout"  # the command cannot have run
    else:
        return None
    return f"{[word[:40] for word in argv]}: {wrong}: {err[:SHORT]!r}"


def command_words(command: str) -> list[str]:
    """What follows the fuzzed words: a PART for wait-for, then the program that is not there."""
    return (["ready"] if command == "wait-for" else []) + ["--", NOT_A_PROGRAM]


@pytest.mark.parametrize("command", ["run", "wait-for"])
def test_every_option_with_garbage_is_a_usage_error_or_the_documented_code(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    options = help_options(command, capsys)
    assert options, "no options found in the help"
    cases, problems = 0, []
    for option, takes_value in options.items():
        forms = [[option, "{}"], [f"{option}={{}}"]] if takes_value else [[f"{option}={{}}"]]
        for value in GARBAGE:
            for form in forms:
                argv = [command, *(word.format(value) for word in form), *command_words(command)]
                problems.append(problem(*run_main(argv, capsys), argv))
                cases += 1
    assert [found for found in problems if found] == []
    assert cases > 200  # the table really ran


@pytest.mark.parametrize("value", GARBAGE)
def test_garbage_parts_commands_and_subcommands(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (
        ["wait-for", value, "--timeout", "1", "--", NOT_A_PROGRAM],
        ["run", "--", NOT_A_PROGRAM + value],
        [value, "--", NOT_A_PROGRAM],
    ):
        assert problem(*run_main(argv, capsys), argv) is None


# Real processes, for what only a real argv carries: bytes that are not UTF-8 (they reach the CLI
# as lone surrogates), and the --port values of #22 item 14.
@pytest.mark.parametrize(
    ("words", "mentions"),
    [
        ([b"wait-for", b"--port", b"[::1"], "brackets"),
        ([b"wait-for", b"--port", b"-1"], "port from 1 to 65535, got '-1'"),
        ([b"wait-for", b"--port", b"\xff:1"], "--port"),
        ([b"wait-for", b"--http", b"http://\xff:1/"], "--http"),
        ([b"run", b"--env", b"\xff=\xfe", b"--kill-grace", b"\xff"], "--kill-grace"),
    ],
)
def test_real_process_usage_errors_are_one_line_without_a_traceback(
    words: list[bytes], mentions: str
) -> None:
    done = subprocess.run(
        [PY.encode(), b"-m", b"procfound", *words, b"--", b"true"],
        capture_output=True,
        timeout=30,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
    )
    err = done.stderr.decode(errors="replace")
    assert done.returncode == EXIT_USAGE, err
    assert done.stdout == b""
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert len(err) < SHORT, err
    assert mentions in err
