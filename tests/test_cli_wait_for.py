"""`procfound wait-for`: start a command, wait for its handshake, stop it cleanly."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import pid_alive, wait_gone

HANDSHAKE = "1|6|tcp|127.0.0.1:4242|grpc"


def wait_for(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "procfound", "wait-for", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def test_prints_the_handshake_and_exits_0_then_stops_the_command(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    script = f"echo $$ > {pidfile}; sleep 0.3; echo '{HANDSHAKE}'; exec sleep 30"
    start = time.monotonic()
    done = wait_for("tcp", "grpc", "--timeout", "10", "--grace", "2", "--", "sh", "-c", script)
    assert done.returncode == 0, done.stderr
    assert done.stdout == HANDSHAKE + "\n"
    assert time.monotonic() - start < 10
    assert wait_gone(int(pidfile.read_text()), 3)


def test_timeout_exits_124_with_a_message_and_stops_the_command(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    start = time.monotonic()
    done = wait_for(
        "never", "--timeout", "1", "--", "sh", "-c", f"echo $$ > {pidfile}; exec sleep 30"
    )
    assert done.returncode == 124
    assert "did not appear within 1s" in done.stderr
    assert time.monotonic() - start < 10
    assert wait_gone(int(pidfile.read_text()), 3)


def test_early_exit_exits_1_with_a_clear_message() -> None:
    done = wait_for("never", "--", "sh", "-c", "echo something else; exit 3")
    assert done.returncode == 1
    assert "Process exited with code 3" in done.stderr


def test_missing_command_or_parts_is_a_usage_error() -> None:
    assert wait_for("tcp").returncode == 2
    assert wait_for("--", "true").returncode == 2


def test_words_after_the_first_double_dash_are_the_commands() -> None:
    done = wait_for("--timeout", "10", "x", "--", "echo", "x", "--", "--timeout", "1", "y")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "x -- --timeout 1 y\n"


def test_missing_program_exits_127_with_a_one_line_message() -> None:
    done = wait_for("ready", "--", "missing-program-xyz")
    assert done.returncode == 127, done.stderr
    assert "missing-program-xyz" in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr


def test_program_that_cannot_be_executed_exits_126(tmp_path: Path) -> None:
    not_executable = tmp_path / "not-executable"
    not_executable.write_text("#!/bin/sh\necho ready\n")
    done = wait_for("ready", "--", str(not_executable))
    assert done.returncode == 126, done.stderr
    assert str(not_executable) in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr


@pytest.mark.parametrize(
    ("words", "mentions"),
    [
        (["--timeout", "nan"], "nan"),
        (["--timeout", "-1"], "-1"),
        (["--timeout", "soon"], "soon"),
        (["--grace", "nan"], "nan"),
        (["--grace", "-2"], "-2"),
        (["--grace", "inf"], "inf"),
        (["--keep=yes"], "--keep"),
    ],
)
def test_bad_option_values_are_one_line_usage_errors(words: list[str], mentions: str) -> None:
    done = wait_for(*words, "ready", "--", "echo", "ready")
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""  # the command did not run
    assert "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert mentions in done.stderr


def test_keep_into_a_closed_pipe_ends_quietly_and_stops_the_command() -> None:
    keep = [sys.executable, "-m", "procfound", "wait-for", "ready", "--keep", "--grace", "1"]
    command = shlex.join([*keep, "--", "sh", "-c", 'echo "ready $$"; exec yes'])
    done = subprocess.run(
        ["sh", "-c", f'{{ {command}; echo "procfound-exit=$?" >&2; }} | head -c 64'],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert "Traceback" not in done.stderr
    assert re.search(r"^procfound-exit=141$", done.stderr, re.M), done.stderr
    child = int(done.stdout.split()[1])
    assert wait_gone(child, 3), "the command outlived the closed pipe"


def test_keep_stays_quiet_after_the_command_closes_its_stdout(tmp_path: Path) -> None:
    # Blank lines are relayed; the end of the output is not an endless stream of them.
    pidfile = tmp_path / "pid"
    script = f"echo $$ > {pidfile}; echo ready; echo; echo after; exec >&-; exec sleep 30"
    argv = [sys.executable, "-m", "procfound", "wait-for", "ready", "--keep", "--"]
    proc = subprocess.Popen(
        [*argv, "sh", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        assert proc.stdout.readline() == "\n"
        assert proc.stdout.readline() == "after\n"
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
        assert out == ""
        assert proc.returncode == 0, err
        assert wait_gone(int(pidfile.read_text()), 3)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        if pidfile.exists():
            pid = int(pidfile.read_text())
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_keep_relays_output_until_ctrl_c_then_stops_gracefully(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    script = (
        f"echo $$ > {pidfile}; echo ready; "
        "trap 'echo got-term; exit 0' TERM; "
        "while true; do echo tick; sleep 0.2; done"
    )
    argv = [sys.executable, "-m", "procfound", "wait-for", "ready", "--keep", "--"]
    proc = subprocess.Popen(
        [*argv, "sh", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        assert proc.stdout.readline() == "tick\n"  # relayed while attached
        child = int(pidfile.read_text())
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        assert "stopping the command" in err
        assert wait_gone(child, 3)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        if pidfile.exists():
            pid = int(pidfile.read_text())
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


# Runs the CLI in a fresh interpreter and reports, on the last line of stderr, each time its
# main thread asked procfound whether the command still runs (a profile hook changes nothing
# the CLI does).
COUNT_STATE_PEEKS = textwrap.dedent(
    """
    import sys
    from procfound import cli

    peeks = []

    def hook(frame, event, arg):
        code = frame.f_code
        if event == "call" and code.co_name in ("is_running", "poll", "returncode"):
            if "procfound" in code.co_filename:
                peeks.append(code.co_name)

    sys.setprofile(hook)
    try:
        code = cli.main(sys.argv[1:])
    finally:
        sys.setprofile(None)
    print(len(peeks), file=sys.stderr)
    sys.exit(code)
    """
)


def test_keep_waits_for_the_exit_of_a_command_that_closed_its_stdout() -> None:
    # The output has ended but the command runs on for a second: --keep stays attached by
    # waiting for its exit, not by asking every 0.2 s whether it still runs, and ends with it.
    script = "echo ready; exec >&-; sleep 1.5"
    argv = [sys.executable, "-c", COUNT_STATE_PEEKS, "wait-for", "ready", "--keep"]
    started = time.monotonic()
    done = subprocess.run(
        [*argv, "--", "sh", "-c", script], capture_output=True, text=True, timeout=30
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ready\n"
    assert elapsed >= 1.5, "--keep ended before the command did"
    peeks = int(done.stderr.splitlines()[-1])
    assert peeks <= 1, f"the CLI polled the command's state {peeks} times while it ran"
