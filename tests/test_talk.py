"""Writing to a ManagedProcess's stdin (issue 26, item 1): write/awrite, close_stdin, the Popen-like
``process.stdin``, from asyncio, trio and sync code, on real children."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import anyio
import pytest
from conftest import SLOW_READER, SyncCall, Ticker, python

from procfound import ManagedProcess, ProcessError, ProcessTimeoutError, StateError, ValidationError

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux children")

PIPE = subprocess.PIPE
BIG = 4 * 1024 * 1024

SLOW_COUNTER = python(SLOW_READER)
# Echoes each line of stdin back, with its bytes shown as hex, until end of file.
HEX_ECHO = python(
    """
    import sys
    for line in sys.stdin.buffer:
        sys.stdout.write(line.hex() + "\\n")
        sys.stdout.flush()
    sys.stdout.write("eof\\n")
    sys.stdout.flush()
    """
)


@pytest.mark.anyio
async def test_a_write_bigger_than_the_pipe_leaves_the_loop_running() -> None:
    ticker = Ticker()

    async with ManagedProcess(SLOW_COUNTER, stdin=PIPE) as proc:
        async with anyio.create_task_group() as group:
            group.start_soon(ticker.run)
            with anyio.fail_after(60):
                await proc.awrite(b"x" * BIG)
            group.cancel_scope.cancel()
        assert ticker.ticks >= 10  # the loop ran another task while the pipe was full
        await proc.aclose_stdin()
        assert await proc.read_line_async(timeout=30) == str(BIG)


def test_a_big_write_from_sync_code(sync_call: SyncCall) -> None:
    with ManagedProcess(SLOW_COUNTER, stdin=PIPE) as proc:
        sync_call(proc.write, "é" * (BIG // 2))  # a str, encoded as UTF-8: 2 bytes each
        sync_call(proc.close_stdin)
        assert sync_call(proc.expect, "\n", timeout=30).before == str(BIG)


@pytest.mark.anyio
async def test_str_is_encoded_with_the_process_encoding_and_bytes_go_as_they_are() -> None:
    async with ManagedProcess(HEX_ECHO, stdin=PIPE, encoding="latin-1") as proc:
        await proc.awrite("é\n")
        assert await proc.read_line_async(timeout=10) == "e90a"
        await proc.awrite(b"\xc3\xa9\n")
        assert await proc.read_line_async(timeout=10) == "c3a90a"


@pytest.mark.anyio
async def test_writing_to_a_child_that_exited_is_a_process_error_with_its_code() -> None:
    async with ManagedProcess(python("import sys; sys.exit(3)"), stdin=PIPE) as proc:
        with anyio.fail_after(10):
            while proc.returncode is None:
                await anyio.sleep(0.01)
        with pytest.raises(ProcessError) as caught:
            await proc.awrite(b"hello\n")
    error = caught.value
    assert not isinstance(error, ProcessTimeoutError)
    assert error.code == "PROCESS_STDIN_CLOSED"
    assert error.return_code == 3
    assert not isinstance(error.__cause__, BrokenPipeError)


def test_writing_to_a_child_that_closed_its_stdin_is_a_process_error(sync_call: SyncCall) -> None:
    closes_stdin = python(
        """
        import os, sys, time
        os.close(0)
        sys.stdout.write("closed\\n")
        sys.stdout.flush()
        time.sleep(30)
        """
    )
    with ManagedProcess(closes_stdin, stdin=PIPE) as proc:
        assert sync_call(proc.expect, "\n", timeout=10).before == "closed"
        with pytest.raises(ProcessError) as caught:
            sync_call(proc.write, b"x" * 100_000)
        assert caught.value.code == "PROCESS_STDIN_CLOSED"
        assert caught.value.return_code is None  # it still runs
        assert proc.is_running()


@pytest.mark.anyio
async def test_a_write_timeout_says_how_many_bytes_went_in() -> None:
    total = 16 * 1024 * 1024
    async with ManagedProcess(["sleep", "30"], stdin=PIPE) as proc:
        with pytest.raises(ProcessTimeoutError) as caught:
            await proc.awrite(b"y" * total, timeout=0.5)
        error = caught.value
        assert isinstance(error, TimeoutError)
        assert error.code == "PROCESS_WRITE_TIMEOUT"
        written = error.context["bytes_written"]
        assert 0 < written < total
        assert f"{written} of {total} bytes" in str(error)
        assert proc.is_running()


@pytest.mark.anyio
async def test_close_stdin_is_end_of_file_and_safe_twice() -> None:
    async with ManagedProcess(HEX_ECHO, stdin=PIPE) as proc:
        await proc.awrite("a\n")
        await proc.aclose_stdin()
        await proc.aclose_stdin()
        assert await proc.read_line_async(timeout=10) == "610a"
        assert await proc.read_line_async(timeout=10) == "eof"
        assert await anyio.to_thread.run_sync(proc.process.wait, 10) == 0
        with pytest.raises(StateError, match="close_stdin"):
            await proc.awrite("late\n")


def test_close_stdin_twice_from_sync_code(sync_call: SyncCall) -> None:
    with ManagedProcess(["cat"], stdin=PIPE) as proc:
        sync_call(proc.close_stdin)
        sync_call(proc.close_stdin)
        assert proc.process is not None
        assert proc.process.wait(timeout=10) == 0


@pytest.mark.anyio
async def test_writes_from_two_tasks_never_interleave() -> None:
    size = 1024 * 1024
    # Prints the runs of equal bytes in its stdin: "a:1048576 b:1048576" if nothing interleaved.
    runs = python(
        """
        import itertools, sys
        data = sys.stdin.buffer.read()
        print(" ".join(f"{chr(k)}:{len(list(g))}" for k, g in itertools.groupby(data)))
        """
    )
    async with ManagedProcess(runs, stdin=PIPE) as proc:
        async with anyio.create_task_group() as group:
            group.start_soon(proc.awrite, b"a" * size)
            group.start_soon(proc.awrite, b"b" * size)
        await proc.aclose_stdin()
        line = await proc.read_line_async(timeout=30)
    assert sorted(line.split()) == [f"a:{size}", f"b:{size}"]


def test_process_stdin_is_a_writable_binary_file(sync_call: SyncCall) -> None:
    with ManagedProcess(["cat"], stdin=PIPE) as proc:
        assert proc.process is not None
        stdin = proc.process.stdin
        assert stdin is not None
        assert stdin.writable()
        assert sync_call(stdin.write, b"hello\n") == 6
        sync_call(stdin.flush)
        assert sync_call(proc.expect, "\n", timeout=10).before == "hello"
        sync_call(stdin.close)
        assert stdin.closed
        assert proc.process.wait(timeout=10) == 0


def test_process_stdin_is_none_without_a_pipe() -> None:
    with ManagedProcess(["sleep", "30"]) as proc:
        assert proc.process is not None
        assert proc.process.stdin is None


@pytest.mark.anyio
async def test_writing_without_stdin_pipe_is_a_state_error_saying_how() -> None:
    async with ManagedProcess(["sleep", "30"]) as proc:
        with pytest.raises(StateError) as caught:
            await proc.awrite("x")
        with pytest.raises(StateError):
            await proc.aclose_stdin()
    assert "stdin=subprocess.PIPE" in str(caught.value)
    assert caught.value.code == "PROCESS_NO_STDIN"


def test_writing_something_else_than_text_or_bytes_is_refused() -> None:
    with ManagedProcess(["cat"], stdin=PIPE) as proc, pytest.raises(ValidationError):
        proc.write(12)  # type: ignore[arg-type]


def test_writing_before_launch_is_an_error() -> None:
    proc = ManagedProcess(["cat"], stdin=PIPE)
    with pytest.raises(ProcessError, match="launch"):
        proc.write("x")


def test_a_blocked_write_holds_up_neither_the_portal_nor_other_children() -> None:
    # A sync write waits in its portal call; procfound's portal serves everyone else meanwhile.
    with (
        ManagedProcess(["sleep", "30"], stdin=PIPE) as stuck,
        ManagedProcess(["cat"], stdin=PIPE) as cat,
    ):
        outcome: list[BaseException] = []

        def write_forever() -> None:
            try:
                stuck.write(b"z" * (16 * 1024 * 1024), timeout=5)
            except BaseException as exc:
                outcome.append(exc)

        thread = threading.Thread(target=write_forever)
        thread.start()
        try:
            time.sleep(0.2)  # the write is waiting for room now
            started = time.monotonic()
            for word in ("one", "two", "three"):
                cat.write(word + "\n")
                assert cat.expect("\n").before == word
            assert time.monotonic() - started < 2
            assert thread.is_alive()
        finally:
            thread.join(15)
        assert isinstance(outcome[0], ProcessTimeoutError)


@pytest.mark.anyio
async def test_a_write_waiting_when_the_process_is_stopped_says_so() -> None:
    async with (
        ManagedProcess(["sleep", "30"], stdin=PIPE) as proc,
        anyio.create_task_group() as group,
    ):

        async def stop_soon() -> None:
            await anyio.sleep(0.3)
            await proc.aterminate_gracefully(timeout=5)

        group.start_soon(stop_soon)
        with pytest.raises(ProcessError) as caught:
            await proc.awrite(b"w" * (16 * 1024 * 1024), timeout=10)
    assert not isinstance(caught.value, ProcessTimeoutError)
    assert caught.value.code == "PROCESS_STDIN_CLOSED"
    assert caught.value.return_code == -15  # SIGTERM


def test_a_write_cut_short_by_the_stop_while_an_escapee_holds_stdin(tmp_path: Path) -> None:
    # The grandchild leaves the group (setsid) with the stdin pipe: stopping the group leaves the
    # pipe open and full, and the waiting write is ended by the stop itself.
    pid_file = tmp_path / "escapee.pid"
    spawns_escapee = python(
        f"""
        import subprocess, time
        escapee = subprocess.Popen(["sleep", "30"], start_new_session=True)  # our stdin too
        with open({str(pid_file)!r}, "w") as file:
            file.write(str(escapee.pid))
        time.sleep(30)
        """
    )
    proc = ManagedProcess(spawns_escapee, stdin=PIPE, contain="group")
    try:
        with proc:
            deadline = time.monotonic() + 10
            while not pid_file.exists() or not pid_file.read_text().strip():
                assert time.monotonic() < deadline
                time.sleep(0.01)
            timer = threading.Timer(0.3, proc.terminate_gracefully, kwargs={"timeout": 5})
            timer.start()
            try:
                with pytest.raises(ProcessError) as caught:
                    proc.write(b"e" * (16 * 1024 * 1024), timeout=10)
            finally:
                timer.join()
    finally:
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
    assert not isinstance(caught.value, (StateError, ProcessTimeoutError))
    assert caught.value.code == "PROCESS_STDIN_CLOSED"
    assert "stopped" in str(caught.value)


def test_the_sync_forms_keep_the_async_forms_signatures_and_docs() -> None:
    import inspect

    for name in ("write", "close_stdin", "expect", "resize"):
        twin, coroutine = getattr(ManagedProcess, name), getattr(ManagedProcess, "a" + name)
        assert inspect.signature(twin) == inspect.signature(coroutine)
        assert not inspect.iscoroutinefunction(twin)
        assert twin.__doc__
        assert "await" not in twin.__doc__


@pytest.mark.anyio
async def test_a_write_timed_out_behind_another_counts_only_its_own_bytes() -> None:
    async with ManagedProcess(SLOW_COUNTER, stdin=PIPE) as proc:
        async with anyio.create_task_group() as group:

            async def first() -> None:
                with pytest.raises(ProcessTimeoutError):
                    await proc.awrite(b"1" * (64 * 1024 * 1024), timeout=2)

            group.start_soon(first)
            await anyio.sleep(0.2)  # the first write holds the queue and goes on going in
            with pytest.raises(ProcessTimeoutError) as caught:
                await proc.awrite(b"2" * 1000, timeout=0.5)
        assert caught.value.context["bytes_written"] == 0


def test_a_forked_child_does_not_keep_the_stdin_pipe_open() -> None:
    # The fork's copy of our end of cat's stdin is closed in the fork at once: closing ours is
    # end of file for cat although the fork still lives.
    scenario = """
        import os, subprocess, sys, time
        from procfound import ManagedProcess
        with ManagedProcess(["cat"], stdin=subprocess.PIPE) as cat:
            cat.write("x\\n")
            fork = os.fork()
            if fork == 0:
                time.sleep(5)
                os._exit(0)
            cat.close_stdin()
            print("cat exited", cat.process.wait(timeout=3), flush=True)
            os.kill(fork, 9)
            os.waitpid(fork, 0)
    """
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    done = subprocess.run(python(scenario), env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "cat exited 0"
