"""The pytest plugin (``managed_process`` fixtures), exercised in pytest subprocesses (pytester).

Each inner session runs in its own interpreter, so what it leaves behind is seen from here: the
services it started record their pids in files, and this test checks they are gone.
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import pid_alive, wait_gone

from procfound.pytest_plugin import MARKER_VARIABLE

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc checks")

# Shared by the inner test files: a free port and an HTTP service that records its pid.
HELPERS = """
import os, socket, sys, urllib.request
from pathlib import Path

from procfound import ManagedProcess

PIDS = Path(os.environ["PIDS_DIR"])


def free_port():
    with socket.create_server(("127.0.0.1", 0)) as server:
        return server.getsockname()[1]


def web_server(port):
    return [sys.executable, "-m", "http.server", "-b", "127.0.0.1", str(port)]


def record(name, pid):
    (PIDS / name).write_text(str(pid))
"""


def run_inner(
    pytester: pytest.Pytester, tmp_path: Path, source: str, *args: str
) -> pytest.RunResult:
    pids = tmp_path / "pids"
    pids.mkdir(exist_ok=True)
    pytester.makepyfile(helpers=HELPERS)
    pytester.makepyfile(test_inner=textwrap.dedent(source))
    os.environ["PIDS_DIR"] = str(pids)  # the inner session inherits our environment
    try:
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=120)
    finally:
        del os.environ["PIDS_DIR"]


def recorded_pids(tmp_path: Path) -> dict[str, int]:
    return {path.name: int(path.read_text()) for path in (tmp_path / "pids").iterdir()}


def test_service_is_ready_when_returned_and_gone_after_the_session(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    result = run_inner(
        pytester,
        tmp_path,
        """
        from helpers import *

        def test_web(managed_process):
            port = free_port()
            web = managed_process(
                web_server(port), http=f"http://127.0.0.1:{port}/", stderr_relay=False
            )
            assert isinstance(web, ManagedProcess)
            assert web.is_running()
            record("web", web.pid)
            # Ready means ready: the first real request succeeds.
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
                assert answer.status == 200

        def test_with_a_grandchild(managed_process, tmp_path):
            script = f"sleep 60 & echo $! > {tmp_path}/grandchild; echo up; exec sleep 60"
            service = managed_process(["sh", "-c", script], output="up")
            record("sh", service.pid)
            record("grandchild", int((tmp_path / "grandchild").read_text()))
        """,
    )
    result.assert_outcomes(passed=2)
    pids = recorded_pids(tmp_path)
    assert set(pids) == {"web", "sh", "grandchild"}
    for name, pid in pids.items():
        assert wait_gone(pid, 3), f"{name} ({pid}) outlived the session"


def test_survivor_is_an_error_and_is_killed(pytester: pytest.Pytester, tmp_path: Path) -> None:
    # A process that carries the service's marker but is out of its reach (its own session, not
    # its child): the teardown must find it, kill it and report it.
    result = run_inner(
        pytester,
        tmp_path,
        f"""
        import subprocess
        from helpers import *

        def test_leaves_a_daemon(managed_process):
            service = managed_process(["sh", "-c", "echo up; exec sleep 60"], output="up")
            env = dict(os.environ, {MARKER_VARIABLE}=service.env["{MARKER_VARIABLE}"])
            daemon = subprocess.Popen(["sleep", "60"], env=env, start_new_session=True)
            record("daemon", daemon.pid)
        """,
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_leaves_a_daemon*"])
    result.stdout.fnmatch_lines(["*process * (sleep 60) outlived its service's teardown*"])
    daemon = recorded_pids(tmp_path)["daemon"]
    assert wait_gone(daemon, 3)


@pytest.mark.parametrize("contain", ["tree", "group"])
def test_escaped_grandchild_is_contained_or_reported(
    pytester: pytest.Pytester, tmp_path: Path, contain: str
) -> None:
    # A real daemon: the grandchild calls setsid, so the process group does not reach it. With
    # contain="tree" (the default) the service's stop ends it; with contain="group" the teardown
    # finds it, kills it and reports it. Either way it is not left running.
    result = run_inner(
        pytester,
        tmp_path,
        f"""
        from helpers import *

        def test_daemonising_service(managed_process, tmp_path):
            # "up" only once the daemon has its own session (field 6 of /proc/PID/stat): a
            # teardown that came sooner would still find it in the group, and kill it there.
            script = (
                f"setsid sleep 60 & echo $! > {{tmp_path}}/escaped; "
                "until [ $(cut -d' ' -f6 /proc/$!/stat) = $! ]; do sleep 0.01; done; "
                "echo up; exec sleep 60"
            )
            managed_process(["sh", "-c", script], output="up", contain={contain!r})
            record("escaped", int((tmp_path / "escaped").read_text()))
        """,
    )
    if contain == "tree":
        result.assert_outcomes(passed=1)
    else:
        result.assert_outcomes(passed=1, errors=1)
        result.stdout.fnmatch_lines(["*process * (sleep 60) outlived its service's teardown*"])
    assert wait_gone(recorded_pids(tmp_path)["escaped"], 3)


def test_failed_test_report_shows_the_services_recent_output(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    result = run_inner(
        pytester,
        tmp_path,
        """
        from helpers import *

        CHATTY = (
            "import sys, time\\n"
            "print('service-stdout-marker', flush=True)\\n"
            "sys.stderr.write('service-stderr-marker\\\\n'); sys.stderr.flush()\\n"
            "time.sleep(60)\\n"
        )

        def test_fails(managed_process):
            service = managed_process(
                [sys.executable, "-c", CHATTY], output="service-stdout-marker",
                stderr_relay=False,
            )
            record("chatty", service.pid)
            import time
            deadline = time.monotonic() + 5
            while "service-stderr-marker" not in service.stderr_tail:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            assert False, "the test failed"

        def test_passes(managed_process):
            managed_process(["sh", "-c", "echo quiet-marker; exec sleep 60"], output="quiet")
        """,
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*procfound service * -c * (pid *): recent stdout*",
            "service-stdout-marker",
            "*procfound service * -c * (pid *): recent stderr*",
            "service-stderr-marker",
        ]
    )
    assert "quiet-marker" not in result.stdout.str()  # a passing test's service is not shown
    assert wait_gone(recorded_pids(tmp_path)["chatty"], 3)


def test_service_that_dies_before_ready_fails_the_test_with_its_output(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    result = run_inner(
        pytester,
        tmp_path,
        """
        import time
        from helpers import *

        def test_dies(managed_process):
            code = "import sys; print('cannot-bind-marker', flush=True); sys.exit(4)"
            start = time.monotonic()
            try:
                managed_process([sys.executable, "-c", code], port=free_port(), timeout=30)
            finally:
                record("elapsed", int(time.monotonic() - start))
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Process exited with code 4 while waiting for*"])
    result.stdout.fnmatch_lines(["*cannot-bind-marker*"])
    assert recorded_pids(tmp_path)["elapsed"] < 10  # failed fast, not at the 30 s timeout


