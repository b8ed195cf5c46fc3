"""Who answers a readiness probe (issue #22 items 13 and 14): readiness means the child's own
tree answers, and the probes' messages name what went wrong.

A port or unix socket held by another process (a socket of this test, or another Python child)
fails the wait at once, naming the holder; one held by the child, a grandchild or a daemonised
descendant is ready. Before the child starts, the pytest fixture and ``procfound wait-for``
refuse a port or socket that answers already. Async tests run under asyncio and trio; the sync
``wait_ready`` from plain code and inside running loops (``sync_call``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SyncCall, pid_alive, python, wait_gone

from procfound import (
    ManagedProcess,
    ProcessError,
    ProcessTimeoutError,
    StateError,
    ValidationError,
    wait_for_http,
    wait_for_port,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc checks")


def our_name() -> str:
    """This process's name as /proc shows it now (a test runner may rename its workers)."""
    return Path(f"/proc/{os.getpid()}/comm").read_text().strip() if sys.platform == "linux" else ""


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as server:
        return int(server.getsockname()[1])


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port this test process listens on: "another server" for the child."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield int(server.getsockname()[1])


def listen_code(port: int, pidfile: Path | None = None) -> str:
    record = f"open({str(pidfile)!r}, 'w').write(str(os.getpid()))" if pidfile else "pass"
    return (
        "import os, socket, time\n"
        f"server = socket.create_server(('127.0.0.1', {port}))\n"
        f"{record}\n"
        "time.sleep(60)\n"
    )


