"""Readiness probes (wait_for_port, wait_for_http, wait_for_path) and ManagedProcess.wait_ready.

Real servers on 127.0.0.1 and ::1 (socket code and http.server, each a fresh ``python -c``) and a
unix-socket listener. Async tests run under asyncio and trio; the sync ``wait_ready`` is called
from plain code and from inside running asyncio and trio loops (``sync_call``). Every process is
stopped by a ``with``/``async with``, so the autouse ``no_leaks`` check stays meaningful.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import SyncCall, python, wait_gone

import procfound
from procfound import (
    ManagedProcess,
    ProcessError,
    ProcessTimeoutError,
    ValidationError,
    wait_for_http,
    wait_for_path,
    wait_for_port,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc checks")


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.create_server((host, 0), family=family) as server:
        return int(server.getsockname()[1])


def _ipv6_works() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        free_port("::1")
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not _ipv6_works(), reason="no IPv6 loopback here")


def listener(
    port: int, *, delay: float = 0.0, host: str = "127.0.0.1", before: str = ""
) -> list[str]:
    """A TCP listener on ``host:port`` after ``delay`` s (running ``before`` first); it never
    accepts (the kernel completes the handshake), and sleeps 60 s."""
    family = "socket.AF_INET6" if ":" in host else "socket.AF_INET"
    return python(
        f"""
        import os, socket, sys, time
        {before}
        time.sleep({delay})
        server = socket.create_server(({host!r}, {port}), family={family})
        sys.stdout.write("listening\\n")
        sys.stdout.flush()
        time.sleep(60)
        """
    )


def http_server(
    port: int, *, delay: float = 0.0, host: str = "127.0.0.1", fail_first: int = 0, touch: str = ""
) -> list[str]:
    """An http.server on ``host:port`` after ``delay`` s. It answers 503 to the first
    ``fail_first`` GETs, then 200 with a small body; ``touch`` is created once it listens."""
    family = "socket.AF_INET6" if ":" in host else "socket.AF_INET"
    return python(
        f"""
        import http.server, socket, sys, time
        time.sleep({delay})
        answered = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                global answered
                answered += 1
                status = 503 if answered <= {fail_first} else 200
                body = b"warming up" if status == 503 else b"hello"
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format, *args):
                sys.stderr.write("served " + (format % args) + "\\n")
                sys.stderr.flush()

        class Server(http.server.HTTPServer):
            address_family = {family}

        server = Server(({host!r}, {port}), Handler)
        if {touch!r}:
            open({touch!r}, "w").close()
        sys.stdout.write("serving\\n")
        sys.stdout.flush()
        server.serve_forever()
        """
    )


def unix_listener(path: Path, *, delay: float = 0.0) -> list[str]:
    return python(
        f"""
        import socket, time
        time.sleep({delay})
        server = socket.socket(socket.AF_UNIX)
        server.bind({str(path)!r})
        server.listen()
        time.sleep(60)
        """
    )


# Writes to stdout and stderr, then dies before it ever listens.
DIES_EARLY = python(
    """
    import sys, time
    sys.stdout.write("loading config\\nout-marker: bad setting\\n")
    sys.stdout.flush()
    sys.stderr.write("err-marker: cannot bind\\n")
    sys.stderr.flush()
    time.sleep(0.3)
    sys.exit(3)
    """
)


@pytest.fixture
def flag(tmp_path: Path) -> Path:
    return tmp_path / "ready.flag"


# --------------------------------------------------------------------------------------------
# Ready after a delay
# --------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_port_ready_after_a_delay_returns_soon_after_it_listens() -> None:
    port = free_port()
    async with ManagedProcess(listener(port, delay=0.4)) as proc:
        start = time.monotonic()
        assert await wait_for_port(proc, port, timeout=20) is None
        elapsed = time.monotonic() - start
        assert proc.is_running()
    assert 0.35 < elapsed < 5


@pytest.mark.anyio
async def test_probes_leave_stdout_for_the_reader() -> None:
    port = free_port()
    async with ManagedProcess(listener(port, delay=0.1)) as proc:
        await wait_for_port(proc, port, timeout=20)
        assert await proc.read_line_async(timeout=5) == "listening"


@pytest.mark.anyio
async def test_http_ready_after_a_delay_returns_the_status() -> None:
    port = free_port()
    async with ManagedProcess(http_server(port, delay=0.3), stderr_relay=False) as proc:
        start = time.monotonic()
        status = await wait_for_http(proc, f"http://127.0.0.1:{port}/health", timeout=20)
        assert time.monotonic() - start < 5
        assert status == 200
        assert "GET /health HTTP/1.1" in proc.stderr_tail  # the server saw a real request


@pytest.mark.anyio
async def test_http_retries_other_statuses_until_an_accepted_one() -> None:
    port = free_port()
    async with ManagedProcess(http_server(port, fail_first=3), stderr_relay=False) as proc:
        assert await wait_for_http(proc, f"http://127.0.0.1:{port}/", timeout=20) == 200
        tail = proc.stderr_tail
    assert tail.count('" 503 ') == 3, tail


@pytest.mark.anyio
async def test_non_ascii_url_is_sent_percent_encoded() -> None:
    port = free_port()
    async with ManagedProcess(http_server(port), stderr_relay=False) as proc:
        url = f"http://127.0.0.1:{port}/caf\u00e9?q=\u00fc&raw=\udcff"
        assert await wait_for_http(proc, url, timeout=20) == 200
        assert "GET /caf%C3%A9?q=%C3%BC&raw=%FF HTTP/1.1" in proc.stderr_tail


@pytest.mark.anyio
async def test_http_status_argument_accepts_exactly_those_statuses() -> None:
    port = free_port()
    # It answers 503 for ever (far more requests than any wait here makes).
    async with ManagedProcess(http_server(port, fail_first=10**9), stderr_relay=False) as proc:
        url = f"http://127.0.0.1:{port}/"
        assert await wait_for_http(proc, url, status=503, timeout=20) == 503
        assert await wait_for_http(proc, url, status={200, 503}, timeout=20) == 503
        with pytest.raises(ProcessTimeoutError) as info:
            await wait_for_http(proc, url, status=[200], timeout=1.5)
    assert "answered 503" in info.value.message


@pytest.mark.anyio
async def test_path_ready_after_a_delay(flag: Path) -> None:
    code = f"""
        import pathlib, time
        time.sleep(0.3)
        pathlib.Path({str(flag)!r}).touch()
        time.sleep(60)
    """
    async with ManagedProcess(python(code)) as proc:
        start = time.monotonic()
        await wait_for_path(proc, flag, timeout=20)
        assert 0.25 < time.monotonic() - start < 5


@pytest.mark.anyio
async def test_unix_socket_listener_is_found_by_path(tmp_path: Path) -> None:
    path = tmp_path / "service.sock"
    async with ManagedProcess(unix_listener(path, delay=0.2)) as proc:
        await wait_for_path(proc, str(path), timeout=20)
        client = socket.socket(socket.AF_UNIX)
        try:
            client.connect(str(path))  # it is a real listener
        finally:
            client.close()


@needs_ipv6
@pytest.mark.anyio
async def test_ipv6_port_and_http_probes() -> None:
    port = free_port("::1")
    async with ManagedProcess(http_server(port, delay=0.2, host="::1"), stderr_relay=False) as p:
        await wait_for_port(p, port, host="::1", timeout=20)
        assert await wait_for_http(p, f"http://[::1]:{port}/", timeout=20) == 200
        await p.await_ready(port=("::1", port), http=f"http://[::1]:{port}/x", timeout=20)
        with pytest.raises(ProcessTimeoutError):  # nothing on the IPv4 loopback
            await wait_for_port(p, port, host="127.0.0.1", timeout=0.3)


def test_sync_wait_ready_from_plain_code_and_inside_loops(sync_call: SyncCall, flag: Path) -> None:
    port = free_port()
    with ManagedProcess(http_server(port, delay=0.2, touch=str(flag)), stderr_relay=False) as p:
        start = time.monotonic()
        result = sync_call(
            p.wait_ready,
            output="serving",
            port=port,
            http=f"http://127.0.0.1:{port}/",
            path=flag,
            timeout=20,
        )
        assert result is None
        assert time.monotonic() - start < 5


def test_wait_ready_with_no_probe_returns_at_once() -> None:
    with ManagedProcess(["sleep", "30"]) as proc:
        start = time.monotonic()
        proc.wait_ready()
        assert time.monotonic() - start < 1


@pytest.mark.anyio
async def test_probes_work_without_captured_output() -> None:
    port = free_port()
    async with ManagedProcess(listener(port, delay=0.1), capture_output=False) as proc:
        await proc.await_ready(port=port, timeout=20)


# --------------------------------------------------------------------------------------------
# Dies before it is ready: fails fast, with its output
# --------------------------------------------------------------------------------------------


def _check_died_early(error: ProcessError, elapsed: float) -> None:
    assert not isinstance(error, ProcessTimeoutError)
    assert elapsed < 5, f"took {elapsed:.1f}s: not fail-fast (the timeout was longer)"
    assert error.return_code == 3
    assert error.code == "PROCESS_EXITED_EARLY"
    assert "out-marker: bad setting" in (error.stdout or "")
    assert "err-marker: cannot bind" in (error.stderr or "")
    text = str(error)
    assert "exited with code 3" in text
    assert "out-marker" in text
    assert "err-marker" in text


@pytest.mark.anyio
@pytest.mark.parametrize("probe", ["port", "http", "path", "output"])
async def test_dying_service_fails_fast_with_code_and_output(probe: str, flag: Path) -> None:
    port = free_port()
    argument: dict[str, Any] = {
        "port": {"port": port},
        "http": {"http": f"http://127.0.0.1:{port}/"},
        "path": {"path": flag},
        "output": {"output": ["never printed"]},
    }[probe]
    async with ManagedProcess(DIES_EARLY) as proc:
        start = time.monotonic()
        with pytest.raises(ProcessError) as info:
            await proc.await_ready(**argument, timeout=20)
        elapsed = time.monotonic() - start
    if probe == "output":  # the handshake wait's own error: the exit code and both streams
        assert elapsed < 5
        assert info.value.return_code == 3
        assert "err-marker" in (info.value.stderr or "")
    else:
        _check_died_early(info.value, elapsed)


@pytest.mark.anyio
async def test_each_probe_function_fails_fast(flag: Path) -> None:
    port = free_port()
    probes = [
        lambda p: wait_for_port(p, port, timeout=10),
        lambda p: wait_for_http(p, f"http://127.0.0.1:{port}/", timeout=10),
        lambda p: wait_for_path(p, flag, timeout=10),
    ]
    for probe in probes:
        async with ManagedProcess(DIES_EARLY) as proc:
            start = time.monotonic()
            with pytest.raises(ProcessError) as info:
                await probe(proc)
            _check_died_early(info.value, time.monotonic() - start)


def test_dying_service_fails_fast_from_sync_code(sync_call: SyncCall) -> None:
    port = free_port()
    with ManagedProcess(DIES_EARLY) as proc:
        start = time.monotonic()
        with pytest.raises(ProcessError) as info:
            sync_call(proc.wait_ready, port=port, timeout=20)
        _check_died_early(info.value, time.monotonic() - start)


@pytest.mark.anyio
async def test_service_killed_by_a_signal_reports_the_signal() -> None:
    code = "import os, time; time.sleep(0.2); os.kill(os.getpid(), 9)"
    async with ManagedProcess(python(code)) as proc:
        start = time.monotonic()
        with pytest.raises(ProcessError) as info:
            await wait_for_port(proc, free_port(), timeout=20)
        assert time.monotonic() - start < 5
    assert not isinstance(info.value, ProcessTimeoutError)
    assert info.value.return_code == -9
    assert "SIGKILL" in str(info.value)


@pytest.mark.anyio
async def test_service_already_dead_fails_at_once() -> None:
    async with ManagedProcess(["sh", "-c", "exit 5"]) as proc:
        with anyio.fail_after(5):
            while proc.is_running():
                await anyio.sleep(0.02)
        start = time.monotonic()
        with pytest.raises(ProcessError) as info:
            await wait_for_port(proc, free_port(), timeout=20)
        assert time.monotonic() - start < 2
    assert info.value.return_code == 5


@pytest.mark.anyio
async def test_a_port_served_by_another_process_does_not_make_a_dead_service_ready() -> None:
    with socket.create_server(("127.0.0.1", 0)) as other:  # someone else's server
        port = other.getsockname()[1]
        async with ManagedProcess(["sh", "-c", "exit 4"]) as proc:
            with anyio.fail_after(5):
                while proc.is_running():
                    await anyio.sleep(0.02)
            with pytest.raises(ProcessError) as info:
                await wait_for_port(proc, port, timeout=20)
    assert info.value.return_code == 4


@pytest.mark.anyio
async def test_terminating_during_a_probe_ends_the_probe_at_once() -> None:
    async with ManagedProcess(["sleep", "30"]) as proc:
        errors: list[BaseException] = []

        async def probe() -> None:
            try:
                await wait_for_port(proc, free_port(), timeout=20)
            except ProcessError as exc:
                errors.append(exc)

        start = time.monotonic()
        async with anyio.create_task_group() as group:
            group.start_soon(probe)
            await anyio.sleep(0.2)
            await proc.aterminate_gracefully(timeout=2)
        assert time.monotonic() - start < 5
    assert len(errors) == 1
    assert not isinstance(errors[0], ProcessTimeoutError)


# --------------------------------------------------------------------------------------------
# Never ready: a ProcessTimeoutError (also a TimeoutError), with the output
# --------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_never_ready_times_out_with_output_and_last_error() -> None:
    code = """
        import sys, time
        sys.stdout.write("out: still booting\\n"); sys.stdout.flush()
        sys.stderr.write("err: still booting\\n"); sys.stderr.flush()
        time.sleep(60)
    """
    port = free_port()
    async with ManagedProcess(python(code)) as proc:
        start = time.monotonic()
        with pytest.raises(TimeoutError) as info:
            await wait_for_port(proc, port, timeout=0.6)
        elapsed = time.monotonic() - start
        assert proc.is_running()  # a timeout does not stop the service
    error = info.value
    assert isinstance(error, ProcessTimeoutError)
    assert error.code == "PROCESS_WAIT_TIMEOUT"
    assert error.timeout_seconds == 0.6
    assert 0.55 < elapsed < 3
    assert "Connection refused" in error.message
    assert "out: still booting" in (error.stdout or "")
    assert "err: still booting" in (error.stderr or "")


@pytest.mark.anyio
async def test_http_probe_of_a_server_that_is_not_http_times_out_naming_the_problem() -> None:
    port = free_port()
    code = f"""
        import socket, time
        server = socket.create_server(("127.0.0.1", {port}))
        while True:
            conn, _ = server.accept()
            conn.sendall(b"SSH-2.0-not-http\\r\\n")
            conn.close()
    """
    async with ManagedProcess(python(code)) as proc:
        with pytest.raises(ProcessTimeoutError) as info:
            await wait_for_http(proc, f"http://127.0.0.1:{port}/", timeout=1.5)
    assert "not HTTP" in info.value.message or "closed" in info.value.message


def test_never_ready_from_sync_code(sync_call: SyncCall, flag: Path) -> None:
    with ManagedProcess(["sleep", "30"]) as proc:
        start = time.monotonic()
        with pytest.raises(ProcessTimeoutError):
            sync_call(proc.wait_ready, path=flag, timeout=0.4)
        assert 0.35 < time.monotonic() - start < 3


# --------------------------------------------------------------------------------------------
# One deadline for every probe
# --------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_several_probes_share_one_deadline(flag: Path) -> None:
    port = free_port()
    # The port is up after 0.5 s; the path never appears. Each probe with its own 1.0 s would
    # take 1.5 s; one deadline ends the whole wait at 1.0 s.
    async with ManagedProcess(listener(port, delay=0.5)) as proc:
        start = time.monotonic()
        with pytest.raises(ProcessTimeoutError) as info:
            await proc.await_ready(port=port, path=flag, timeout=1.0)
        elapsed = time.monotonic() - start
    assert 0.9 < elapsed < 1.4, elapsed
    assert str(flag) in info.value.message
    assert "within 1s" in info.value.message


@pytest.mark.anyio
async def test_output_and_probes_share_one_deadline() -> None:
    port = free_port()
    code = """
        import socket, sys, time
        time.sleep(0.5)
        sys.stdout.write("booted\\n"); sys.stdout.flush()
        time.sleep(60)
    """
    async with ManagedProcess(python(code)) as proc:
        start = time.monotonic()
        with pytest.raises(ProcessTimeoutError):
            await proc.await_ready(output="booted", port=port, timeout=1.0)
        assert 0.9 < time.monotonic() - start < 1.4


@pytest.mark.anyio
async def test_all_probes_ready_together(flag: Path) -> None:
    port = free_port()
    server = http_server(port, delay=0.3, touch=str(flag))
    async with ManagedProcess(server, stderr_relay=False) as proc:
        await proc.await_ready(
            output=["serving"],
            port=port,
            http=f"http://localhost:{port}/",
            path=flag,
            timeout=20,
        )


# --------------------------------------------------------------------------------------------
# A chatty service: megabytes of output before it listens never block it
# --------------------------------------------------------------------------------------------


CHATTY = """
    import socket, sys, time
    line = b"x" * 1023 + b"\\n"
    for _ in range(16 * 1024):  # 16 MiB of stdout, well past the 4 MiB kept unread
        sys.stdout.buffer.write(line)
    sys.stdout.buffer.write(b"LAST-LINE\\n")
    sys.stdout.buffer.flush()
    sys.stderr.buffer.write(b"e" * (2 << 20) + b"\\nERR-END\\n")
    sys.stderr.buffer.flush()
    server = socket.create_server(("127.0.0.1", {port}))
    time.sleep(60)
