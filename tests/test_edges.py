"""The edges where the promises used to break: interpreter exit, fork, fd reuse, group leavers,
foreground children, a failing portal job, and the owner's reads (issue "One owner per child").

Each scenario that involves the interpreter's own lifetime runs in a fresh interpreter with an
outer timeout, under both portal backends, and checks afterwards that nothing it started is
still running.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from conftest import PY, SyncCall, pid_alive, wait_gone

import procfound
from procfound import ManagedProcess, ProcessError, ValidationError, wait_for_process_output

ROOT = str(Path(procfound.__file__).resolve().parent.parent)
BACKENDS = ["asyncio", "trio"]

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux semantics")


def fresh_interpreter(
    code: str, backend: str, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a new interpreter; a hang fails the test (and its group is killed)."""
    env = {**os.environ, "PYTHONPATH": ROOT, "PROCFOUND_BACKEND": backend}
    proc = subprocess.Popen(
        [PY, "-c", textwrap.dedent(code)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"the interpreter hung (killed after {timeout}s)\n{out}\n{err}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def pids_printed(out: str, tag: str = "PID") -> list[int]:
    return [int(line.split()[1]) for line in out.splitlines() if line.startswith(tag + " ")]


def assert_all_gone(pids: list[int]) -> None:
    assert pids, "the script printed no pid"
    survivors = [pid for pid in pids if not wait_gone(pid, 5.0)]
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert not survivors, f"still running after the call ended: {survivors}"


TICKER = "import os, sys, time\nprint(os.getpid(), flush=True)\nwhile True:\n time.sleep(0.05)"

# --------------------------------------------------------------------------------------------
# Interpreter exit
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_stream_held_in_a_global_at_exit_neither_hangs_nor_leaves_its_child(
    backend: str,
) -> None:
    done = fresh_interpreter(
        f"""
        import procfound, sys
        lines = procfound.stream([{PY!r}, "-c", {TICKER!r}])
        print("PID", next(lines), flush=True)
        print("exiting", flush=True)
        """,
        backend,
    )
    assert done.returncode == 0, done.stderr
    assert "exiting" in done.stdout
    assert_all_gone(pids_printed(done.stdout))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_batch_stream_in_a_reference_cycle_at_exit_neither_hangs_nor_leaves_its_child(
    backend: str,
) -> None:
    done = fresh_interpreter(
        f"""
        import procfound
        class Holder:
            pass
        holder = Holder()
        holder.me = holder
        holder.batches = procfound.stream_batches([{PY!r}, "-c", {TICKER!r}])
        print("PID", next(holder.batches)[0], flush=True)
        del holder
        """,
        backend,
    )
    assert done.returncode == 0, done.stderr
    assert_all_gone(pids_printed(done.stdout))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_sync_call_from_del_during_finalization_fails_at_once_instead_of_hanging(
    backend: str,
) -> None:
    done = fresh_interpreter(
        """
        import procfound
        class CleansUpWithASyncCall:
            def __del__(self):
                try:
                    procfound.run(["true"])
                    print("RAN", flush=True)
                except procfound.ProcessError as exc:
                    print("REFUSED", exc.code, flush=True)
        procfound.run(["true"])   # the portal is running when the interpreter starts to exit
        keeper = CleansUpWithASyncCall()
        """,
        backend,
    )
    assert done.returncode == 0, done.stderr
    # Either outcome is a promise kept; what matters is that it ended, and at once.
    assert "REFUSED PORTAL_CLOSED" in done.stdout or "RAN" in done.stdout, done.stdout


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_sync_call_after_the_exit_shutdown_is_refused_with_a_clear_error(backend: str) -> None:
    done = fresh_interpreter(
        """
        import atexit

        def late():
            import procfound
            try:
                procfound.run(["true"])
            except procfound.ProcessError as exc:
                print("REFUSED", exc.code, "|", exc, flush=True)

        atexit.register(late)  # before procfound registers its own hook, so it runs after it
        import procfound
        procfound.run(["true"])
        """,
        backend,
    )
    assert done.returncode == 0, done.stderr
    assert "REFUSED PORTAL_CLOSED" in done.stdout, done.stdout + done.stderr
    assert "exiting" in done.stdout


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_running_async_call_in_a_daemon_thread_loop_is_killed_at_exit(backend: str) -> None:
    done = fresh_interpreter(
        f"""
        import threading, anyio, procfound

        async def forever():
            async for line in procfound.async_stream([{PY!r}, "-c", {TICKER!r}]):
                print("PID", line, flush=True)

        threading.Thread(target=anyio.run, args=(forever,), daemon=True).start()
        import time
        time.sleep(1.5)
        """,
        backend,
    )
    assert done.returncode == 0, done.stderr
    assert_all_gone(pids_printed(done.stdout))


# --------------------------------------------------------------------------------------------
# fork
# --------------------------------------------------------------------------------------------

COUNTER = "import sys, time\nfor i in range(30):\n print(i, flush=True)\n time.sleep(0.02)"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("child_does", ["exits", "closes the stream", "uses procfound"])
def test_a_forked_child_never_touches_the_parents_open_stream(
    backend: str, child_does: str
) -> None:
    child_code = {
        "exits": "pass",
        "closes the stream": "lines.close()",
        "uses procfound": "assert procfound.run(['echo', 'x']).stdout == 'x\\n'",
    }[child_does]
    done = fresh_interpreter(
        f"""
        import os, sys, procfound
        lines = procfound.stream([{PY!r}, "-c", {COUNTER!r}])
        first = next(lines)
        pid = os.fork()
        if pid == 0:
            {child_code}
            sys.exit(0)       # a normal exit: atexit, finalization, the stream's cleanup
        _, status = os.waitpid(pid, 0)
        print("CHILD", os.waitstatus_to_exitcode(status), flush=True)
        rest = list(lines)
        print("LINES", [first, *rest] == [str(i) for i in range(30)], flush=True)
        """,
        backend,
    )
    assert done.returncode == 0, done.stderr
    assert "CHILD 0" in done.stdout, done.stdout + done.stderr
    assert "LINES True" in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_forked_child_cannot_read_the_parents_stream_and_is_told_why(backend: str) -> None:
    done = fresh_interpreter(
        f"""
        import os, sys, procfound
        lines = procfound.stream([{PY!r}, "-c", {COUNTER!r}])
        next(lines)
        pid = os.fork()
        if pid == 0:
            try:
                next(lines)
            except procfound.StateError as exc:
                print("REFUSED", exc.code, flush=True)
                os._exit(0)
            os._exit(1)
        _, status = os.waitpid(pid, 0)
        print("CHILD", os.waitstatus_to_exitcode(status), flush=True)
        print("REST", len(list(lines)), flush=True)
        """,
        backend,
    )
    assert done.returncode == 0, done.stderr
    assert "REFUSED FORKED_STREAM" in done.stdout
    assert "CHILD 0" in done.stdout
    assert "REST 29" in done.stdout


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_forked_child_leaves_the_parents_managed_process_alone(backend: str) -> None:
    done = fresh_interpreter(
        f"""
        import os, sys, anyio, procfound
        with procfound.ManagedProcess([{PY!r}, "-c", {COUNTER!r}]) as proc:
            first = anyio.run(proc.read_line_async)
            pid = os.fork()
            if pid == 0:
                proc.terminate_gracefully()   # the parent's child: nothing to do here
                sys.exit(0)
            _, status = os.waitpid(pid, 0)
            print("CHILD", os.waitstatus_to_exitcode(status), flush=True)
            print("RUNNING", proc.is_running(), flush=True)
            print("NEXT", anyio.run(proc.read_line_async), flush=True)
        """,
        backend,
    )
    assert done.returncode == 0, done.stderr
    assert "CHILD 0" in done.stdout
    assert "RUNNING True" in done.stdout
    assert "NEXT 1" in done.stdout


SERVER = "import time\nprint(0, flush=True)\ntime.sleep(60)"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_forked_child_cannot_signal_or_wait_through_the_parents_handle(backend: str) -> None:
    done = fresh_interpreter(
        f"""
        import os, signal, sys, anyio, procfound
        with procfound.ManagedProcess([{PY!r}, "-c", {SERVER!r}]) as proc:
            handle = proc.process
            first = anyio.run(proc.read_line_async)
            pid = os.fork()
            if pid == 0:
                refused = []
                for attempt in (handle.kill, handle.terminate, lambda: handle.wait(1)):
                    try:
                        attempt()
                    except procfound.StateError as exc:
                        refused.append(exc.code)
                print("REFUSED", refused, flush=True)
                sys.exit(0)
            _, status = os.waitpid(pid, 0)
            print("CHILD", os.waitstatus_to_exitcode(status), flush=True)
            print("RUNNING", proc.is_running(), handle.poll(), flush=True)
            handle.send_signal(signal.SIGTERM)
            print("WAITED", handle.wait(timeout=10), flush=True)
        """,
        backend,
    )
    assert done.returncode == 0, done.stderr
    assert "REFUSED ['FORKED_PROCESS', 'FORKED_PROCESS', 'FORKED_PROCESS']" in done.stdout
    assert "CHILD 0" in done.stdout
    assert "RUNNING True None" in done.stdout
    assert "WAITED -15" in done.stdout, done.stdout + done.stderr


# --------------------------------------------------------------------------------------------
# One owner: reads racing terminate while fd numbers are reused
# --------------------------------------------------------------------------------------------


@pytest.fixture
def fd_churn(tmp_path: Path) -> Iterator[None]:
    """Another thread opening and closing a file whose bytes must never show up in a read."""
    foreign = tmp_path / "foreign"
    foreign.write_bytes(b"FOREIGN BYTES\n" * 100)
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            fd = os.open(foreign, os.O_RDONLY)
            os.close(fd)

    thread = threading.Thread(target=churn, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(5)


SLOW_LINES = "import time\nwhile True:\n print('line', flush=True)\n time.sleep(0.002)"


@pytest.mark.anyio
@pytest.mark.usefixtures("fd_churn")
async def test_reads_racing_terminate_never_see_another_files_bytes() -> None:
    outcomes: set[str] = set()
    for attempt in range(20):
        proc = ManagedProcess([PY, "-c", SLOW_LINES], stderr_relay=False)
        await proc.alaunch()
        got: list[str] = []

        async def reader(proc: ManagedProcess = proc, got: list[str] = got) -> None:
            try:
                while True:
                    line = await proc.read_line_async(timeout=5)
                    got.append(line)
                    if not line:
                        outcomes.add("end")
                        return
            except ProcessError:
                outcomes.add("process-error")

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(reader)
            await anyio.sleep(0.01 * (attempt % 5))
            await proc.aterminate_gracefully(1)
        await proc.acleanup()
        assert set(got) <= {"line", ""}, got
    assert outcomes


@pytest.mark.anyio
@pytest.mark.usefixtures("fd_churn")
async def test_handshake_and_char_reads_racing_terminate_end_cleanly() -> None:
    for attempt in range(10):
        proc = ManagedProcess([PY, "-c", SLOW_LINES], stderr_relay=False)
        await proc.alaunch()

        async def waiter(proc: ManagedProcess = proc) -> None:
            # "never" does not appear: the wait ends with the terminate, one way or another.
            with pytest.raises((ProcessError, TimeoutError)):
                await wait_for_process_output(proc, ["never"], timeout=5)

        async def chars(proc: ManagedProcess = proc) -> None:
            try:
                while char := await proc.read_char_async(timeout=5):
                    assert char in "line\n"
            except ProcessError:
                pass

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(waiter)
            tasks.start_soon(chars)
            await anyio.sleep(0.01 * (attempt % 4))
            await proc.aterminate_gracefully(1)
        await proc.acleanup()


# --------------------------------------------------------------------------------------------
# Children that leave their group, and foreground children
# --------------------------------------------------------------------------------------------

# A direct child leads its own group, so it can only move into another existing group of its
# session: its parent's (ours). Signals to its original group then reach nobody.
LEAVES_GROUP = (
    "import os, time\nos.setpgid(0, os.getpgid(os.getppid()))\n"
    "print(os.getpid(), flush=True)\ntime.sleep(60)"
)
# Ignoring SIGTERM as well: only SIGKILL through its pidfd can stop it.
LEAVES_GROUP_DEAF = "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n" + LEAVES_GROUP


@pytest.mark.parametrize("code", [LEAVES_GROUP, LEAVES_GROUP_DEAF], ids=["polite", "deaf"])
def test_a_run_whose_child_left_its_group_times_out_and_stops_it(
    sync_call: SyncCall, code: str
) -> None:
    started = time.monotonic()
    with pytest.raises(procfound.ProcessTimeoutError) as caught:
        sync_call(procfound.run, [PY, "-c", code], timeout=1.5)
    assert time.monotonic() - started < 5
    pid = int(caught.value.stdout.strip())
    assert wait_gone(pid, 2)
    assert "did not exit" not in caught.value.message  # not "did not exit within 5s of SIGKILL"


@pytest.mark.anyio
@pytest.mark.parametrize("code", [LEAVES_GROUP, LEAVES_GROUP_DEAF], ids=["polite", "deaf"])
async def test_async_run_whose_child_left_its_group_is_stopped_on_cancel(code: str) -> None:
    lines: list[str] = []

    async def collect() -> None:
        async for line in procfound.async_stream([PY, "-c", code]):
            lines.append(line)

    started = anyio.current_time()
    with anyio.move_on_after(1.5):
        await collect()
    assert anyio.current_time() - started < 5
    assert lines
    assert wait_gone(int(lines[0]), 2)


@pytest.mark.parametrize(
    ("code", "polite"), [(LEAVES_GROUP, True), (LEAVES_GROUP_DEAF, False)], ids=["polite", "deaf"]
)
def test_terminate_gracefully_stops_a_managed_child_that_left_its_group(
    code: str, polite: bool
) -> None:
    proc = ManagedProcess([PY, "-c", code], stderr_relay=False)
    proc.launch()
    try:
        pid = int(anyio.run(proc.read_line_async, 5.0))
        started = time.monotonic()
        assert proc.terminate_gracefully(1) is polite  # SIGTERM reached it, or SIGKILL did
        assert time.monotonic() - started < 3
        assert not pid_alive(pid)
    finally:
        proc.cleanup()


def _release(held: list[ManagedProcess]) -> None:
    """Drop the last reference, and collect: an earlier test's traceback may hold a cycle."""
    held.clear()
    gc.collect()


def test_a_garbage_collected_foreground_managed_process_is_really_killed() -> None:
    proc = ManagedProcess(["sleep", "60"], foreground=True)
    proc.launch()
    pid = proc.pid
    assert pid is not None
    held = [proc]
    del proc
    with pytest.warns(ResourceWarning, match="garbage-collected"):
        _release(held)
    assert wait_gone(pid, 3)
    # Its owner reaps it too: no zombie is left for the leak check.


@pytest.mark.anyio
async def test_a_garbage_collected_managed_process_that_left_its_group_is_killed() -> None:
    proc = ManagedProcess([PY, "-c", LEAVES_GROUP], stderr_relay=False)
    await proc.alaunch()
    pid = int(await proc.read_line_async(5))
    held = [proc]
    del proc
    with pytest.warns(ResourceWarning):
        _release(held)
    assert await anyio.to_thread.run_sync(wait_gone, pid, 3.0)


# --------------------------------------------------------------------------------------------
# The portal bridge
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_failing_portal_job_is_logged_and_later_calls_still_work(backend: str) -> None:
    done = fresh_interpreter(
        """
        import logging, threading, time, procfound
        from procfound.bridge import portal
        logging.basicConfig(level=logging.ERROR)
        ran = threading.Event()

        async def broken():
            ran.set()
            raise RuntimeError("a job that fails")

        async def very_broken():
            raise KeyboardInterrupt  # not even an Exception

        procfound.run(["true"])
        portal.submit(broken)
        portal.submit(very_broken)
        assert ran.wait(5)
        time.sleep(0.2)
        for _ in range(3):
            assert procfound.run(["echo", "still"]).stdout == "still\\n"
        with procfound.ManagedProcess(["sleep", "30"]) as proc:
            assert proc.is_running()
        print("OK", flush=True)
        """,
        backend,
    )
    assert done.returncode == 0, done.stderr
    assert "OK" in done.stdout
    assert "a job that fails" in done.stderr  # logged, not lost


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_dead_portal_loop_is_replaced_by_the_next_call(backend: str) -> None:
    done = fresh_interpreter(
        """
        import procfound
        from procfound.bridge import portal
        procfound.run(["true"])
        thread = portal._thread
        # Kill the loop from inside, as a crash would: stop it without shutdown().
        portal.get_portal().call(portal.get_portal().stop, True)
        thread.join(5)
        assert not thread.is_alive()
        assert procfound.run(["echo", "again"]).stdout == "again\\n"
        print("OK", portal._thread is not thread, flush=True)
        """,
        backend,
    )
    assert done.returncode == 0, done.stderr
    assert "OK True" in done.stdout


def test_sync_errors_carry_the_sync_code_and_async_ones_the_async_code(
    sync_call: SyncCall,
) -> None:
    with pytest.raises(ProcessError) as sync_error:
        sync_call(procfound.run, ["false"])
    assert sync_error.value.code == "PROCESS_COMMAND_FAILED"

    async def main() -> str:
        try:
            await procfound.async_run(["false"])
        except ProcessError as exc:
            return exc.code
        return "no error"

    assert anyio.run(main) == "PROCESS_ASYNC_FAILED"


# --------------------------------------------------------------------------------------------
# The owner's reads: handshake argument, encodings, bad timeouts
# --------------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("parts", ["ready", b"ready", None, 42, ["ready", 1]])
async def test_wait_for_process_output_refuses_anything_but_a_list_of_str(parts: object) -> None:
    async with ManagedProcess(["sh", "-c", "echo 'dyear: still booting'; exec sleep 30"]) as proc:
        with pytest.raises(ValidationError, match="expected"):
            await wait_for_process_output(proc, parts, timeout=2)  # type: ignore[arg-type]
        # Nothing was consumed by the refused call.
        assert await proc.read_line_async(5) == "dyear: still booting"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("encoding", "payload", "expected"),
    [
        ("latin-1", b"\xe9ab", ["é", "a", "b"]),
        ("utf-8", "é€😀a".encode(), ["é", "€", "😀", "a"]),
        ("cp1252", b"\x80x", ["€", "x"]),
        ("shift_jis", "日本".encode("shift_jis"), ["日", "本"]),
    ],
)
async def test_read_char_async_decodes_one_character_of_the_chosen_encoding(
    encoding: str, payload: bytes, expected: list[str]
) -> None:
    code = f"import sys; sys.stdout.buffer.write({payload!r}); sys.stdout.flush()"
    async with ManagedProcess(
        [PY, "-c", code + "; import time; time.sleep(30)"], encoding=encoding
    ) as proc:
        chars = [await proc.read_char_async(5) for _ in expected]
    assert chars == expected


@pytest.mark.anyio
async def test_a_character_split_across_writes_is_read_whole_and_a_timeout_loses_nothing() -> None:
    code = (
        "import sys, time\n"
        "sys.stdout.buffer.write(b'\\xe2'); sys.stdout.flush(); time.sleep(0.6)\n"
        "sys.stdout.buffer.write(b'\\x82\\xac\\n'); sys.stdout.flush(); time.sleep(30)"
    )
    async with ManagedProcess([PY, "-c", code]) as proc:
        with pytest.raises(TimeoutError):
            await proc.read_char_async(0.1)  # only the first byte has come
        assert await proc.read_char_async(5) == "€"
        assert await proc.read_line_async(5) == ""  # the rest of the line: its newline


@pytest.mark.anyio
@pytest.mark.parametrize("timeout", [float("nan"), "1", -1, [1]])
async def test_bad_read_timeouts_are_validation_errors(timeout: object) -> None:
    async with ManagedProcess(["sh", "-c", "echo hi; exec sleep 30"]) as proc:
        with pytest.raises(ValidationError):
            await proc.read_line_async(timeout)  # type: ignore[arg-type]
        with pytest.raises(ValidationError):
            await proc.read_char_async(timeout)  # type: ignore[arg-type]
        with pytest.raises(ValidationError):
            await wait_for_process_output(proc, ["hi"], timeout=timeout)  # type: ignore[arg-type]
        assert await proc.read_line_async(5) == "hi"
        if timeout != -1:  # a negative grace means "SIGKILL at once", as it always has
            with pytest.raises(ValidationError):
                await proc.aterminate_gracefully(timeout)  # type: ignore[arg-type]
            assert proc.is_running()


@pytest.mark.anyio
async def test_a_chatty_child_nobody_reads_is_held_by_its_pipe_not_our_memory() -> None:
    # 64 MiB written, nothing read: the owner keeps a few MiB, then the child waits on its pipe.
    code = "import sys\nfor _ in range(1024):\n sys.stdout.write('x' * 65535 + '\\n')\nprint('END')"
    async with ManagedProcess([PY, "-c", code]) as proc:
        await anyio.sleep(1.0)
        assert proc.is_running()  # blocked on the full pipe, not finished
        lines = 0
        while (line := await proc.read_line_async(10)) != "END":
            assert len(line) == 65535
            lines += 1
        assert lines == 1024


def test_no_thread_is_left_behind_by_many_managed_processes() -> None:
    before = threading.active_count()
    for _ in range(30):
        with ManagedProcess(["sh", "-c", "echo hi; exec sleep 30"]) as proc:
            assert anyio.run(proc.read_line_async, 5.0) == "hi"
    assert threading.active_count() <= before + 1  # at most the portal, started on first use