HTTP_SERVER = """
import http.server, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def _check_named(error: ProcessError, holder: int, elapsed: float) -> None:
    assert not isinstance(error, ProcessTimeoutError)
    assert error.code == "PROBE_ANSWERED_BY_OTHER"
    assert f"process {holder} (" in error.message, error.message
    assert "not this process or one of its descendants" in error.message
    assert elapsed < 5, f"took {elapsed:.1f}s: not fail-fast"


# --------------------------------------------------------------------------------------------
# Another server answers: the wait fails at once, naming it
# --------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_port_held_by_another_server_fails_fast_naming_it(held_port: int) -> None:
    async with ManagedProcess(["sleep", "30"]) as proc:
        start = time.monotonic()
        with pytest.raises(ProcessError) as info:
            await proc.await_ready(port=held_port, timeout=20)
        _check_named(info.value, os.getpid(), time.monotonic() - start)
        assert f"({our_name()})" in info.value.message
        assert proc.is_running()  # the service itself is left to the caller's `with`
        with pytest.raises(ProcessError, match="is answered by"):
            await wait_for_port(proc, held_port, timeout=20)


def test_port_held_by_another_server_fails_fast_from_sync_code(
    sync_call: SyncCall, held_port: int
) -> None:
    with ManagedProcess(["sleep", "30"]) as proc:
        start = time.monotonic()
        with pytest.raises(ProcessError) as info:
            sync_call(proc.wait_ready, port=held_port, timeout=20)
        _check_named(info.value, os.getpid(), time.monotonic() - start)


@pytest.mark.anyio
async def test_port_held_by_another_child_names_that_child(tmp_path: Path) -> None:
    port, pidfile = free_port(), tmp_path / "other.pid"
    with subprocess.Popen(python(listen_code(port, pidfile))) as other:
        try:
            deadline = time.monotonic() + 20
            while not pidfile.exists() or not pidfile.read_text():
                assert time.monotonic() < deadline, "the other server never started"
                time.sleep(0.01)
            async with ManagedProcess(["sleep", "30"]) as proc:
                start = time.monotonic()
                with pytest.raises(ProcessError) as info:
                    await proc.await_ready(port=("127.0.0.1", port), timeout=20)
                _check_named(info.value, other.pid, time.monotonic() - start)
        finally:
            other.kill()


@pytest.mark.anyio
async def test_http_probe_answered_by_another_server_fails_fast() -> None:
    port = free_port()
    with subprocess.Popen([*python(HTTP_SERVER), str(port)]) as other:
        try:
            with socket.socket() as client:  # wait until it listens
                deadline = time.monotonic() + 20
                while client.connect_ex(("127.0.0.1", port)) != 0:
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
            async with ManagedProcess(["sleep", "30"]) as proc:
                start = time.monotonic()
                with pytest.raises(ProcessError) as info:
                    await wait_for_http(proc, f"http://127.0.0.1:{port}/", timeout=20)
                _check_named(info.value, other.pid, time.monotonic() - start)
        finally:
            other.kill()


@pytest.mark.anyio
async def test_unix_socket_held_by_another_process_fails_fast(tmp_path: Path) -> None:
    path = tmp_path / "other.sock"
    with socket.socket(socket.AF_UNIX) as other:
        other.bind(str(path))
        other.listen()
        async with ManagedProcess(["sleep", "30"]) as proc:
            start = time.monotonic()
            with pytest.raises(ProcessError) as info:
                await proc.await_ready(path=path, timeout=20)
            _check_named(info.value, os.getpid(), time.monotonic() - start)
    assert f"the unix socket {path}" in info.value.message


@pytest.mark.anyio
async def test_a_socket_file_nobody_listens_on_is_not_ready(tmp_path: Path) -> None:
    path = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(str(path))  # left behind: bound, never listening
    async with ManagedProcess(["sleep", "30"]) as proc:
        with pytest.raises(ProcessTimeoutError) as info:
            await proc.await_ready(path=path, timeout=0.5)
    assert "nobody listens" in info.value.message


def _ipv6_dual_stack() -> bool:
    try:
        socket.create_server(("::", 0), family=socket.AF_INET6, dualstack_ipv6=True).close()
    except (OSError, ValueError):
        return False
    return True


@pytest.mark.anyio
@pytest.mark.parametrize("bind", ["0.0.0.0", "::"])
async def test_wildcard_listener_is_found_for_a_loopback_probe(bind: str) -> None:
    if bind == "::" and not _ipv6_dual_stack():
        pytest.skip("no dual-stack IPv6 here")
    family = socket.AF_INET6 if bind == "::" else socket.AF_INET
    with socket.create_server((bind, 0), family=family, dualstack_ipv6=bind == "::") as other:
        port = other.getsockname()[1]
        async with ManagedProcess(["sleep", "30"]) as proc:
            with pytest.raises(ProcessError) as info:
                await proc.await_ready(port=port, timeout=20)
    _check_named(info.value, os.getpid(), 0)


def test_proc_net_tcp_fallback_lists_what_sock_diag_lists() -> None:
    # sock_diag is the fast path; /proc/net/tcp and tcp6 (its fallback) must agree with it.
    from procfound.engine import listeners

    with socket.create_server(("127.0.0.1", 0)) as server:
        port, inode = server.getsockname()[1], os.fstat(server.fileno()).st_ino
        diag = listeners._diag_listening(socket.AF_INET)
        proc = listeners._proc_listening()
    assert diag is not None
    assert proc is not None
    ours = [entry for entry in diag if entry[1] == port]
    assert [(str(address), listener.inode) for address, _, listener in ours] == [
        ("127.0.0.1", inode)
    ]
    assert ours[0][2].uid == os.geteuid()
    assert [entry for entry in proc if entry[1] == port] == ours


# --------------------------------------------------------------------------------------------
# The child's own tree answers: ready
# --------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_port_held_by_a_grandchild_is_ready() -> None:
    port = free_port()
    # "; exit" keeps sh from exec'ing Python: the listener is the child's child.
    script = f'{sys.executable} -c "$1"; exit'
    async with ManagedProcess(["sh", "-c", script, "sh", listen_code(port)]) as proc:
        await proc.await_ready(port=port, timeout=20)
        assert proc.is_running()


def test_http_served_by_a_grandchild_is_ready_from_sync_code(sync_call: SyncCall) -> None:
    port = free_port()
    script = f'{sys.executable} -c "$1" {port}; exit'
    with ManagedProcess(["sh", "-c", script, "sh", HTTP_SERVER]) as proc:
        sync_call(proc.wait_ready, http=f"http://127.0.0.1:{port}/", port=port, timeout=20)


@pytest.mark.anyio
async def test_unix_socket_of_a_grandchild_is_ready(tmp_path: Path) -> None:
    path = tmp_path / "service.sock"
    code = (
        "import socket, time\n"
        f"s = socket.socket(socket.AF_UNIX); s.bind({str(path)!r}); s.listen()\n"
        "time.sleep(60)\n"
    )
    async with ManagedProcess(["sh", "-c", f'{sys.executable} -c "$1"; exit', "sh", code]) as p:
        await p.await_ready(path=path, timeout=20)


@pytest.mark.anyio
async def test_datagram_unix_socket_of_the_child_is_ready(tmp_path: Path) -> None:
    path = tmp_path / "events.sock"
    code = f"""
        import socket, time
        time.sleep(0.2)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind({str(path)!r})
        time.sleep(60)
    """
    async with ManagedProcess(python(code)) as proc:
        await proc.await_ready(path=path, timeout=20)


DAEMON = """
import os, socket, sys, time
port, pidfile = int(sys.argv[1]), sys.argv[2]
if os.fork():
    os._exit(0)
