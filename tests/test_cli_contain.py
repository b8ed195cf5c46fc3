"""The CLI's --contain, --stop-signal and --kill-grace (both commands)."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest
from conftest import PY, pid_alive, wait_gone
from test_cli import cli

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


def daemon(directory: Path, then: str = "sleep 0.5") -> list[str]:
    """A command that leaves a session-leading sleep behind and writes its pid."""
    script = (
        'setsid sh -c \'echo $$ > "$0/esc.tmp"; mv "$0/esc.tmp" "$0/esc"; exec sleep 300\' "$0" & '
        + then
    )
    return ["sh", "-c", script, str(directory)]


def escapee(directory: Path) -> int:
    deadline = time.monotonic() + 10
    while not (directory / "esc").exists():
        assert time.monotonic() < deadline, "the escapee never wrote its pid"
        time.sleep(0.01)
    return int((directory / "esc").read_text())


def assert_left_running_then_kill(pid: int) -> None:
    """The documented limit of contain="group": the escapee lives on (cleaned up here)."""
    try:
        assert pid_alive(pid)
    finally:
        os.kill(pid, signal.SIGKILL)


def test_run_stops_the_whole_tree_by_default(tmp_path: Path) -> None:
    done = cli("run", "--", *daemon(tmp_path))
    assert done.returncode == 0, done.stderr
    assert wait_gone(escapee(tmp_path), 3)


def test_run_contain_group_leaves_an_escapee_as_documented(tmp_path: Path) -> None:
    done = cli("run", "--contain", "group", "--", *daemon(tmp_path))
    assert done.returncode == 0, done.stderr
    assert_left_running_then_kill(escapee(tmp_path))


def test_procfound_contain_in_the_environment_sets_the_clis_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROCFOUND_CONTAIN", "group")
    done = cli("run", "--", *daemon(tmp_path))
    assert done.returncode == 0, done.stderr
    assert_left_running_then_kill(escapee(tmp_path))


def test_wait_for_stops_the_whole_tree_when_it_ends(tmp_path: Path) -> None:
    cmd = daemon(tmp_path, then='until [ -e "$0/esc" ]; do sleep 0.01; done; echo ready; sleep 60')
    done = cli("wait-for", "ready", "--", *cmd)
    assert done.returncode == 0, done.stderr
    assert wait_gone(escapee(tmp_path), 3)


REPORTER = (
    "import signal, sys, time\n"
    "def report(sig, frame):\n"
    "    print(signal.Signals(sig).name, flush=True)\n"
    "    if '--deaf' not in sys.argv: sys.exit(0)\n"
    "for s in (signal.SIGTERM, signal.SIGINT): signal.signal(s, report)\n"
    "print('ready', flush=True)\n"
    "while True: time.sleep(0.05)\n"
)


@pytest.mark.parametrize("spelling", ["INT", "SIGINT", "2", "int"])
def test_run_stop_signal_is_sent_first_on_timeout(spelling: str) -> None:
    done = cli("run", "--timeout", "1", "--stop-signal", spelling, "--", PY, "-c", REPORTER)
    assert done.returncode == 124
    assert done.stdout.split() == ["ready", "SIGINT"]


def test_run_kill_grace_zero_kills_at_once() -> None:
    started = time.monotonic()
    done = cli("run", "--timeout", "1", "--kill-grace", "0", "--", PY, "-c", REPORTER)
    assert done.returncode == 124
    assert done.stdout.split() == ["ready"]  # no SIGTERM was ever sent
    assert time.monotonic() - started < 10


def test_run_kill_grace_is_waited_for_a_deaf_command() -> None:
    started = time.monotonic()
    done = cli("run", "--timeout", "0.5", "--kill-grace", "1.5", "--", PY, "-c", REPORTER, "--deaf")
    elapsed = time.monotonic() - started
    assert done.returncode == 124
    assert done.stdout.split() == ["ready", "SIGTERM"]
    assert elapsed >= 1.8


@pytest.mark.parametrize("command", ["run", "wait-for"])
@pytest.mark.parametrize(
    "option",
    [
        ["--contain", "forest"],
        ["--stop-signal", "BOGUS"],
        ["--stop-signal", "0"],
        ["--kill-grace", "-1"],
        ["--kill-grace", "inf"],
        ["--kill-grace", "nan"],
    ],
)
def test_bad_containment_values_are_usage_errors(command: str, option: list[str]) -> None:
    parts = ["x"] if command == "wait-for" else []
    done = cli(command, *option, *parts, "--", "true")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
