"""ManagedProcess and wait_for_process_output, proven black-box against the SPEC and issue 6.

Every async test runs under asyncio and trio (``anyio_backend``); the sync lifecycle is driven
from plain code (and, where it matters, from inside a running asyncio or trio loop through
``sync_call``). Every test stops its child, so the autouse ``no_leaks`` check stays meaningful.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
import trio
from conftest import PY, SyncCall, children_of, pid_alive, python, wait_gone

import procfound
from procfound import (
    ManagedProcess,
    ProcessError,
    ProcessTimeoutError,
    StateError,
    ValidationError,
    run,
    wait_for_process_output,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc checks")

PROCFOUND_ROOT = str(Path(procfound.__file__).resolve().parent.parent)

HANDSHAKE = "1|6|tcp|127.0.0.1:4242|grpc"
HANDSHAKE_PARTS = ["grpc", "1|6|", "tcp|127.0.0.1:4242"]  # any order

# Children write each line in one write(): the test environment may set PYTHONUNBUFFERED, and
# print() then writes the text and its newline separately, so a wait could match between them.
# A child that prints "ready" once it ignores SIGTERM, then sleeps.
IGNORES_SIGTERM = python(
    """
    import signal, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.stdout.write("ready\\n")
    sys.stdout.flush()
    time.sleep(60)
    """
)
# A child that prints "ready" and then sleeps; it dies on SIGTERM (the default action).
READY_THEN_SLEEP = python(
    """
    import sys, time
    sys.stdout.write("ready\\n")
    sys.stdout.flush()
    time.sleep(60)
    """
)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _write_stdout(*pieces: str | float) -> list[str]:
    """A child that writes each str piece to stdout (flushed) and sleeps for each float, then
    sleeps 60 s (so it must be stopped)."""
    return python(
        f"""
        import sys, time
        for piece in {list(pieces)!r}:
            if isinstance(piece, str):
                sys.stdout.buffer.write(piece.encode("utf-8"))
                sys.stdout.buffer.flush()
            else:
                time.sleep(piece)
        time.sleep(60)
        """
    )


def _write_bytes(*pieces: bytes | float, then_exit: bool = False) -> list[str]:
    """Like :func:`_write_stdout` but with raw bytes; optionally exit instead of sleeping."""
    tail = "" if then_exit else "time.sleep(60)"
    return python(
        f"""
        import sys, time
        for piece in {list(pieces)!r}:
            if isinstance(piece, bytes):
                sys.stdout.buffer.write(piece)
                sys.stdout.buffer.flush()
            else:
                time.sleep(piece)
        {tail}
        """
    )


async def _wait_exited(proc: ManagedProcess, timeout: float = 5.0) -> None:
    with anyio.fail_after(timeout):
        while proc.is_running():
            await anyio.sleep(0.02)


def _open_fds() -> dict[int, str]:
    found: dict[int, str] = {}
    for entry in os.listdir("/proc/self/fd"):
        try:
            found[int(entry)] = os.readlink(f"/proc/self/fd/{entry}")
        except OSError:
            continue
    return found


def _zombie_children() -> list[int]:
    return [pid for pid, state in children_of(os.getpid()).items() if state == "Z"]


@pytest.fixture
def stopped() -> Iterator[list[ManagedProcess]]:
    """Processes appended here are cleaned up after the test, whatever happened."""
    processes: list[ManagedProcess] = []
    yield processes
    for proc in processes:
        proc.cleanup()


# --------------------------------------------------------------------------------------------
# The async lifecycle: consistent when cancelled
# --------------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("delay", [0.0, 0.0005, 0.002])
async def test_cancelled_alaunch_leaves_a_consistent_process_that_acleanup_stops(
    delay: float,
) -> None:
    proc = ManagedProcess(["sleep", "30"])
    with anyio.move_on_after(delay):
        await proc.alaunch()
    pid = proc.pid
    await proc.acleanup()
    assert proc.is_running() is False
    if pid is not None:  # the spawn happened before the cancellation reached it
        assert not pid_alive(pid)
    with pytest.raises(StateError):
        await proc.alaunch()  # started (or claimed) once: never a second child


# --------------------------------------------------------------------------------------------
# wait_for_process_output: the handshake
# --------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_handshake_printed_after_delay_is_seen_quickly_and_returned() -> None:
    proc = ManagedProcess(_write_stdout(0.3, "starting up\n", HANDSHAKE + "\n"))
    start = time.monotonic()
    await proc.alaunch()
    try:
        text = await wait_for_process_output(proc, HANDSHAKE_PARTS, timeout=10.0)
        elapsed = time.monotonic() - start
    finally:
        await proc.acleanup()
    assert 0.3 <= elapsed < 2.0
    assert HANDSHAKE in text
    assert text == "starting up\n" + HANDSHAKE + "\n"


def test_handshake_from_plain_sync_code_with_anyio_run() -> None:
    with ManagedProcess(_write_stdout(0.3, HANDSHAKE + "\n")) as proc:
        start = time.monotonic()
        text = anyio.run(wait_for_process_output, proc, HANDSHAKE_PARTS)
        assert time.monotonic() - start < 2.0
    assert text == HANDSHAKE + "\n"


@pytest.mark.anyio
async def test_handshake_split_across_writes_is_matched() -> None:
    proc = ManagedProcess(_write_stdout("1|6|tc", 0.2, "p|127.0.0.1:42", 0.2, "42|grpc\n"))
    await proc.alaunch()
    try:
        text = await wait_for_process_output(proc, HANDSHAKE_PARTS, timeout=5.0)
    finally:
        await proc.acleanup()
    assert text == HANDSHAKE + "\n"


@pytest.mark.anyio
async def test_empty_parts_list_returns_at_once_without_consuming_output() -> None:
    proc = ManagedProcess(_write_stdout("first\n"))
    await proc.alaunch()
    try:
        start = time.monotonic()
        assert await wait_for_process_output(proc, [], timeout=5.0) == ""
        assert time.monotonic() - start < 0.5
        assert await proc.read_line_async(timeout=5.0) == "first"
    finally:
        await proc.acleanup()


@pytest.mark.anyio
async def test_output_written_before_exit_is_found_after_the_child_exited() -> None:
    proc = ManagedProcess(_write_bytes(b"noise\nREADY 42\n", then_exit=True))
    await proc.alaunch()
    try:
        await _wait_exited(proc)
        text = await wait_for_process_output(proc, ["READY"], timeout=5.0)
    finally:
        await proc.acleanup()
    assert text == "noise\nREADY 42\n"
    assert proc.returncode == 0


@pytest.mark.anyio
async def test_output_found_after_exit_even_with_nonzero_exit_code() -> None:
    proc = ManagedProcess(python("print('READY', flush=True); raise SystemExit(4)"))
    await proc.alaunch()
    try:
        await _wait_exited(proc)
        assert await wait_for_process_output(proc, ["READY"], timeout=5.0) == "READY\n"
    finally:
        await proc.acleanup()
    assert proc.returncode == 4


@pytest.mark.anyio
async def test_early_exit_without_pattern_raises_process_error_promptly() -> None:
    proc = ManagedProcess(python("print('something else', flush=True); raise SystemExit(3)"))
    await proc.alaunch()
    try:
        start = time.monotonic()
        with pytest.raises(ProcessError) as info:
            await wait_for_process_output(proc, ["READY"], timeout=10.0)
        elapsed = time.monotonic() - start
    finally:
        await proc.acleanup()
    assert not isinstance(info.value, TimeoutError)
    assert elapsed < 5.0
    assert "something else" in (info.value.stdout or "")


@pytest.mark.anyio
async def test_early_exit_while_grandchild_holds_stdout_raises_process_error_not_hang() -> None:
    # The seed raised subprocess.TimeoutExpired here; the direct child's exit must end the wait.
    proc = ManagedProcess(["sh", "-c", "sleep 30 & echo $!; echo nope; exit 0"])
    await proc.alaunch()
    try:
        grandchild = int(await proc.read_line_async(timeout=5.0))
        start = time.monotonic()
        with pytest.raises(ProcessError) as info:
            await wait_for_process_output(proc, ["READY"], timeout=10.0)
        elapsed = time.monotonic() - start
    finally:
        await proc.acleanup()
    assert not isinstance(info.value, TimeoutError)
    assert elapsed < 3.0
    assert wait_gone(grandchild)


@pytest.mark.anyio
async def test_no_output_times_out_with_timeout_error_within_a_second_of_the_deadline() -> None:
    proc = ManagedProcess(["sleep", "60"])
    await proc.alaunch()
    try:
        start = time.monotonic()
        with pytest.raises(TimeoutError) as info:
            await wait_for_process_output(proc, ["READY"], timeout=1.0)
        elapsed = time.monotonic() - start
        assert proc.is_running()
    finally:
        await proc.acleanup()
    assert isinstance(info.value, ProcessTimeoutError)
    assert 0.95 <= elapsed < 2.0


@pytest.mark.anyio
async def test_timeout_error_carries_the_partial_output() -> None:
    proc = ManagedProcess(_write_stdout("1|6|tcp|half-a-handshake\n"))
    await proc.alaunch()
    try:
        with pytest.raises(ProcessTimeoutError) as info:
            await wait_for_process_output(proc, ["tcp", "grpc"], timeout=0.5)
    finally:
        await proc.acleanup()
    assert "half-a-handshake" in (info.value.stdout or "")


# --------------------------------------------------------------------------------------------
# read_line_async / read_char_async
# --------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_read_line_returns_lines_without_endings_then_partial_line_then_empty() -> None:
    proc = ManagedProcess(_write_bytes(b"first\n  spaced  \r\n\nlast-no-newline", then_exit=True))
    await proc.alaunch()
    try:
        lines = [await proc.read_line_async(timeout=5.0) for _ in range(5)]
    finally:
        await proc.acleanup()
    assert lines == ["first", "  spaced  ", "", "last-no-newline", ""]


@pytest.mark.anyio
async def test_read_line_decodes_utf8_and_replaces_invalid_bytes() -> None:
    proc = ManagedProcess(_write_bytes("héllo ☃ 😀\n".encode() + b"bad \xff byte\n"))
    await proc.alaunch()
    try:
        assert await proc.read_line_async(timeout=5.0) == "héllo ☃ 😀"
        assert await proc.read_line_async(timeout=5.0) == "bad \ufffd byte"
    finally:
        await proc.acleanup()


@pytest.mark.anyio
async def test_read_char_returns_whole_characters_including_multibyte() -> None:
    proc = ManagedProcess(_write_bytes("aé€😀\n".encode(), then_exit=True))
    await proc.alaunch()
    try:
        chars = [await proc.read_char_async(timeout=5.0) for _ in range(6)]
    finally:
        await proc.acleanup()
    assert chars == ["a", "é", "€", "😀", "\n", ""]


@pytest.mark.anyio
async def test_read_char_joins_a_multibyte_char_split_across_writes() -> None:
    encoded = "é".encode()
    proc = ManagedProcess(_write_bytes(encoded[:1], 0.3, encoded[1:] + b"x"))
    await proc.alaunch()
    try:
        assert await proc.read_char_async(timeout=5.0) == "é"
        assert await proc.read_char_async(timeout=5.0) == "x"
    finally:
        await proc.acleanup()


@pytest.mark.anyio
async def test_long_line_read_with_tiny_bufsize_is_whole() -> None:
    line = "0123456789" * 500
    proc = ManagedProcess(_write_stdout(line + "\n"), bufsize=7)
    await proc.alaunch()
    try:
        assert await proc.read_line_async(timeout=5.0) == line
    finally:
        await proc.acleanup()


@pytest.mark.parametrize("bufsize", [2**64, 10**400, 16 * 1024 * 1024 + 1, -2, 1.5, "4096"])
def test_an_unusable_bufsize_is_refused_at_construction(bufsize: object) -> None:
    # Accepted, it killed the reader (OverflowError/MemoryError): the output was lost and
    # cleanup() raised the same. Refused here, with the range, before anything runs.
    with pytest.raises(ValidationError, match=r"bufsize must be an int from -1 to 16777216"):
        ManagedProcess(["echo", "x"], bufsize=bufsize)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"bufsize must be an int from -1 to 16777216"):
        procfound.run(["true"], bufsize=bufsize)


@pytest.mark.anyio
@pytest.mark.parametrize("bufsize", [-1, 0, 16 * 1024 * 1024])
async def test_every_bufsize_in_the_range_reads_the_output(bufsize: int) -> None:
    async with ManagedProcess(["echo", "x"], bufsize=bufsize) as proc:
        assert await proc.read_line_async(timeout=5.0) == "x"


@pytest.mark.anyio
async def test_timed_out_line_read_loses_nothing() -> None:
    proc = ManagedProcess(_write_stdout("par", 0.8, "tial\nnext\n"))
    await proc.alaunch()
    try:
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await proc.read_line_async(timeout=0.2)
        assert time.monotonic() - start < 1.0
        assert await proc.read_line_async(timeout=5.0) == "partial"
        assert await proc.read_line_async(timeout=5.0) == "next"
    finally:
        await proc.acleanup()


@pytest.mark.anyio
async def test_timed_out_char_read_loses_nothing() -> None:
    proc = ManagedProcess(_write_stdout(0.6, "xy\n"))
    await proc.alaunch()
    try:
        with pytest.raises(TimeoutError):
            await proc.read_char_async(timeout=0.2)
        assert await proc.read_char_async(timeout=5.0) == "x"
        assert await proc.read_line_async(timeout=5.0) == "y"
    finally:
        await proc.acleanup()


@pytest.mark.anyio
async def test_many_timed_out_reads_of_a_dribbling_child_lose_no_byte() -> None:
    text = "abcdefghijklmnop"
    pieces: list[str | float] = []
    for char in text:
        pieces += [char, 0.03]
    proc = ManagedProcess(_write_stdout(*pieces, "\n"))
    await proc.alaunch()
    timeouts = 0
    try:
        with anyio.fail_after(10):
            while True:
                try:
                    line = await proc.read_line_async(timeout=0.01)
                    break
                except TimeoutError:
                    timeouts += 1
    finally:
        await proc.acleanup()
    assert line == text
    assert timeouts >= 5


@pytest.mark.anyio
async def test_wait_for_output_then_read_line_loses_nothing() -> None:
    proc = ManagedProcess(_write_stdout("noise\nserver ready on 4242\nafter-1\nafter-2\n"))
    await proc.alaunch()
    try:
        text = await wait_for_process_output(proc, ["ready", "4242"], timeout=5.0)
        assert text == "noise\nserver ready on 4242\n"
        assert await proc.read_line_async(timeout=5.0) == "after-1"
        assert await proc.read_char_async(timeout=5.0) == "a"
        assert await proc.read_line_async(timeout=5.0) == "fter-2"
    finally:
        await proc.acleanup()


@pytest.mark.parametrize("buffer_size", [5, 1024])
@pytest.mark.anyio
async def test_reads_and_waits_mix_in_any_order_for_any_buffer_size(buffer_size: int) -> None:
    proc = ManagedProcess(_write_stdout("héader\nA then B\nmiddle\nC é D\ntrailer\n"))
    await proc.alaunch()
    try:
        assert await proc.read_char_async(timeout=5.0) == "h"
        assert await proc.read_line_async(timeout=5.0) == "éader"
        got = await wait_for_process_output(proc, ["B", "A"], 5.0, buffer_size)
        assert got == "A then B\n"
        assert await proc.read_line_async(timeout=5.0) == "middle"
        got = await wait_for_process_output(proc, ["D", "é"], 5.0, buffer_size)
        assert got == "C é D\n"
        assert await proc.read_line_async(timeout=5.0) == "trailer"
    finally:
        await proc.acleanup()


@pytest.mark.anyio
async def test_small_buffer_size_wait_still_returns_through_end_of_matching_line() -> None:
    proc = ManagedProcess(_write_stdout("server ready on 4242\nafter\n"))
    await proc.alaunch()
    try:
        got = await wait_for_process_output(proc, ["ready"], 5.0, buffer_size=1)
        next_line = await proc.read_line_async(timeout=5.0)
    finally:
        await proc.acleanup()
    assert (got, next_line) == ("server ready on 4242\n", "after")


@pytest.mark.anyio
async def test_wait_returns_the_matching_line_whole_when_its_end_comes_in_a_later_write() -> None:
    proc = ManagedProcess(_write_stdout("server ready", 0.02, " on 4242\nafter\n"))
    await proc.alaunch()
    try:
        got = await wait_for_process_output(proc, ["ready"], timeout=5.0)
        next_line = await proc.read_line_async(timeout=5.0)
    finally:
        await proc.acleanup()
    assert (got, next_line) == ("server ready on 4242\n", "after")


@pytest.mark.anyio
async def test_wait_for_a_prompt_without_line_end_returns_promptly() -> None:
    proc = ManagedProcess(_write_stdout("Password: "))
    await proc.alaunch()
    try:
        start = time.monotonic()
        got = await wait_for_process_output(proc, ["Password:"], timeout=5.0)
        elapsed = time.monotonic() - start
    finally:
        await proc.acleanup()
    assert got == "Password: "
    assert elapsed < 1.5


@pytest.mark.anyio
async def test_read_before_launch_and_after_stop_raises_process_error() -> None:
    proc = ManagedProcess(READY_THEN_SLEEP)
    with pytest.raises(ProcessError):
        await proc.read_line_async(timeout=0.5)
    await proc.alaunch()
    await proc.aterminate_gracefully(timeout=5.0)
    with pytest.raises(ProcessError):
        await proc.read_line_async(timeout=0.5)
    with pytest.raises(ProcessError):
        await proc.read_char_async(timeout=0.5)
    await proc.acleanup()


@pytest.mark.anyio
async def test_read_with_stdout_not_captured_raises_process_error() -> None:
    proc = ManagedProcess(["sleep", "60"], capture_output=False)
    await proc.alaunch()
    try:
        with pytest.raises(ProcessError):
            await proc.read_line_async(timeout=0.5)
    finally:
        await proc.acleanup()


# --------------------------------------------------------------------------------------------
# Sync launch, async reads (asyncio and trio)
# --------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_process_launched_from_sync_code_is_read_from_async_test() -> None:
    with ManagedProcess(_write_stdout(HANDSHAKE + "\nline 2\n")) as proc:
        assert await wait_for_process_output(proc, HANDSHAKE_PARTS, timeout=5.0) == HANDSHAKE + "\n"
        assert await proc.read_line_async(timeout=5.0) == "line 2"
    assert not proc.is_running()


def test_process_read_from_asyncio_then_from_trio_keeps_its_buffer() -> None:
    proc = ManagedProcess(_write_stdout("one\ntwo\nthree\n"))
    proc.launch()
    try:

        async def read_one() -> str:
            return await proc.read_line_async(timeout=5.0)

        async def read_char() -> str:
            return await proc.read_char_async(timeout=5.0)

        assert asyncio.run(read_one()) == "one"
        assert trio.run(read_char) == "t"
        assert trio.run(read_one) == "wo"
        assert asyncio.run(read_one()) == "three"
    finally:
        assert proc.terminate_gracefully(timeout=5.0)
        proc.cleanup()


# --------------------------------------------------------------------------------------------
# State and launch errors
# --------------------------------------------------------------------------------------------


def _state(proc: ManagedProcess) -> tuple[int | None, int | None, bool]:
    return proc.pid, proc.returncode, proc.is_running()


def test_state_before_during_and_after_the_run() -> None:
    proc = ManagedProcess(READY_THEN_SLEEP)
    assert _state(proc) == (None, None, False)
    proc.launch()
    try:
        pid, returncode, running = _state(proc)
        assert isinstance(pid, int)
        assert pid_alive(pid)
        assert (returncode, running) == (None, True)
    finally:
        assert proc.terminate_gracefully(timeout=5.0)
    assert _state(proc) == (pid, -signal.SIGTERM, False)
    proc.cleanup()
    proc.cleanup()  # safe twice
    assert _state(proc) == (pid, -signal.SIGTERM, False)


def test_returncode_of_a_child_that_exited_on_its_own_is_seen_before_cleanup() -> None:
    proc = ManagedProcess(python("raise SystemExit(7)"))
    proc.launch()
    try:
        deadline = time.monotonic() + 5.0
        while proc.is_running() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not proc.is_running()
        assert proc.returncode == 7
        assert proc.terminate_gracefully(timeout=5.0) is True
    finally:
        proc.cleanup()
    assert proc.returncode == 7


def test_launch_twice_raises_state_error_saying_already(sync_call: SyncCall) -> None:
    proc = ManagedProcess(["sleep", "60"])
    sync_call(proc.launch)
    try:
        pid = proc.pid
        with pytest.raises(StateError, match="already"):
            sync_call(proc.launch)
        assert proc.pid == pid
    finally:
        sync_call(proc.cleanup)
    with pytest.raises(StateError, match="already"):
        proc.launch()  # not even after cleanup


@pytest.mark.anyio
async def test_alaunch_twice_raises_state_error_saying_already() -> None:
    proc = ManagedProcess(["sleep", "60"])
    await proc.alaunch()
    try:
        with pytest.raises(StateError, match="already"):
            await proc.alaunch()
    finally:
        await proc.acleanup()


def test_missing_executable_raises_process_error_naming_it(sync_call: SyncCall) -> None:
    missing = "/nonexistent/procfound-no-such-binary"
    proc = ManagedProcess([missing, "--flag"])
    with pytest.raises(ProcessError, match="procfound-no-such-binary") as info:
        sync_call(proc.launch)
    assert not isinstance(info.value, OSError)
    assert proc.pid is None
    assert not proc.is_running()
    proc.cleanup()


@pytest.mark.anyio
async def test_missing_executable_raises_process_error_from_alaunch() -> None:
    proc = ManagedProcess(["procfound-no-such-binary-on-path"])
    with pytest.raises(ProcessError, match="procfound-no-such-binary-on-path"):
        await proc.alaunch()
    await proc.acleanup()


def test_env_overrides_and_cwd_reach_the_child(tmp_path: Path) -> None:
    code = "import os; print(os.environ['PROCFOUND_T_MANAGED'], os.getcwd(), flush=True)"
    with ManagedProcess(python(code), cwd=tmp_path, env={"PROCFOUND_T_MANAGED": "yes"}) as proc:
        line = anyio.run(proc.read_line_async, 5.0)
    assert line == f"yes {tmp_path.resolve()}"
    assert proc.env["PROCFOUND_T_MANAGED"] == "yes"
    assert proc.command == python(code)


# --------------------------------------------------------------------------------------------
# Stopping
# --------------------------------------------------------------------------------------------


def test_child_exiting_on_sigterm_terminates_gracefully_fast(sync_call: SyncCall) -> None:
    proc = ManagedProcess(READY_THEN_SLEEP)
    sync_call(proc.launch)
    try:
        anyio.run(wait_for_process_output, proc, ["ready"])
        start = time.monotonic()
        assert sync_call(proc.terminate_gracefully, 5) is True
        elapsed = time.monotonic() - start
    finally:
        proc.cleanup()
    assert elapsed < 3.0
    assert proc.returncode == -signal.SIGTERM
    assert not proc.is_running()


@pytest.mark.anyio
async def test_child_exiting_on_sigterm_aterminates_gracefully_fast() -> None:
    proc = ManagedProcess(READY_THEN_SLEEP)
    await proc.alaunch()
    try:
        await wait_for_process_output(proc, ["ready"])
        start = time.monotonic()
        assert await proc.aterminate_gracefully(timeout=5) is True
        elapsed = time.monotonic() - start
    finally:
        await proc.acleanup()
    assert elapsed < 3.0
    assert proc.returncode == -signal.SIGTERM


def test_child_ignoring_sigterm_is_killed_after_timeout_and_reports_false() -> None:
    proc = ManagedProcess(IGNORES_SIGTERM)
    proc.launch()
    try:
        anyio.run(wait_for_process_output, proc, ["ready"])
        pid = proc.pid
        assert pid is not None
        start = time.monotonic()
        assert proc.terminate_gracefully(timeout=1.0) is False
        elapsed = time.monotonic() - start
    finally:
        proc.cleanup()
    assert 0.9 <= elapsed < 3.0
    assert proc.returncode == -signal.SIGKILL
    assert not pid_alive(pid)
    assert not proc.is_running()


@pytest.mark.anyio
async def test_aterminate_of_sigterm_ignoring_child_does_not_block_the_loop() -> None:
    proc = ManagedProcess(IGNORES_SIGTERM)
    await proc.alaunch()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.05)
            ticks += 1

    try:
        await wait_for_process_output(proc, ["ready"])
        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker)
            start = time.monotonic()
            result = await proc.aterminate_gracefully(timeout=1.0)
            elapsed = time.monotonic() - start
            tg.cancel_scope.cancel()
    finally:
        await proc.acleanup()
    assert result is False
    assert 0.9 <= elapsed < 3.0
    assert ticks >= 8
    assert proc.returncode == -signal.SIGKILL


GRANDCHILD_COOPERATIVE = "import os, time; print(os.getpid(), flush=True); time.sleep(60)"
GRANDCHILD_IGNORES_TERM = (
    "import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print(os.getpid(), flush=True); time.sleep(60)"
)


@pytest.mark.parametrize(
    "grandchild_code",
    [GRANDCHILD_COOPERATIVE, GRANDCHILD_IGNORES_TERM],
    ids=["cooperative", "ignores-sigterm"],
)
def test_grandchildren_die_with_the_group(grandchild_code: str) -> None:
    child = python(
        f"""
        import subprocess, sys, time
        subprocess.Popen([sys.executable, "-c", {grandchild_code!r}])
        time.sleep(60)
        """
    )
    proc = ManagedProcess(child)
    proc.launch()
    try:
        grandchild = int(anyio.run(proc.read_line_async, 10.0))
        assert pid_alive(grandchild)
        assert proc.terminate_gracefully(timeout=5.0) is True
    finally:
        proc.cleanup()
    assert wait_gone(grandchild, 5.0)


@pytest.mark.anyio
async def test_grandchildren_die_when_the_async_context_exits() -> None:
    async with ManagedProcess(["sh", "-c", "sleep 60 & echo $!; wait"]) as proc:
        grandchild = int(await proc.read_line_async(timeout=5.0))
        assert pid_alive(grandchild)
    assert wait_gone(grandchild, 5.0)


def test_leaving_with_block_ends_child_that_ignores_sigterm() -> None:
    # The default grace is 7 s, so leaving the block takes about that long.
    start = time.monotonic()
    with ManagedProcess(IGNORES_SIGTERM) as proc:
        anyio.run(wait_for_process_output, proc, ["ready"])
        pid = proc.pid
        assert pid is not None
    elapsed = time.monotonic() - start
    assert elapsed < 10.0
    assert not pid_alive(pid)
    assert proc.returncode == -signal.SIGKILL
    assert not proc.is_running()


def test_leaving_with_block_on_exception_stops_child_and_propagates() -> None:
    proc = ManagedProcess(READY_THEN_SLEEP)

    def fail_inside() -> None:
        with proc:
            anyio.run(wait_for_process_output, proc, ["ready"])
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        fail_inside()
    assert not proc.is_running()
    assert proc.returncode == -signal.SIGTERM


@pytest.mark.anyio
async def test_async_with_launches_and_stops_gracefully() -> None:
    start = time.monotonic()
    async with ManagedProcess(READY_THEN_SLEEP) as proc:
        assert proc.is_running()
        assert await wait_for_process_output(proc, ["ready"], timeout=5.0) == "ready\n"
        pid = proc.pid
        assert pid is not None
    assert time.monotonic() - start < 3.0
    assert not proc.is_running()
    assert proc.returncode == -signal.SIGTERM
    assert not pid_alive(pid)


@pytest.mark.anyio
async def test_async_with_stops_the_child_when_the_body_is_cancelled() -> None:
    with anyio.move_on_after(0.5) as scope:
        async with ManagedProcess(READY_THEN_SLEEP) as proc:
            await wait_for_process_output(proc, ["ready"], timeout=5.0)
            await anyio.sleep(30)
    assert scope.cancelled_caught
    assert not proc.is_running()
    assert proc.returncode is not None


@pytest.mark.anyio
async def test_wait_for_output_is_cancellable_and_output_stays_readable() -> None:
    proc = ManagedProcess(_write_stdout("early\n", 1.0, "late\n"))
    await proc.alaunch()
    try:
        with anyio.move_on_after(0.3):
            await wait_for_process_output(proc, ["late"], timeout=10.0)
        # "early" was consumed by the cancelled wait (it counts as read), "late" is not lost.
        assert await proc.read_line_async(timeout=5.0) == "late"
    finally:
        await proc.acleanup()


def test_hundred_launch_terminate_cycles_leave_no_fd_or_zombie() -> None:
    warm = ManagedProcess(["true"])
    warm.launch()
    warm.cleanup()
    fds_before = _open_fds()
    start = time.monotonic()
    pids: list[int] = []
    for _ in range(100):
        proc = ManagedProcess(["sleep", "60"])
        proc.launch()
        assert proc.pid is not None
        pids.append(proc.pid)
        assert proc.terminate_gracefully(timeout=5.0) is True
        proc.cleanup()
    elapsed = time.monotonic() - start
    leaked = {fd: t for fd, t in _open_fds().items() if fds_before.get(fd) != t}
    assert leaked == {}
    assert _zombie_children() == []
    assert not any(pid_alive(pid) for pid in pids)
    assert elapsed < 30.0


# --------------------------------------------------------------------------------------------
# stderr
# --------------------------------------------------------------------------------------------


def test_stderr_relay_copies_child_stderr_to_ours_within_a_second(
    capfd: pytest.CaptureFixture[str],
) -> None:
    code = "import sys, time; sys.stderr.write('relayed-line é\\n'); sys.stderr.flush(); "
    code += "print('written', flush=True); time.sleep(60)"
    with ManagedProcess(python(code)) as proc:
        anyio.run(wait_for_process_output, proc, ["written"])
        seen = time.monotonic()
        captured = ""
        while "relayed-line é\n" not in captured and time.monotonic() - seen < 1.0:
            time.sleep(0.02)
            captured += capfd.readouterr().err
    assert "relayed-line é\n" in captured


def test_stderr_relay_reaches_the_real_stderr_of_a_fresh_interpreter() -> None:
    script = python(
        """
        import time
        import anyio
        from procfound import ManagedProcess, wait_for_process_output
        child = ["sh", "-c", "echo child-err-line >&2; echo done; exec sleep 60"]
        with ManagedProcess(child) as proc:
            anyio.run(wait_for_process_output, proc, ["done"])
            time.sleep(0.5)
        """
    )
    env = {**os.environ, "PYTHONPATH": PROCFOUND_ROOT}
    result = subprocess.run(script, capture_output=True, text=True, timeout=30, env=env)
    assert result.returncode == 0, result.stderr
    assert "child-err-line" in result.stderr


def test_without_relay_stderr_tail_is_kept_and_a_mebibyte_never_deadlocks(
    capfd: pytest.CaptureFixture[str],
) -> None:
    code = """
        import sys, time
        sys.stderr.write("x" * (1 << 20))
        sys.stderr.write("\\nEND-OF-STDERR\\n")
        sys.stderr.flush()
        print("done", flush=True)
        time.sleep(60)
    """
    with ManagedProcess(python(code), stderr_relay=False) as proc:
        start = time.monotonic()
        anyio.run(wait_for_process_output, proc, ["done"], 10.0)
        assert time.monotonic() - start < 5.0
        deadline = time.monotonic() + 2.0
        while "END-OF-STDERR" not in proc.stderr_tail and time.monotonic() < deadline:
            time.sleep(0.02)
        tail = proc.stderr_tail
    assert tail.endswith("x\nEND-OF-STDERR\n")
    assert 1000 < len(tail) <= 64 * 1024 + 100
    assert "END-OF-STDERR" not in capfd.readouterr().err


@pytest.mark.anyio
async def test_early_exit_error_carries_the_stderr_tail_without_relay() -> None:
    code = "import sys; sys.stderr.write('fatal: port in use\\n'); raise SystemExit(2)"
    proc = ManagedProcess(python(code), stderr_relay=False)
    await proc.alaunch()
    try:
        await _wait_exited(proc)
        with anyio.fail_after(5):
            while "port in use" not in proc.stderr_tail:
                await anyio.sleep(0.02)
        with pytest.raises(ProcessError) as info:
            await wait_for_process_output(proc, ["READY"], timeout=5.0)
    finally:
        await proc.acleanup()
    assert info.value.return_code == 2
    assert "port in use" in (info.value.stderr or "")


# --------------------------------------------------------------------------------------------
# Garbage collection and interpreter exit
# --------------------------------------------------------------------------------------------


def _drop_and_collect(holder: list[ManagedProcess]) -> None:
    """Drop the last reference to the process(es) in ``holder`` and run the collector."""
    holder.clear()
    gc.collect()


def test_garbage_collected_running_process_is_killed_with_resource_warning() -> None:
    proc = ManagedProcess(["sleep", "60"])
    proc.launch()
    pid = proc.pid
    assert pid is not None
    holder = [proc]
    del proc
    with pytest.warns(ResourceWarning, match="garbage-collected"):
        _drop_and_collect(holder)
    assert wait_gone(pid, 5.0)


def test_garbage_collected_stopped_process_warns_nothing() -> None:
    proc = ManagedProcess(["true"])
    proc.launch()
    proc.terminate_gracefully(timeout=5.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del proc
        gc.collect()
    assert [str(w.message) for w in caught] == []


@pytest.mark.allow_leaks  # it checks for leaks itself, and cleans up if procfound leaked
def test_garbage_collected_process_is_reaped_and_its_fds_closed() -> None:
    run(["true"])  # the shared portal's own fds exist before the snapshot (a worker's 1st test)
    fds_before = _open_fds()
    proc = ManagedProcess(["sleep", "60"])
    proc.launch()
    pid = proc.pid
    assert pid is not None
    try:
        holder = [proc]
        del proc
        with pytest.warns(ResourceWarning):
            _drop_and_collect(holder)
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            leaked = {fd: t for fd, t in _open_fds().items() if fds_before.get(fd) != t}
            if pid not in _zombie_children() and not leaked:
                break
            time.sleep(0.05)
        assert pid not in _zombie_children()
        assert leaked == {}
    finally:
        # Clean up whatever a regression left behind so later tests are not affected.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        for fd, target in _open_fds().items():
            if fds_before.get(fd) != target and (target.startswith("pipe:") or "pidfd" in target):
                os.close(fd)


def _run_script(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": PROCFOUND_ROOT}
    return subprocess.run(
        [PY, "-X", "dev", "-c", code], capture_output=True, text=True, timeout=30, env=env
    )


def test_running_process_is_stopped_at_interpreter_exit() -> None:
    result = _run_script(
        "from procfound import ManagedProcess\n"
        "proc = ManagedProcess(['sleep', '60'])\n"
        "proc.launch()\n"
        "print(proc.pid, flush=True)\n"
    )
    pid = int(result.stdout.split()[0])
    assert wait_gone(pid, 5.0)
    assert result.returncode == 0, result.stderr
    assert "ResourceWarning" not in result.stderr


def test_interpreter_exit_stops_children_gracefully_with_sigterm(tmp_path: Path) -> None:
    marker = tmp_path / "got-sigterm"
    child = (
        "import signal, sys, time\n"
        "def on_term(*_):\n"
        f"    open({str(marker)!r}, 'w').close()\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, on_term)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    result = _run_script(
        "import anyio\n"
        "from procfound import ManagedProcess, wait_for_process_output\n"
        f"proc = ManagedProcess([{PY!r}, '-c', {child!r}])\n"
        "proc.launch()\n"
        "anyio.run(wait_for_process_output, proc, ['ready'])\n"
        "print(proc.pid, flush=True)\n"
    )
    assert result.returncode == 0, result.stderr
    pid = int(result.stdout.split()[0])
    assert wait_gone(pid, 5.0)
    assert marker.exists()


@pytest.mark.parametrize(
    "kwargs",
    [{"ok_codes": (0, 1)}, {"idle_timeout": 5, "capture_output": False}],
    ids=["ok_codes", "idle-without-capture"],
)
def test_options_a_managed_process_cannot_honour_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match=next(iter(kwargs))):
        ManagedProcess(["true"], **kwargs)  # type: ignore[arg-type]
