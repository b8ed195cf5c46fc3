"""`procfound wait-for --port/--http/--path`: exit 0 when ready, 1 when the command ended first,
124 on timeout, 127 for a missing program, 2 for a usage error; the command is always stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import pid_alive, wait_gone

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc checks")


def wait_for(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "procfound", "wait-for", *args]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.create_server((host, 0), family=family) as server:
        return int(server.getsockname()[1])


def service(pidfile: Path, body: str) -> list[str]:
    """A Python service that writes its pid to ``pidfile`` first, then runs ``body``."""
    code = f"import os\nopen({str(pidfile)!r}, 'w').write(str(os.getpid()))\n"
    return [sys.executable, "-c", code + textwrap.dedent(body)]


def listening_after(pidfile: Path, port: int, delay: float, host: str = "127.0.0.1") -> list[str]:
    family = "socket.AF_INET6" if ":" in host else "socket.AF_INET"
    return service(
        pidfile,
        f"""
        import socket, time
        time.sleep({delay})
        server = socket.create_server(({host!r}, {port}), family={family})
        time.sleep(60)
        """,
    )


def assert_stopped(pidfile: Path) -> None:
    assert wait_gone(int(pidfile.read_text()), 3), "the command outlived procfound"


def test_port_ready_exits_0_and_stops_the_command(tmp_path: Path) -> None:
    pidfile, port = tmp_path / "pid", free_port()
    start = time.monotonic()
    done = wait_for("--port", str(port), "--", *listening_after(pidfile, port, 0.3))
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - start < 15
    assert done.stdout == ""
    assert_stopped(pidfile)


def test_http_ready_exits_0(tmp_path: Path) -> None:
    pidfile, port = tmp_path / "pid", free_port()
    server = service(
        pidfile,
        f"""
        import http.server, time
        time.sleep(0.2)
        handler = http.server.SimpleHTTPRequestHandler
        http.server.HTTPServer(("127.0.0.1", {port}), handler).serve_forever()
        """,
    )
    done = wait_for("--http", f"http://127.0.0.1:{port}/", "--timeout", "20", "--", *server)
    assert done.returncode == 0, done.stderr
    assert_stopped(pidfile)


def test_unix_socket_path_ready_exits_0(tmp_path: Path) -> None:
    pidfile, sock = tmp_path / "pid", tmp_path / "service.sock"
    server = service(
        pidfile,
        f"""
        import socket, time
        time.sleep(0.2)
        listener = socket.socket(socket.AF_UNIX)
        listener.bind({str(sock)!r})
        listener.listen()
        time.sleep(60)
        """,
    )
    done = wait_for("--path", str(sock), "--", *server)
    assert done.returncode == 0, done.stderr
    assert_stopped(pidfile)


def test_parts_and_probes_together_print_the_handshake(tmp_path: Path) -> None:
    pidfile, port = tmp_path / "pid", free_port()
    server = service(
        pidfile,
        f"""
        import socket, sys, time
        sys.stdout.write("booting\\nlistening on {port}\\n"); sys.stdout.flush()
        time.sleep(0.2)
        server = socket.create_server(("127.0.0.1", {port}))
        time.sleep(60)
        """,
    )
    done = wait_for("listening", "--port", str(port), "--timeout", "20", "--", *server)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"booting\nlistening on {port}\n"
    assert_stopped(pidfile)


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6")
def test_ipv6_port_in_brackets(tmp_path: Path) -> None:
    try:
        port = free_port("::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    pidfile = tmp_path / "pid"
    server = listening_after(pidfile, port, 0.1, host="::1")
    done = wait_for("--port", f"[::1]:{port}", "--", *server)
    assert done.returncode == 0, done.stderr
    assert_stopped(pidfile)


def test_command_exiting_first_exits_1_fast_with_its_output(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    server = service(
        pidfile,
        """
        import sys
        sys.stdout.write("config loaded\\nout-marker: port taken\\n"); sys.stdout.flush()
        sys.stderr.write("err-marker: bind failed\\n"); sys.stderr.flush()
        sys.exit(3)
        """,
    )
    start = time.monotonic()
    done = wait_for("--port", str(free_port()), "--timeout", "30", "--", *server)
    assert done.returncode == 1, done.stderr
    assert time.monotonic() - start < 10  # not the 30 s timeout
    assert "exited with code 3" in done.stderr
    assert "err-marker: bind failed" in done.stderr  # its stderr
    assert "out-marker: port taken" in done.stderr  # and how its stdout ended
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_timeout_exits_124_naming_what_was_not_ready(tmp_path: Path) -> None:
    pidfile, port = tmp_path / "pid", free_port()
    start = time.monotonic()
    done = wait_for(
        "--port",
        str(port),
        "--timeout",
        "1",
        "--",
        *service(pidfile, "import time; time.sleep(60)"),
    )
    assert done.returncode == 124, done.stderr
    assert 0.9 < time.monotonic() - start < 15
    assert f"not ready within 1s: waiting for a TCP connection to 127.0.0.1:{port}" in done.stderr
    assert "Connection refused" in done.stderr
    assert_stopped(pidfile)


def test_one_timeout_covers_parts_and_probes(tmp_path: Path) -> None:
    pidfile, port = tmp_path / "pid", free_port()
    server = service(
        pidfile,
        """
        import sys, time
        time.sleep(0.6)
        sys.stdout.write("ready\\n"); sys.stdout.flush()
        time.sleep(60)
        """,
    )
    start = time.monotonic()
    done = wait_for("ready", "--port", str(port), "--timeout", "1.2", "--", *server)
    elapsed = time.monotonic() - start
    assert done.returncode == 124, done.stderr
    assert "not ready within 1.2s" in done.stderr
    assert elapsed < 1.2 + 3  # the port had what was left of 1.2 s, not 1.2 s more
    assert_stopped(pidfile)


def test_missing_program_exits_127() -> None:
    done = wait_for("--port", "8080", "--", "missing-program-xyz")
    assert done.returncode == 127, done.stderr
    assert "missing-program-xyz" in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr


@pytest.mark.parametrize(
    ("words", "mentions"),
    [
        ([], "need a PART"),
        (["--port", "0"], "--port"),
        (["--port", "65536"], "--port"),
        (["--port", "http"], "--port"),
        (["--port", "::1:80"], "brackets"),
        (["--port", "[::1"], "brackets"),  # was taken as host "[:" and port 1
        (["--port", "[::1]x:80"], "brackets"),
        (["--port", "-1"], "port from 1 to 65535, got '-1'"),  # was "..., not str"
        (["--port", "\u0663"], "port from 1 to 65535"),  # an Arabic-Indic 3 was port 3
        (["--port", ""], "--port"),
        (["--http", "ftp://127.0.0.1/"], "--http"),
        (["--http", "https://127.0.0.1/"], "--http"),
        (["--http", "127.0.0.1:80"], "--http"),
        (["--http", "http://127.0.0.1:99999/"], "--http"),
        (["--path", ""], "--path"),
        (["--timeout", "nan", "--port", "80"], "nan"),
    ],
)
def test_usage_errors_exit_2_before_anything_runs(
    words: list[str], mentions: str, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    done = wait_for(*words, "--", "sh", "-c", f"touch {marker}; sleep 5")
    assert done.returncode == 2, done.stderr
    assert mentions in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert not marker.exists(), "the command ran despite the usage error"


def test_words_after_the_double_dash_are_the_commands(tmp_path: Path) -> None:
    pidfile, port = tmp_path / "pid", free_port()
    argv = [*listening_after(pidfile, port, 0.1), "--port", "1", "--http", "nonsense"]
    done = wait_for("--port", str(port), "--", *argv)
    assert done.returncode == 0, done.stderr
    assert_stopped(pidfile)


def test_keep_stays_attached_after_ready_until_ctrl_c(tmp_path: Path) -> None:
    pidfile, port = tmp_path / "pid", free_port()
    server = service(
        pidfile,
        f"""
        import socket, sys, time
        server = socket.create_server(("127.0.0.1", {port}))
        while True:
            sys.stdout.write("tick\\n"); sys.stdout.flush()
            time.sleep(0.2)
        """,
    )
    argv = [sys.executable, "-m", "procfound", "wait-for", "--port", str(port), "--keep", "--"]
    proc = subprocess.Popen(
        [*argv, *server], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "tick\n"  # relayed while attached
        child = int(pidfile.read_text())
        assert pid_alive(child)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        assert wait_gone(child, 3)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        if pidfile.exists():
            pid = int(pidfile.read_text())
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
