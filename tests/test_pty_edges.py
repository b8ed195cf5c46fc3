"""Adversarial edges of ``pty=True`` (issue 26): the terminal's output shown as it comes when
nobody reads it any more, and the seams of the terminal with the CLI and other options."""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys

import pytest
from conftest import python, wait_gone
from test_cli import cli_env, cli_into_closed_pipe

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
