"""ServiceGroup, the public class the pytest plugin's fixtures are made of, used directly.

Real children; what a service leaves behind (a daemon that left its process group) must be found
through the group's marker variable, killed and reported by ``stop_all``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from conftest import pid_alive, python, wait_gone

from procfound import ProcessError, ServiceGroup, ValidationError

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc checks")


def test_start_waits_for_the_check_and_stop_all_stops_every_service(tmp_path: Path) -> None:
    flag = tmp_path / "up"
    group = ServiceGroup("PROCFOUND_TEST_GROUP")
    first = group.start(["sh", "-c", f"sleep 0.2; touch {flag}; exec sleep 30"], check=flag.exists)
    assert flag.exists()
    second = group.start(
        python("print('ready', flush=True); import time; time.sleep(30)"), output="ready"
    )
    assert group.services == [first, second]
    assert group.stop_all() == []
    assert not first.is_running()
    assert not second.is_running()


def test_stop_all_kills_and_reports_what_escaped_the_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "daemon.pid"
    # A daemon that leaves the service's process group (setsid) with contain="group".
    daemon = (
        f"import os, time; os.setsid(); open({str(pid_file)!r}, 'w').write(str(os.getpid())); "
        "time.sleep(60)"
    )
    code = f"""
        import subprocess, sys, time
        subprocess.Popen([sys.executable, "-c", {daemon!r}])
        print("ready", flush=True)
        time.sleep(30)
    """
    group = ServiceGroup("PROCFOUND_TEST_GROUP")
    group.start(python(code), output="ready", contain="group")
    deadline = time.monotonic() + 10
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    escaped = int(pid_file.read_text())
    problems = group.stop_all()
    assert len(problems) == 1
    assert f"process {escaped} " in problems[0]
    assert "outlived its service's teardown" in problems[0]
    assert wait_gone(escaped)
    assert not pid_alive(escaped)


def test_recent_output_names_each_service_and_stream() -> None:
    group = ServiceGroup()
    code = "import sys, time; print('hello', flush=True); sys.stderr.write('oops'); time.sleep(30)"
    process = group.start(python(code), output="hello", stderr_relay=False)
    try:
        deadline = time.monotonic() + 5
        while len(sections := dict(group.recent_output())) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        shown = f"(pid {process.pid})"
        assert [title.split(shown)[1] for title in sections] == [
            ": recent stdout",
            ": recent stderr",
        ]
        assert list(sections.values()) == ["hello\n", "oops"]
    finally:
        assert group.stop_all() == []


def test_a_service_that_exits_before_it_is_ready_is_still_stopped() -> None:
    group = ServiceGroup()
    with pytest.raises(ProcessError):
        group.start(["sh", "-c", "exit 2"], check=lambda: False, timeout=10)
    assert len(group.services) == 1
    assert group.stop_all() == []


@pytest.mark.parametrize("variable", ["", "A=B", "A B", 3, "x\0"])
def test_a_bad_variable_is_refused(variable: object) -> None:
    with pytest.raises(ValidationError):
        ServiceGroup(variable)  # type: ignore[arg-type]
