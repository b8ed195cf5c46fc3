"""The stop policy: checked whole before anything starts, honoured end to end (issue #22, item 3).

Every signal the platform has is either honoured (the child gets it, then SIGKILL after the
grace) or refused with a ValidationError before any child exists; the API, the CLI and
ManagedProcess share one rule.
"""

from __future__ import annotations

import math
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from conftest import PY, SyncCall

from procfound import (
    ManagedProcess,
    ProcessTimeoutError,
    StopPolicy,
    ValidationError,
    async_run,
    run,
    stop_policy,
    stream,
)
from procfound.errors import describe_returncode

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGRTMIN"), reason="no real-time signals")

RT6 = int(signal.SIGRTMIN) + 6 if hasattr(signal, "SIGRTMIN") else 0
# A child that answers the real-time signal: it prints what it got and exits 0.
ANSWERS_RT = (
    "import signal, sys, time\n"
    f"signal.signal({RT6}, lambda n, f: (print('got', n, flush=True), sys.exit(0)))\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("SIGRTMIN+6", RT6),
        ("rtmin+6", RT6),
        (RT6, RT6),
        ("SIGRTMAX", int(getattr(signal, "SIGRTMAX", 0))),
        ("RTMAX-1", int(getattr(signal, "SIGRTMAX", 0)) - 1),
        ("term", signal.SIGTERM),
        (signal.SIGINT, signal.SIGINT),
        ("9", signal.SIGKILL),
    ],
)
def test_every_signal_of_the_platform_is_accepted(given: object, expected: int) -> None:
    policy = stop_policy(given, 1, "tree")
    assert policy == StopPolicy(expected, 1.0, "tree")
    assert type(policy.stop_signal) is int


@pytest.mark.parametrize(
    "bad",
    [
        0,
        32,
        33,
        65,
        -1,
        10**400,
        "9" * 5000,
        "SIGFOO",
        "RTMIN+99",
        "RTMIN+",
        "",
        "\0",
        "\ud800",
        1.5,
        True,
        None,
        b"TERM",
    ],
)
def test_a_signal_the_platform_cannot_send_is_refused_before_anything_starts(
    bad: object, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    with pytest.raises(ValidationError, match="stop_signal") as caught:
        run(["touch", str(marker)], stop_signal=bad)
    assert len(str(caught.value)) < 300
    assert not marker.exists()
    with pytest.raises(ValidationError):
        ManagedProcess(["touch", str(marker)], stop_signal=bad)
    with pytest.raises(ValidationError):
        stop_policy(bad)


@pytest.mark.parametrize(
    ("grace", "contain"),
    [
        (-1, None),
        (math.nan, None),
        (math.inf, None),
        (10**400, None),
        ("1", None),
        (1, "TREEE"),
        (1, 3),
        (1, ""),
    ],
)
def test_grace_and_level_are_checked_with_the_signal(grace: object, contain: object) -> None:
    with pytest.raises(ValidationError):
        stop_policy(signal.SIGTERM, grace, contain)


def test_the_environment_level_is_read_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROCFOUND_CONTAIN", " Group ")
    assert stop_policy(default_contain="tree").contain == "group"
    monkeypatch.setenv("PROCFOUND_CONTAIN", "everything")
    with pytest.raises(ValidationError, match="PROCFOUND_CONTAIN"):
        stop_policy()
    with pytest.raises(ValidationError, match="PROCFOUND_CONTAIN"):
        run(["true"])
    assert stop_policy(contain="tree").contain == "tree"  # the call's own level wins


def test_a_child_killed_by_a_real_time_signal_is_named() -> None:
    assert describe_returncode(-RT6) == f"{-RT6} (killed by SIGRTMIN+6)"


def test_run_stops_with_a_real_time_signal(sync_call: SyncCall) -> None:
    with pytest.raises(ProcessTimeoutError) as caught:
        sync_call(run, [PY, "-c", ANSWERS_RT], timeout=1, stop_signal=RT6, kill_grace=5)
    assert f"got {RT6}" in str(caught.value.stdout)
    assert caught.value.return_code == 0  # it exited on the signal, before SIGKILL


@pytest.mark.anyio
async def test_async_run_stops_with_a_real_time_signal() -> None:
    with pytest.raises(ProcessTimeoutError) as caught:
        await async_run([PY, "-c", ANSWERS_RT], timeout=1, stop_signal="SIGRTMIN+6", kill_grace=5)
    assert f"got {RT6}" in str(caught.value.stdout)


def test_stream_stops_with_a_real_time_signal() -> None:
    lines: list[str] = []
    with pytest.raises(ProcessTimeoutError):  # noqa: PT012 - the error comes after the lines
        for line in stream([PY, "-c", ANSWERS_RT], timeout=1, stop_signal=RT6, kill_grace=5):
            lines.append(line)
    assert lines[0] == "ready"
    assert f"got {RT6}" in lines


def test_managed_process_stops_with_a_real_time_signal() -> None:
    with ManagedProcess([PY, "-c", ANSWERS_RT], stop_signal=RT6, kill_grace=5) as proc:
        assert anyio.run(proc.read_line_async) == "ready"
        proc.terminate_gracefully(5)
        assert proc.returncode == 0  # the handler ran: it was not SIGKILLed


def _cli(*words: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "procfound", *words],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("sig", [str(RT6), "RTMIN+6", "sigrtmin+6"])
def test_the_cli_stops_with_a_real_time_signal(sig: str) -> None:
    done = _cli(
        "run",
        "--timeout",
        "1",
        "--stop-signal",
        sig,
        "--kill-grace",
        "5",
        "--",
        PY,
        "-c",
        ANSWERS_RT,
    )
    assert done.returncode == 124, done.stderr
    assert f"got {RT6}" in done.stdout


@pytest.mark.parametrize(
    "words",
    [
        ("--stop-signal", "32"),
        ("--stop-signal", "RTMIN+99"),
        ("--stop-signal", "FOO"),
        ("--contain", "everything"),
        ("--kill-grace", "inf"),
        ("--kill-grace", "-1"),
    ],
)
def test_the_cli_refuses_a_policy_as_a_usage_error(words: tuple[str, str], tmp_path: Path) -> None:
    marker = tmp_path / "started"
    done = _cli("run", *words, "--", "touch", str(marker))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert not marker.exists()


def test_the_cli_and_the_api_share_one_rule_for_levels() -> None:
    assert run(["true"], contain="TREE").returncode == 0
    done = _cli("run", "--contain", "TREE", "--", "true")
    assert done.returncode == 0, done.stderr
