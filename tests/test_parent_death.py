"""kill_on_parent_death: children that die with the process that started them (Linux)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import pid_alive, python, wait_gone

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG")

ROOT = Path(__file__).resolve().parent.parent

# Each parent starts `sh -c 'echo $$ > PIDFILE; exec sleep 60'` with one of the APIs, then blocks.
PARENTS = {
    "run": "procfound.run(CHILD, kill_on_parent_death=KILL)",
    "stream": "list(procfound.stream(CHILD, kill_on_parent_death=KILL))",
    "async_run-asyncio": (
        "import anyio; anyio.run(lambda: procfound.async_run(CHILD, kill_on_parent_death=KILL))"
    ),
    "async_run-trio": (
        "import anyio; anyio.run(lambda: procfound.async_run(CHILD, kill_on_parent_death=KILL),"
        " backend='trio')"
    ),
    "managed": (
        "p = procfound.ManagedProcess(CHILD, kill_on_parent_death=KILL); p.launch();"
        " import time; time.sleep(60)"
    ),
}


def _start_parent(api: str, pidfile: Path, kill: bool) -> subprocess.Popen[bytes]:
    code = (
        "import procfound\n"
        f"CHILD = ['sh', '-c', 'echo $$ > {pidfile}; exec sleep 60']\n"
        f"KILL = {kill}\n" + PARENTS[api]
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(python(code), env=env, stdout=subprocess.DEVNULL)


def _read_pid(pidfile: Path) -> int:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        text = pidfile.read_text().strip() if pidfile.exists() else ""
        if text:
            return int(text)
        time.sleep(0.02)
    raise AssertionError("the child never wrote its pid")


@pytest.mark.parametrize("api", sorted(PARENTS))
def test_child_dies_within_a_second_of_its_parent_being_killed(api: str, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    parent = _start_parent(api, pidfile, kill=True)
    child = 0
    try:
        child = _read_pid(pidfile)
        assert pid_alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert wait_gone(child, 1.0), f"{api}: child {child} outlived its SIGKILLed parent"
    finally:
        parent.kill()
        parent.wait(10)
        if child and pid_alive(child):  # only when the assertion above failed
            os.kill(child, signal.SIGKILL)


def test_without_the_option_the_child_survives_its_parent(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    parent = _start_parent("run", pidfile, kill=False)
    child = 0
    try:
        child = _read_pid(pidfile)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        time.sleep(1.0)
        assert pid_alive(child), "without kill_on_parent_death the orphan keeps running"
    finally:
        parent.kill()
        parent.wait(10)
        if child:
            os.kill(child, signal.SIGKILL)
            wait_gone(child, 5)


def test_a_command_with_the_option_still_runs_normally() -> None:
    import procfound

    result = procfound.run(["sh", "-c", 'echo "$1|$2"', "x", "a b", "c"], kill_on_parent_death=True)
    assert result.stdout == "a b|c\n"
    assert result.args == ["sh", "-c", 'echo "$1|$2"', "x", "a b", "c"]