"""


@pytest.mark.anyio
async def test_service_writing_megabytes_before_it_listens_becomes_ready() -> None:
    port = free_port()
    async with ManagedProcess(python(CHATTY.format(port=port)), stderr_relay=False) as proc:
        await wait_for_port(proc, port, timeout=20)
        assert proc.stdout_dropped > 0  # the oldest unread output was let go, and counted
        assert proc.stdout_tail.endswith("LAST-LINE\n")
        # What is left to read starts at a line boundary and ends with the last line.
        first = await proc.read_line_async(timeout=5)
        assert first == "x" * 1023
        assert proc.stderr_tail.endswith("ERR-END\n")


def test_service_writing_megabytes_before_it_listens_from_sync_code() -> None:
    port = free_port()
    with ManagedProcess(python(CHATTY.format(port=port)), stderr_relay=False) as proc:
        start = time.monotonic()
        proc.wait_ready(port=port, timeout=20)
        assert time.monotonic() - start < 15


@pytest.mark.anyio
async def test_without_a_probe_unread_output_still_waits_in_the_pipe() -> None:
    # The high-water mark still holds outside a probe: nothing is dropped.
    port = free_port()
    async with ManagedProcess(python(CHATTY.format(port=port)), stderr_relay=False) as proc:
        await anyio.sleep(1.0)
        assert proc.stdout_dropped == 0


# --------------------------------------------------------------------------------------------
# Cancellation, Ctrl-C, interpreter exit, state and bad input
# --------------------------------------------------------------------------------------------


def _fresh_interpreter(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        python(code), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


def test_ctrl_c_during_sync_wait_ready_reaches_the_caller_and_leaves_the_service() -> None:
    done = _fresh_interpreter(
        """
        import os, signal, threading, time
        from procfound import ManagedProcess
        with ManagedProcess(["sleep", "30"]) as proc:
            threading.Timer(0.4, os.kill, (os.getpid(), signal.SIGINT)).start()
            start = time.monotonic()
            try:
                proc.wait_ready(port=1, timeout=20)
            except KeyboardInterrupt:
                print("interrupted", round(time.monotonic() - start, 1), proc.is_running())
            try:
                proc.wait_ready(port=1, timeout=0.2)
            except TimeoutError:
                print("usable afterwards")
        print("service running:", proc.is_running())
        """
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("interrupted 0."), lines  # at the Ctrl-C, not the timeout
    assert lines[0].endswith("True"), lines  # the service itself is still running
    assert lines[1:] == ["usable afterwards", "service running: False"]


def test_interpreter_exit_during_a_probe_in_a_thread_stops_the_service() -> None:
    start = time.monotonic()
    done = _fresh_interpreter(
        """
        import threading, time
        from procfound import ManagedProcess
        proc = ManagedProcess(["sleep", "30"])
        proc.launch()
        print(proc.pid, flush=True)
        waiter = threading.Thread(
            target=proc.wait_ready, kwargs={"port": 1, "timeout": 30}, daemon=True
        )
        waiter.start()
        time.sleep(0.3)
        """
    )
    assert time.monotonic() - start < 15
    assert wait_gone(int(done.stdout.split()[0]), 3)


@pytest.mark.anyio
async def test_cancelled_probe_leaves_the_service_running_and_readable() -> None:
    port = free_port()
    async with ManagedProcess(listener(port, delay=0.6)) as proc:
        with anyio.move_on_after(0.2) as scope:
            await wait_for_port(proc, port, timeout=20)
        assert scope.cancelled_caught
        assert proc.is_running()
        await wait_for_port(proc, port, timeout=20)
        assert await proc.read_line_async(timeout=5) == "listening"


@pytest.mark.anyio
async def test_probe_before_launch_or_after_stop_is_a_process_error() -> None:
    proc = ManagedProcess(["sleep", "30"])
    with pytest.raises(ProcessError, match="not running"):
        await wait_for_port(proc, 8080, timeout=1)
    async with proc:
        pass
    with pytest.raises(ProcessError, match="not running"):
        await proc.await_ready(port=8080, timeout=1)


BAD_PORTS: list[object] = [0, -1, 65536, 10**20, "8080", 80.0, True, None]
# Hosts that can never be resolved: not IDNA (an emoji, a 70-character label), too long for DNS.
UNUSABLE_HOSTS: list[str] = ["\U0001f600", "\u00fc" * 70, "a" * 70 + ".example", "a." * 130 + "b"]
BAD_HOSTS: list[object] = ["", " ", "a b", "x\0y", 127, None, *UNUSABLE_HOSTS]
BAD_URLS: list[object] = [
    "https://127.0.0.1/",
    "ftp://127.0.0.1/",
    "127.0.0.1:8080",
    "http://",
    "http:///path",
    "http://127.0.0.1:99999/",
    "http://127.0.0.1:port/",
    "http://127.0.0.1/a b",
    "http://127.0.0.1/\0",
    b"http://127.0.0.1/",
    None,
    *(f"http://{host}:1/" for host in UNUSABLE_HOSTS),
]
BAD_STATUSES: list[object] = [99, 600, "200", [], [200, "x"], True, 200.0]
BAD_PATHS: list[object] = ["", "a\0b", 3, None, b"/tmp/x", "/tmp/\ud800", Path("/tmp/\udfff")]
BAD_TIMEOUTS: list[object] = [math.nan, -1, "10", True]


@pytest.mark.anyio
async def test_bad_arguments_are_validation_errors_before_anything_runs() -> None:
    proc = ManagedProcess(["sleep", "30"])  # never launched: validation comes first
    for port in BAD_PORTS:
        with pytest.raises(ValidationError):
            await wait_for_port(proc, port, timeout=1)  # type: ignore[arg-type]
    for host in BAD_HOSTS:
        with pytest.raises(ValidationError):
            await wait_for_port(proc, 8080, host=host, timeout=1)  # type: ignore[arg-type]
    for url in BAD_URLS:
        with pytest.raises(ValidationError):
            await wait_for_http(proc, url, timeout=1)  # type: ignore[arg-type]
    for status in BAD_STATUSES:
        with pytest.raises(ValidationError):
            await wait_for_http(proc, "http://127.0.0.1/", status=status, timeout=1)  # type: ignore[arg-type]
    for path in BAD_PATHS:
        with pytest.raises(ValidationError):
            await wait_for_path(proc, path, timeout=1)  # type: ignore[arg-type]
    for timeout in BAD_TIMEOUTS:
        with pytest.raises(ValidationError):
            await wait_for_port(proc, 8080, timeout=timeout)  # type: ignore[arg-type]
        with pytest.raises(ValidationError):
            await proc.await_ready(port=8080, timeout=timeout)  # type: ignore[arg-type]
    for bad in ({"port": ("::1",)}, {"port": "8080"}, {"output": [1]}, {"output": 5}):
        with pytest.raises(ValidationError):
            await proc.await_ready(**bad, timeout=1)
    for host in UNUSABLE_HOSTS:
        with pytest.raises(ValidationError, match="not a valid host name"):
            await proc.await_ready(port=(host, 1), timeout=1)
        with pytest.raises(ValidationError, match="not a valid host name"):
            await proc.await_ready(http=f"http://{host}:1/", timeout=1)
    with pytest.raises(ValidationError, match="cannot be encoded"):
        await proc.await_ready(path="/tmp/\ud800", timeout=1)
    with pytest.raises(ValidationError):
        await wait_for_port("not a process", 8080)  # type: ignore[arg-type]


def test_bad_arguments_from_sync_code_are_validation_errors() -> None:
    proc = ManagedProcess(["sleep", "30"])
    with pytest.raises(ValidationError):
        proc.wait_ready(port=0)
    with pytest.raises(ValidationError):
        proc.wait_ready(http="https://example.invalid/")
    with pytest.raises(ValidationError):
        proc.wait_ready(path="", timeout=math.nan)
    for host in UNUSABLE_HOSTS:  # also on a running process: nothing is tried
        with ManagedProcess(["sleep", "30"]) as running:
            with pytest.raises(ValidationError):
                running.wait_ready(port=(host, 1), timeout=5)
            with pytest.raises(ValidationError):
                running.wait_ready(http=f"http://{host}:1/", timeout=5)
            with pytest.raises(ValidationError):
                running.wait_ready(path="/tmp/\ud800", timeout=5)


def test_probes_are_public_names() -> None:
    for name in ("wait_for_port", "wait_for_http", "wait_for_path"):
        assert name in procfound.__all__
    assert os.path.basename(procfound.services.probes.__file__ or "") == "probes.py"
