"""The polling exit wait (``PollingSet``) forced on Linux: what macOS and old kernels run.

Where there is no pidfd, :func:`~procfound.engine.waiting.open_readiness_set` picks
``PollingSet`` (``select.poll`` for the pipes, ``waitid(WNOWAIT)`` for exit). The ``polling``
fixture makes this machine such a platform, the way the spawn code itself finds out: opening a
pidfd fails (``_open_pidfd`` returns None). Every set a session opens is recorded, and each test
checks that its child really was waited on by a ``PollingSet``. The scenarios are the ones the
epoll path is trusted with: output and input through run/async_run, a timeout that stops a
tree, a stream, a ManagedProcess handshake, under asyncio, trio and the sync twins.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from conftest import SyncCall, python, wait_gone

from procfound import (
    ManagedProcess,
    ProcessTimeoutError,
    async_run,
    async_stream,
    run,
    stream,
    wait_for_process_output,
)
from procfound.engine import session, spawn
from procfound.engine import waiting as readiness

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forces Linux's path")

# Prints its stdin back on stdout and a word on stderr.
ECHO_BOTH = python(
    """
    import sys
    data = sys.stdin.read()
    sys.stdout.write(data.upper())
    sys.stderr.write("err\\n")
    """
)


@pytest.fixture
def polling(monkeypatch: pytest.MonkeyPatch) -> list[readiness.ReadinessSet]:
    """No pidfds, as on a platform without them; yields the readiness sets sessions open."""
    opened: list[readiness.ReadinessSet] = []
    real = session.open_readiness_set

    def recording(pid: int, pidfd: int | None) -> readiness.ReadinessSet:
        found = real(pid, pidfd)
        opened.append(found)
        return found

    monkeypatch.setattr(spawn, "_open_pidfd", lambda pid: None)
    monkeypatch.setattr(session, "open_readiness_set", recording)
    return opened


def _all_polled(opened: list[readiness.ReadinessSet]) -> bool:
    return bool(opened) and all(type(found) is readiness.PollingSet for found in opened)


@pytest.mark.anyio
async def test_async_run_reads_output_and_feeds_input(
    polling: list[readiness.ReadinessSet],
) -> None:
    result = await async_run(ECHO_BOTH, input="hello\n" * 20000, timeout=20)
    assert result.stdout == "HELLO\n" * 20000
    assert result.stderr == "err\n"
    assert result.returncode == 0
    assert _all_polled(polling)


def test_run_reads_output_and_an_exit_code(
    polling: list[readiness.ReadinessSet], sync_call: SyncCall
) -> None:
    result = sync_call(run, ["sh", "-c", "echo out; echo err >&2; exit 3"], check=False, timeout=20)
    assert (result.stdout, result.stderr, result.returncode) == ("out\n", "err\n", 3)
    assert _all_polled(polling)


@pytest.mark.anyio
async def test_exit_is_seen_while_a_grandchild_holds_the_pipes(
    polling: list[readiness.ReadinessSet],
) -> None:
    # No EOF comes (the grandchild holds stdout and stderr): only the polled waitid sees the exit.
    started = time.monotonic()
    result = await async_run(["sh", "-c", "sleep 30 & echo $!; exit 5"], check=False, timeout=20)
    assert time.monotonic() - started < 5
    assert result.returncode == 5
    assert wait_gone(int(result.stdout), 3)  # the leftover is swept with the group
    assert _all_polled(polling)


@pytest.mark.anyio
async def test_a_timeout_stops_the_tree(
    polling: list[readiness.ReadinessSet], tmp_path: Path
) -> None:
    pidfile = tmp_path / "grandchild"
    started = time.monotonic()
    with pytest.raises(ProcessTimeoutError) as caught:
        await async_run(
            ["sh", "-c", f"sleep 30 & echo $! > {pidfile}; echo started; sleep 30"], timeout=0.5
        )
    assert time.monotonic() - started < 5
    assert caught.value.stdout.rstrip("\n") == "started"  # the partial output (stripped)
    assert wait_gone(int(pidfile.read_text()), 3)
    assert _all_polled(polling)


def test_a_sync_timeout_stops_the_tree(
    polling: list[readiness.ReadinessSet], sync_call: SyncCall, tmp_path: Path
) -> None:
    pidfile = tmp_path / "grandchild"
    started = time.monotonic()
    with pytest.raises(ProcessTimeoutError):
        sync_call(run, ["sh", "-c", f"sleep 30 & echo $! > {pidfile}; sleep 30"], timeout=0.5)
    assert time.monotonic() - started < 5
    assert wait_gone(int(pidfile.read_text()), 3)
    assert _all_polled(polling)


@pytest.mark.anyio
async def test_async_stream_yields_each_line_as_it_comes(
    polling: list[readiness.ReadinessSet],
) -> None:
    code = """
        import sys, time
        for i in range(3):
            sys.stdout.write(f"{i}\\n")
            sys.stdout.flush()
            time.sleep(0.1)
        """
    lines = [line async for line in async_stream(python(code), timeout=20)]
    assert lines == ["0", "1", "2"]
    assert _all_polled(polling)


def test_stream_yields_lines_and_stops_when_left_early(
    polling: list[readiness.ReadinessSet], sync_call: SyncCall
) -> None:
    def first_two() -> list[str]:
        found = []
        for line in stream(["sh", "-c", "seq 5; sleep 30"], timeout=20):
            found.append(line)
            if len(found) == 2:
                break  # the stream stops the child, which is still sleeping
        return found

    started = time.monotonic()
    assert sync_call(first_two) == ["1", "2"]
    assert time.monotonic() - started < 5
    assert _all_polled(polling)


HANDSHAKE_CHILD = python(
    """
    import sys, time
    time.sleep(0.2)
    sys.stdout.write("starting\\n1|6|tcp|127.0.0.1:4242|grpc\\n")
    sys.stdout.flush()
    time.sleep(60)
    """
)


@pytest.mark.anyio
async def test_managed_process_handshake_and_cleanup(
    polling: list[readiness.ReadinessSet],
) -> None:
    proc = ManagedProcess(HANDSHAKE_CHILD)
    await proc.alaunch()
    try:
        text = await wait_for_process_output(proc, ["grpc", "tcp|127.0.0.1:4242"], timeout=10)
    finally:
        await proc.acleanup()
    assert text == "starting\n1|6|tcp|127.0.0.1:4242|grpc\n"
    assert proc.pid is not None
    assert wait_gone(proc.pid, 3)
    assert _all_polled(polling)


def test_managed_process_sync_ready_and_exit(polling: list[readiness.ReadinessSet]) -> None:
    started = time.monotonic()
    with ManagedProcess(HANDSHAKE_CHILD) as proc:
        proc.wait_ready("grpc", timeout=10)
        assert proc.is_running()
    assert time.monotonic() - started < 8
    assert proc.returncode is not None
    with ManagedProcess(["sh", "-c", "exit 4"]) as proc:
        handle = proc.process
        assert handle is not None
        assert handle.wait(timeout=10) == 4
    assert _all_polled(polling)
