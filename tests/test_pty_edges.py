"""Adversarial edges of ``pty=True`` (issue 26): the terminal's output shown as it comes when
nobody reads it any more, and the seams of the terminal with the CLI and other options."""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
from functools import partial

import anyio
import pytest
from conftest import SyncCall, python, wait_gone
from test_cli import cli_env, cli_into_closed_pipe

from procfound import ManagedProcess, ValidationError, async_run, run, stream

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux terminals")


def test_cli_pty_into_a_closed_pipe_stops_the_child() -> None:
    """A child on a terminal never gets SIGPIPE: procfound, which relays its output, has to
    stop it once nobody reads (`yes` would otherwise run until the outer timeout)."""
    out, err, code = cli_into_closed_pipe("run", "--pty", "--", "sh", "-c", 'echo "$$"; exec yes')
    assert "Traceback" not in err
    assert err == ""
    assert code == 128 + signal.SIGPIPE
    assert wait_gone(int(out.split()[0]), 3.0), "the child outlived the closed pipe"


def test_run_pty_shown_into_a_closed_pipe_raises_and_stops_the_child() -> None:
    """``run(pty=True, capture_output=False)`` shows the terminal's output on our stdout: once
    that is a closed pipe the call ends as ``print`` would (BrokenPipeError), the tree stopped."""
    script = python(
        """
        import sys, time
        from procfound import run
        started = time.monotonic()
        try:
            run(["sh", "-c", 'echo "$$"; exec yes'], pty=True, capture_output=False, timeout=20)
        except BrokenPipeError:
            print("broken", round(time.monotonic() - started, 1), file=sys.stderr)
        """
    )
    done = subprocess.run(
        ["sh", "-c", f"{shlex.join(script)} | head -c 8"],
        capture_output=True,
        text=True,
        timeout=30,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
    )
    assert done.stderr.startswith("broken"), done.stderr
    assert float(done.stderr.split()[1]) < 10
    assert wait_gone(int(done.stdout.split()[0]), 3.0)


HUGE = 10**5000  # no repr: more than 4300 digits (ValueError from str())


@pytest.mark.parametrize("size", [(HUGE, 80), (24, HUGE), (HUGE,), [HUGE, HUGE, HUGE]])
def test_pty_size_too_big_to_show_is_a_validation_error(size: object) -> None:
    for call in (
        lambda: run(["true"], pty=True, pty_size=size),
        lambda: list(stream(["true"], pty=True, pty_size=size)),
        lambda: ManagedProcess(["true"], pty=True, pty_size=size),
        lambda: anyio.run(partial(async_run, ["true"], pty=True, pty_size=size)),
    ):
        with pytest.raises(ValidationError) as caught:
            call()
        assert len(caught.value.message) < 300


def test_resize_too_big_to_show_is_a_validation_error() -> None:
    with ManagedProcess(["sleep", "30"], pty=True) as proc:
        with pytest.raises(ValidationError, match="an int of 16610 bits"):
            proc.resize(HUGE, 80)
        with pytest.raises(ValidationError, match="an int of 16610 bits"):
            proc.resize(24, -HUGE)


# A terminal in canonical mode holds about 4 KiB of a line not ended yet and drops the rest.
LONG = 10_000


def test_run_pty_input_with_a_line_longer_than_the_terminal_holds(sync_call: SyncCall) -> None:
    data = "x" * LONG + "\n" + "y" * LONG
    result = sync_call(run, ["wc", "-c"], pty=True, input=data, timeout=10)
    assert result.stdout.split() == [str(2 * LONG + 1)]


def test_stream_pty_input_long_line_comes_back_whole() -> None:
    lines = list(stream(["cat"], pty=True, input="x" * LONG + "\n", timeout=10))
    assert lines == ["x" * LONG]


@pytest.mark.anyio
@pytest.mark.parametrize("pieces", [1, 3, 7])
async def test_awrite_long_line_in_pieces_loses_nothing(pieces: int) -> None:
    async with ManagedProcess(["wc", "-c"], pty=True) as proc:
        for _ in range(pieces):
            await proc.awrite("z" * (LONG // pieces), timeout=10)
        await proc.aclose_stdin()
        found = await proc.aexpect("\n", timeout=10)
    assert found.before.strip() == str(LONG // pieces * pieces)


def test_write_long_line_to_a_program_reading_lines(sync_call: SyncCall) -> None:
    code = python("print(len(input()))")

    def scenario() -> str:
        with ManagedProcess(code, pty=True) as proc:
            proc.write("q" * LONG + "\n", timeout=10)
            return proc.expect("\n", timeout=10).before.strip()

    assert sync_call(scenario) == str(LONG)


def test_long_input_to_a_child_in_raw_mode_has_no_end_of_file_inserted() -> None:
    counts_eof = ["sh", "-c", f"stty raw; echo go; head -c {LONG} | od -c | grep -c 004"]
    with ManagedProcess(counts_eof, pty=True) as proc:
        proc.expect("go", timeout=10)
        proc.write("r" * LONG, timeout=10)
        found = proc.expect(re.compile(r"(\d+)\r?\n"), timeout=10)
    assert found.match.group(1) == "0"