def test_module_scoped_service_is_shared_then_stopped(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    result = run_inner(
        pytester,
        tmp_path,
        """
        import pytest
        from helpers import *

        @pytest.fixture(scope="module")
        def web(managed_process_module):
            port = free_port()
            return managed_process_module(
                web_server(port), port=port, stderr_relay=False
            )

        def test_one(web):
            record("one", web.pid)

        def test_two(web):
            record("two", web.pid)
            assert web.is_running()
        """,
    )
    result.assert_outcomes(passed=2)
    pids = recorded_pids(tmp_path)
    assert pids["one"] == pids["two"]
    assert wait_gone(pids["one"], 3)


def test_session_scoped_service_is_shared_across_modules(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def shared(managed_process_session):
            return managed_process_session(["sh", "-c", "echo up; exec sleep 60"], output="up")
        """
    )
    pytester.makepyfile(
        test_other="""
        from helpers import record

        def test_other(shared):
            record("other", shared.pid)
        """
    )
    result = run_inner(
        pytester,
        tmp_path,
        """
        from helpers import *

        def test_first(shared):
            record("first", shared.pid)
        """,
    )
    result.assert_outcomes(passed=2)
    pids = recorded_pids(tmp_path)
    assert pids["first"] == pids["other"]
    assert not pid_alive(pids["first"]) or wait_gone(pids["first"], 3)


def test_fixture_waits_for_a_custom_check(pytester: pytest.Pytester, tmp_path: Path) -> None:
    result = run_inner(
        pytester,
        tmp_path,
        """
        from helpers import *

        def test_checked(managed_process, tmp_path):
            flag = tmp_path / "up"
            service = managed_process(
                ["sh", "-c", f"sleep 0.2; touch {flag}; exec sleep 60"], check=flag.exists
            )
            assert flag.exists()
            record("checked", service.pid)
        """,
    )
    result.assert_outcomes(passed=1)
    assert wait_gone(recorded_pids(tmp_path)["checked"], 3)
