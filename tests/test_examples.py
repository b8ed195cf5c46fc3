"""The runnable examples in examples/: each runs as a script, exits 0 and says what it did.

They are run the way a reader would run them (``python examples/NAME.py``), through the stdlib's
subprocess so that a procfound bug cannot hide itself, and they use no network beyond 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import wait_gone

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def run_example(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"{name} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.mark.parametrize("name", ["plugin_host_asyncio.py", "plugin_host_trio.py"])
def test_plugin_host_handshakes_calls_and_stops_the_plugin(name: str) -> None:
    done = run_example(name)
    out = done.stdout
    assert "listening on 127.0.0.1:" in out
    assert "plugin says 'hello from the greeter plugin (call 1)'" in out
    assert "plugin says 'hello from the greeter plugin (call 2)'" in out
    # SIGTERM was enough: the plugin ran its own shutdown and exited 0.
    assert "plugin stopped gracefully: True, exit code 0" in out
    # Its stderr was relayed to the host's, including what it said on SIGTERM.
    assert "greeter: stopping after 2 call(s)" in done.stderr
    launched = re.search(r"launched plugin, pid (\d+)", out)
    assert launched is not None
    assert wait_gone(int(launched.group(1)), timeout=2)


def test_build_script_streams_progress_and_times_out_the_hung_step() -> None:
    done = run_example("build_script.py")
    lines = done.stdout.splitlines()
    compiled = [line.strip() for line in lines if "compiling unit_" in line]
    assert compiled == [f"[{i}/5] compiling unit_{i}.c" for i in range(1, 6)]
    # stderr was merged into the stream in the child's own order.
    warning = lines.index("    warning: unit_2.c: unused variable 'x'")
    assert lines[warning - 1].strip() == "[2/5] compiling unit_2.c"
    assert any(line.startswith("<== compile: ok") for line in lines)
    # The hung step: its lines before the deadline were shown, then its tree was killed.
    assert "    test_startup ... ok" in lines
    assert any("<== test: timed out after" in line for line in lines)
    assert re.search(r"build: test server \d+ still running: False", done.stdout)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_supervisor_restarts_with_backoff_then_gives_up(backend: str) -> None:
    done = run_example("supervisor.py", backend)
    out = done.stdout
    first, second = out.split("== a worker that always crashes")
    # Crashes twice, restarted after 0.1 s then 0.2 s, comes up on the third attempt.
    assert first.count("worker crashed with exit code 3") == 2
    assert "restart 1/3 in 0.1s" in first
    assert "restart 2/3 in 0.2s" in first
    assert "worker: starting (attempt 3)" in first
    assert "stopped the worker (graceful: True)" in first
    assert "worker: got SIGTERM" in done.stderr
    # Always crashes: one start plus two restarts, then the supervisor stops trying.
    assert second.count("worker crashed with exit code 3") == 3
    assert "giving up after 2 restarts" in second


def test_http_service_is_started_probed_used_and_stopped() -> None:
    done = run_example("http_service.py")
    out = done.stdout
    assert re.search(r"ready after \d+\.\d+s: http://127\.0\.0\.1:\d+/ answers", out), out
    assert "GET /hello.txt -> 200 'hello from the service'" in out
    assert "stopped gracefully: True" in out
    assert re.search(r"server \d+ still running: False", out)
    assert re.search(r"async: http://127\.0\.0\.1:\d+/hello\.txt answered 200", out)
    # The broken server failed the wait at once (well before its 30 s timeout), with its stderr.
    broken = re.search(r"broken server: exit code 2 after (\d+\.\d+)s", out)
    assert broken is not None, out
    assert float(broken.group(1)) < 10
    assert "invalid int value" in out
    started = re.search(r"started http.server, pid (\d+)", out)
    assert started is not None
    assert wait_gone(int(started.group(1)), timeout=2)


def test_talk_to_python_drives_a_repl_on_a_terminal_from_sync_asyncio_and_trio() -> None:
    out = run_example("talk_to_python.py").stdout
    assert "sync:    6 * 7 -> 42" in out
    assert "sync:    2 ** 100 -> 1267650600228229401496703205376" in out
    # pty_size and resize() reached the REPL's terminal.
    assert "sync:    terminal os.terminal_size(columns=100, lines=30)" in out
    assert "sync:    resized os.terminal_size(columns=132, lines=40)" in out
    # close_stdin() is Ctrl-D at the prompt: the REPL exits by itself, with 0.
    assert "sync:    python exited with 0" in out
    for backend in ("asyncio", "trio"):
        assert f"{backend + ':':8} sum(range(101)) -> 5050" in out
        assert f"{backend + ':':8} 1 / 0 -> pattern 0: ZeroDivisionError" in out


def test_every_example_is_run_by_a_test() -> None:
    tested = {
        "http_service.py",
        "plugin_host_asyncio.py",
        "plugin_host_trio.py",
        "build_script.py",
        "supervisor.py",
        "talk_to_python.py",
        "greeter_plugin.py",  # the plugin the hosts launch
    }
    assert {path.name for path in EXAMPLES.glob("*.py")} == tested


def test_examples_are_lint_clean() -> None:
    sources = [str(EXAMPLES), str(ROOT / "docs" / "griffe_sync_twins.py")]
    for argv in (["check"], ["format", "--check"]):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *argv, *sources],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"ruff {' '.join(argv)}:\n{done.stdout}\n{done.stderr}"
