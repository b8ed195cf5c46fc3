"""`procfound wait-for`: start a command, wait for its handshake, stop it cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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
