"""Adversarial edges of ``pty=True`` (issue 26): the terminal's output shown as it comes when
nobody reads it any more, and the seams of the terminal with the CLI and other options."""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
from functools import partial

import anyio
import pytest
from conftest import python, wait_gone
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
