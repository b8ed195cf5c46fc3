"""ManagedProcess.wait_ready(check=...) / await_ready(check=...): a custom readiness check.

Real children (``sh``, a fresh ``python -c``). Async tests run under asyncio and trio; the sync
``wait_ready`` is called from plain code and from inside running asyncio and trio loops
(``sync_call``). The check is sync (run in a worker thread) or async (awaited in the caller's
loop), under the same deadline and fail-fast rules as the probes.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import anyio
import pytest
from conftest import SyncCall, python

from procfound import ManagedProcess, ProcessError, ProcessTimeoutError, ValidationError

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux children")


def _touch_later(flag: Path, delay: float = 0.3) -> list[str]:
    return ["sh", "-c", f"sleep {delay}; touch {flag}; exec sleep 30"]


@pytest.mark.anyio
async def test_async_check_returns_once_it_is_true(tmp_path: Path) -> None:
    flag = tmp_path / "up"
    calls = 0

    async def ready() -> bool:
        nonlocal calls
        calls += 1
        await anyio.sleep(0)  # awaited in the caller's loop (asyncio or trio)
        return flag.exists()

    async with ManagedProcess(_touch_later(flag)) as proc:
        start = time.monotonic()
        await proc.await_ready(check=ready, timeout=20)
        assert flag.exists()
        assert time.monotonic() - start < 5
    assert calls > 1


@pytest.mark.anyio
async def test_sync_check_runs_in_a_worker_thread(tmp_path: Path) -> None:
    flag = tmp_path / "up"
    threads: set[int] = set()

    def ready() -> bool:
        threads.add(threading.get_ident())
        time.sleep(0.01)  # blocking is fine: no event loop waits on it
        return flag.exists()

    async with ManagedProcess(_touch_later(flag)) as proc:
        await proc.await_ready(check=ready, timeout=20)
    assert threading.get_ident() not in threads


@pytest.mark.anyio
async def test_check_comes_after_the_output_and_shares_the_deadline(tmp_path: Path) -> None:
    flag = tmp_path / "up"
    seen: list[str] = []

    def ready() -> bool:
        seen.append("check")
        return flag.exists()

    command = ["sh", "-c", f"echo hello; sleep 0.2; touch {flag}; exec sleep 30"]
    async with ManagedProcess(command) as proc:
        await proc.await_ready("hello", check=ready, timeout=20)
        assert seen
    async with ManagedProcess(["sh", "-c", "sleep 0.5; echo hello; exec sleep 30"]) as proc:
        start = time.monotonic()
        with pytest.raises(ProcessTimeoutError) as caught:
            await proc.await_ready("hello", check=lambda: False, timeout=1.0)
        # One deadline for both: the output took half of it, the check had the rest.
        assert time.monotonic() - start < 3
        assert caught.value.code == "PROCESS_WAIT_TIMEOUT"
        assert "returned False" in str(caught.value)


@pytest.mark.anyio
async def test_child_exit_fails_fast_while_a_sync_check_blocks() -> None:
    release = threading.Event()

    def stuck() -> bool:
        release.wait(5)  # abandoned in its thread when the child exits
        return False

    code = "import sys; print('starting', flush=True); sys.stderr.write('bad config'); sys.exit(3)"
    try:
        async with ManagedProcess(python(code), stderr_relay=False) as proc:
            start = time.monotonic()
            with pytest.raises(ProcessError) as caught:
                await proc.await_ready(check=stuck, timeout=30)
            assert time.monotonic() - start < 3
    finally:
        release.set()
    error = caught.value
    assert error.code == "PROCESS_EXITED_EARLY"
    assert error.return_code == 3
    assert "starting" in (error.stdout or "")
    assert "bad config" in (error.stderr or "")


@pytest.mark.anyio
async def test_child_exit_fails_fast_while_an_async_check_waits() -> None:
    async def never() -> bool:
        await anyio.sleep(30)
        return True

    async with ManagedProcess(["sh", "-c", "sleep 0.2; exit 4"]) as proc:
        start = time.monotonic()
        with pytest.raises(ProcessError) as caught:
            await proc.await_ready(check=never, timeout=30)
        assert time.monotonic() - start < 3
    assert caught.value.code == "PROCESS_EXITED_EARLY"
    assert caught.value.return_code == 4


@pytest.mark.anyio
async def test_oserror_means_not_ready_yet_and_is_named_at_the_deadline() -> None:
    def refused() -> bool:
        raise ConnectionRefusedError(111, "Connection refused")

    async with ManagedProcess(["sleep", "30"]) as proc:
        with pytest.raises(ProcessTimeoutError) as caught:
            await proc.await_ready(check=refused, timeout=0.5)
        assert proc.is_running()
    assert "ConnectionRefusedError" in str(caught.value)


@pytest.mark.anyio
async def test_other_exceptions_of_the_check_propagate_at_once() -> None:
    def broken() -> bool:
        raise KeyError("missing setting")

    async def broken_async() -> bool:
        raise RuntimeError("bad check")

    async with ManagedProcess(["sleep", "30"]) as proc:
        start = time.monotonic()
        with pytest.raises(KeyError):
            await proc.await_ready(check=broken, timeout=20)
        with pytest.raises(RuntimeError, match="bad check"):
            await proc.await_ready(check=broken_async, timeout=20)
        assert time.monotonic() - start < 3
        assert proc.is_running()


def test_sync_wait_ready_with_a_check(sync_call: SyncCall, tmp_path: Path) -> None:
    flag = tmp_path / "up"
    with ManagedProcess(_touch_later(flag)) as proc:
        start = time.monotonic()
        result = sync_call(proc.wait_ready, check=flag.exists, timeout=20)
        assert result is None
        assert time.monotonic() - start < 5

    async def ready() -> bool:  # from sync code, awaited in procfound's portal loop
        return os.path.exists(flag)

    with ManagedProcess(["sleep", "30"]) as proc:
        assert sync_call(proc.wait_ready, check=ready, timeout=20) is None


def test_sync_wait_ready_fails_fast_when_the_child_exits(sync_call: SyncCall) -> None:
    with ManagedProcess(["sh", "-c", "sleep 0.2; exit 5"]) as proc:
        start = time.monotonic()
        with pytest.raises(ProcessError) as caught:
            sync_call(proc.wait_ready, check=lambda: False, timeout=30)
        assert time.monotonic() - start < 3
    assert caught.value.return_code == 5


def test_a_check_that_is_not_callable_is_refused() -> None:
    with (
        ManagedProcess(["sleep", "30"]) as proc,
        pytest.raises(ValidationError, match="check must be a callable"),
    ):
        proc.wait_ready(check="ready", timeout=5)  # type: ignore[arg-type]


def test_a_check_on_a_process_not_launched_is_refused() -> None:
    proc = ManagedProcess(["sleep", "30"])
    with pytest.raises(ProcessError) as caught:
        proc.wait_ready(check=lambda: True, timeout=5)
    assert caught.value.code == "PROCESS_NOT_RUNNING"
