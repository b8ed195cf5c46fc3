"""The fast paths of #18: the bridge's reused workers and the capture into reserved memory.

They must keep every promise of the slow paths they replaced; speed is measured by the
benchmarks, never asserted here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from procfound.engine import buffers
from procfound.engine.buffers import OutputBuffer

ROOT = Path(__file__).resolve().parent.parent


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _fill(buffer: OutputBuffer, data: bytes) -> None:
    """Feed ``data`` to ``buffer`` through a real pipe, read with ``fill_from``."""
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    try:
        view = memoryview(data)
        while view:
            written = os.write(write_end, view[:65536])
            view = view[written:]
            buffer.fill_from(read_end)
        os.close(write_end)
        write_end = -1
        while not buffer.fill_from(read_end):
            pass
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


@pytest.mark.parametrize("size", [0, 1, 4 * 1024 * 1024, 4 * 1024 * 1024 + 1, 9_000_001])
def test_a_big_capture_read_into_reserved_memory_returns_every_byte_in_order(size: int) -> None:
    data = os.urandom(size)
    buffer = OutputBuffer()
    _fill(buffer, data)
    assert buffer.size == size
    assert buffer.dropped == 0
    if size >= buffers._RESERVE_AFTER + 1024 * 1024 and buffers._reservations_possible():
        assert buffer._region is not None  # the fast path was taken
    assert buffer.decode("latin-1") == data.decode("latin-1")
    assert buffer.getvalue() == data
    buffer.feed(b"tail")  # bytes added after the result was taken go after it
    assert buffer.getvalue() == data + b"tail"


def test_a_capture_past_its_reservation_goes_on_through_the_scratch_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(buffers, "_MIN_RESERVE", 6 * 1024 * 1024)
    data = os.urandom(20 * 1024 * 1024 + 123)
    buffer = OutputBuffer()
    _fill(buffer, data)
    assert buffer.getvalue() == data


def test_a_capped_capture_never_reserves_and_keeps_its_tail() -> None:
    data = os.urandom(12 * 1024 * 1024)
    buffer = OutputBuffer(limit=1000)
    _fill(buffer, data)
    assert buffer._region is None
    assert buffer.getvalue() == data[-1000:]
    assert buffer.dropped == len(data) - 1000


def test_without_free_reservations_a_big_capture_takes_the_scratch_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(buffers, "_reserve_ok", False)
    data = os.urandom(6 * 1024 * 1024)
    buffer = OutputBuffer()
    _fill(buffer, data)
    assert buffer._region is None
    assert buffer.getvalue() == data


CANCEL_RETIRES_THE_WORKER = """
import threading, time, anyio, procfound
from procfound.bridge import portal
from procfound.bridge.sync import _Call, _run_linked, _stop_and_wait, call_in_portal

async def noop():
    return "fine"

started = threading.Event()

async def slow():
    started.set()
    await anyio.sleep(30)

call_in_portal(noop)  # one idle worker
call = _Call()
portal.submit(_run_linked, call, slow, (), {}, on_error=call.fail)
started.wait(10)
t0 = time.monotonic()
_stop_and_wait(call)  # what Ctrl-C does: cancel the job, wait for it
print("ended", call.finished, type(call.error).__name__, round(time.monotonic() - t0) < 5)
# The cancelled job's worker is retired: later calls are not cancelled.
print("later", [call_in_portal(noop) for _ in range(20)].count("fine"))
"""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_cancelled_call_ends_and_later_calls_are_not_cancelled(backend: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROCFOUND_BACKEND": backend}
    done = subprocess.run(
        python(CANCEL_RETIRES_THE_WORKER), env=env, capture_output=True, text=True, timeout=50
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["ended True _Interrupted True", "later 20"]


CANCELLED_BEFORE_IT_STARTS = """
import procfound
from procfound.bridge import portal
from procfound.bridge.sync import _Call, _run_linked

ran = []

async def job():
    ran.append(1)

call = _Call()
assert call.abandon()  # Ctrl-C landed before the job reached the portal
portal.submit(_run_linked, call, job, (), {}, on_error=call.fail)
print(call.done.acquire(timeout=10), type(call.error).__name__, ran)
"""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_call_cancelled_before_it_starts_never_runs(backend: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROCFOUND_BACKEND": backend}
    done = subprocess.run(
        python(CANCELLED_BEFORE_IT_STARTS), env=env, capture_output=True, text=True, timeout=50
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True _Interrupted []"


def test_the_job_scope_exists_only_inside_a_portal_job() -> None:
    from procfound.bridge.portal import current_job_scope
    from procfound.bridge.sync import call_in_portal

    async def scope_in_job() -> bool:
        return isinstance(current_job_scope(), anyio.CancelScope)

    assert call_in_portal(scope_in_job)
    with pytest.raises(LookupError):
        current_job_scope()