os.setsid()  # a new session and group: only the containment box still knows it
if os.fork():
    os._exit(0)
server = socket.create_server(("127.0.0.1", port))
open(pidfile, "w").write(str(os.getpid()))
time.sleep(60)
"""


@pytest.mark.anyio
@pytest.mark.parametrize("contain", ["tree", "group"])
async def test_port_of_a_daemonised_descendant_is_ready(contain: str, tmp_path: Path) -> None:
    # With a box ("tree") the daemon is a member; without one ("group") a process that started
    # after the child cannot be told from an escaped descendant, so it is not refused.
    port, pidfile = free_port(), tmp_path / "daemon.pid"
    script = f'{sys.executable} -c "$1" {port} {pidfile}; exec sleep 60'
    try:
        async with ManagedProcess(["sh", "-c", script, "sh", DAEMON], contain=contain) as proc:
            await proc.await_ready(port=port, timeout=20)
    finally:
        if pidfile.exists():
            daemon = int(pidfile.read_text())
            if contain == "group" and pid_alive(daemon):
                os.kill(daemon, signal.SIGKILL)  # it left the group: ours to stop
            assert wait_gone(daemon, 5)


# --------------------------------------------------------------------------------------------
# Before the child starts: the fixture and the CLI refuse what answers already
# --------------------------------------------------------------------------------------------


def test_fixture_refuses_a_port_that_answers_before_the_service_starts(
    managed_process: Any, held_port: int, tmp_path: Path
) -> None:
    started = tmp_path / "started"
    with pytest.raises(StateError) as info:
        managed_process(["sh", "-c", f"touch {started}; exec sleep 30"], port=held_port)
    assert info.value.code == "PROBE_ALREADY_ANSWERED"
    assert f"127.0.0.1:{held_port} already answers before" in info.value.message
    assert f"process {os.getpid()} ({our_name()}) holds it" in info.value.message
    time.sleep(0.2)
    assert not started.exists(), "the service was started anyway"


def test_fixture_refuses_a_unix_socket_that_answers_before_the_service_starts(
    managed_process: Any, tmp_path: Path
) -> None:
    path = tmp_path / "taken.sock"
    with socket.socket(socket.AF_UNIX) as other:
        other.bind(str(path))
        other.listen()
        with pytest.raises(StateError, match="already answers before"):
            managed_process(["sleep", "30"], path=path)


def test_fixture_checks_probe_arguments_before_the_service_starts(
    managed_process: Any, tmp_path: Path
) -> None:
    started = tmp_path / "started"
    with pytest.raises(ValidationError):
        managed_process(["sh", "-c", f"touch {started}; exec sleep 30"], port=("😀", 1))
    time.sleep(0.2)
    assert not started.exists()


def wait_for(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "procfound", "wait-for", *args]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


def test_cli_refuses_a_port_that_answers_before_the_command_starts(
    held_port: int, tmp_path: Path
) -> None:
    started = tmp_path / "started"
    done = wait_for("--port", str(held_port), "--", "sh", "-c", f"touch {started}; sleep 30")
    assert done.returncode == 1, done.stderr
    assert f"127.0.0.1:{held_port} already answers before" in done.stderr
    assert f"process {os.getpid()} ({our_name()}) holds it" in done.stderr
    assert "Traceback" not in done.stderr
    assert not started.exists()


# --------------------------------------------------------------------------------------------
# Messages (item 14): the resolver's reason, no URL password, a server that hangs up
# --------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_unresolvable_host_names_the_host_and_the_resolvers_reason() -> None:
    async with ManagedProcess(["sleep", "30"]) as proc:
        with pytest.raises(ProcessTimeoutError) as info:
            await wait_for_port(proc, 8080, host="no-such-host.invalid", timeout=1.5)
    message = info.value.message
    assert "no-such-host.invalid could not be resolved: " in message, message
    assert "Unknown error" not in message


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:secret@host/", "http://user:***@host/"),
        ("http://user:s%40cret:more@host:80/p?q=1", "http://user:***@host:80/p?q=1"),
        ("http://:secret@host/", "http://:***@host/"),
        ("http://user@host/", "http://user@host/"),
        ("http://host/a:b@c", "http://host/a:b@c"),
        ("not a url", "not a url"),
        ("http://u:secret@[::1", "http://u:***@[::1"),
    ],
)
def test_redact_url_hides_only_the_password(url: str, shown: str) -> None:
    from procfound.services.probes import redact_url

    assert redact_url(url) == shown


@pytest.mark.anyio
async def test_url_password_never_appears_in_errors() -> None:
    port = free_port()  # nobody listens: the wait times out naming the URL
    async with ManagedProcess(["sleep", "30"]) as proc:
        with pytest.raises(ProcessTimeoutError) as info:
            await wait_for_http(proc, f"http://user:secret@127.0.0.1:{port}/", timeout=0.3)
    assert "user:***@127.0.0.1" in info.value.message
    for bad in (
        "https://user:secret@127.0.0.1/",
        "http://user:secret@127.0.0.1:99999/",
        "http://user:secret@/",
        "http://user:secret@127.0.0.1/a b",
    ):
        with pytest.raises(ValidationError) as refused:
            await proc.await_ready(http=bad, timeout=1)
        assert "secret" not in str(refused.value), refused.value
    assert "secret" not in str(info.value)


def test_url_password_never_appears_in_cli_output() -> None:
    port = free_port()
    url = f"http://user:secret@127.0.0.1:{port}/"
    done = wait_for("--http", url, "--timeout", "0.3", "--", "sleep", "5")
    assert done.returncode == 124, done.stderr
    assert "user:***@127.0.0.1" in done.stderr
    usage = wait_for("--http", "https://user:secret@127.0.0.1/", "--", "true")
    assert usage.returncode == 2
    for output in (done.stdout, done.stderr, usage.stdout, usage.stderr):
        assert "secret" not in output


@pytest.mark.anyio
@pytest.mark.parametrize("when", ["after reading the request", "at once"])
async def test_server_that_hangs_up_without_an_answer_is_named_so(when: str) -> None:
    port = free_port()
    read = "conn.recv(65536)" if when == "after reading the request" else "pass"
    code = f"""
        import socket
        server = socket.create_server(("127.0.0.1", {port}))
        while True:
            conn, _ = server.accept()
            {read}
            conn.close()
    """
    async with ManagedProcess(python(code)) as proc:
        with pytest.raises(ProcessTimeoutError) as info:
            await wait_for_http(proc, f"http://127.0.0.1:{port}/", timeout=1.0)
    message = info.value.message
    assert "closed the connection without an answer" in message, message
    assert "ConnectionClosed" not in message


# --------------------------------------------------------------------------------------------
# Unusable hosts and paths (item 12): a one-line usage error from the CLI
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "option",
    [
        ["--port", "\U0001f600:1"],
        ["--port", "\u00fc" * 70 + ":1"],
        ["--port", "a" * 70 + ".example:1"],
        ["--http", "http://\U0001f600:1/"],
        ["--http", "http://" + "\u00fc" * 70 + "/"],
    ],
)
def test_cli_unusable_host_is_a_one_line_usage_error(option: list[str]) -> None:
    done = wait_for(*option, "--", "true")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "not a valid host name" in done.stderr
