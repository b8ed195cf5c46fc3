"""``ManagedProcess.process``: the launched child as the seed's ``Popen`` showed it (pid,
returncode, poll, wait, send_signal, terminate, kill), and the seed's other ``ManagedProcess``
arguments: ``shell``, stdio targets, ``print_output``, ``bufsize`` and ``**kwargs``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import anyio
import pytest
from conftest import SyncCall, pid_alive, python

from procfound import ManagedProcess, ProcessError, ProcessHandle, ValidationError

SLEEP = ["sleep", "30"]
# Prints "ready", then a line for every SIGUSR1 it gets.
SIGNALLED = python(
    """
    import signal, time
    signal.signal(signal.SIGUSR1, lambda sig, frame: print("got", sig, flush=True))
    print("ready", flush=True)
    for _ in range(300):
        time.sleep(0.1)
    """
)


def test_process_is_none_until_launch_then_a_handle(sync_call: SyncCall) -> None:
    def scenario() -> None:
        proc = ManagedProcess(SLEEP)
        before = proc.process
        assert before is None
        with proc:
            handle = proc.process
            assert isinstance(handle, ProcessHandle)
            assert handle.pid == proc.pid
            assert handle.returncode is None
            assert handle.poll() is None
            assert handle.args == "sleep 30"

    sync_call(scenario)


def test_terminate_and_kill_end_the_child_with_their_signal(sync_call: SyncCall) -> None:
    def scenario() -> tuple[int, int, int | None]:
        with ManagedProcess(SLEEP) as first, ManagedProcess(SLEEP) as second:
            assert first.process is not None
            assert second.process is not None
            first.process.terminate()
            second.process.kill()
            return (
                first.process.wait(timeout=5),
                second.process.wait(timeout=5),
                first.process.poll(),
            )

    assert sync_call(scenario) == (-signal.SIGTERM, -signal.SIGKILL, -signal.SIGTERM)


def test_wait_timeout_raises_and_the_child_keeps_running(sync_call: SyncCall) -> None:
    def scenario() -> None:
        with ManagedProcess(SLEEP) as proc:
            handle = proc.process
            assert handle is not None
            started = time.monotonic()
            with pytest.raises(subprocess.TimeoutExpired) as caught:
                handle.wait(timeout=0.2)
            assert 0.1 < time.monotonic() - started < 10
            assert caught.value.timeout == 0.2
            assert proc.is_running()
            assert pid_alive(handle.pid)
            assert handle.poll() is None

    sync_call(scenario)


@pytest.mark.anyio
async def test_send_signal_reaches_the_childs_handler() -> None:
    async with ManagedProcess(SIGNALLED) as proc:
        assert await proc.read_line_async(timeout=10) == "ready"
        assert proc.process is not None
        proc.process.send_signal(signal.SIGUSR1)
        assert await proc.read_line_async(timeout=10) == f"got {int(signal.SIGUSR1)}"
        proc.process.send_signal("SIGUSR1")  # type: ignore[arg-type]  # names work too
        assert await proc.read_line_async(timeout=10) == f"got {int(signal.SIGUSR1)}"
        assert proc.process.poll() is None


def test_handle_after_exit_and_cleanup(sync_call: SyncCall) -> None:
    def scenario() -> None:
        proc = ManagedProcess(["sh", "-c", "exit 7"])
        proc.launch()
        handle = proc.process
        assert handle is not None
        assert handle.wait(timeout=5) == 7
        handle.send_signal(signal.SIGTERM)  # exited, not yet reaped: nothing happens
        proc.cleanup()
        assert proc.process is handle  # kept after cleanup (the seed set it to None)
        handle.terminate()
        handle.kill()
        assert (handle.returncode, handle.poll(), handle.wait(), handle.wait(timeout=0)) == (
            7,
            7,
            7,
            7,
        )
        assert proc.returncode == 7

    sync_call(scenario)


def test_bad_signal_is_refused(sync_call: SyncCall) -> None:
    def scenario() -> None:
        with ManagedProcess(SLEEP) as proc:
            assert proc.process is not None
            for bad in (0, 12345, -1, "SIGNOPE", 1.5):
                with pytest.raises(ValidationError):
                    proc.process.send_signal(bad)  # type: ignore[arg-type]
            assert proc.process.poll() is None

    sync_call(scenario)


@pytest.mark.anyio
async def test_shell_true_runs_the_first_element_as_a_script() -> None:
    async with ManagedProcess(["echo test"], shell=True) as proc:
        assert await proc.read_line_async(timeout=10) == "test"
    async with ManagedProcess(["echo $0 $1", "name", "arg"], shell=True) as proc:
        assert await proc.read_line_async(timeout=10) == "name arg"


def test_stdin_pipe_is_accepted_and_process_stdin_writes_to_it() -> None:
    # Refused before issue 26; now the seed's `proc.process.stdin.write(...)` works again.
    with ManagedProcess(["cat"], stdin=subprocess.PIPE) as proc:
        assert proc.process is not None
        assert proc.process.stdin is not None
        proc.process.stdin.write(b"fed\n")
        assert proc.expect("\n").before == "fed"


@pytest.mark.anyio
async def test_stdout_to_a_file(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    source = tmp_path / "in.txt"
    source.write_text("from stdin\n")
    with open(target, "wb") as out, open(source, "rb") as stdin:
        async with ManagedProcess(["cat"], stdout=out, stdin=stdin) as proc:
            assert proc.process is not None
            assert proc.process.wait(timeout=10) == 0
            with pytest.raises(ProcessError) as caught:
                await proc.read_line_async(timeout=1)
            assert caught.value.code == "PROCESS_NO_STDOUT"
    assert target.read_text() == "from stdin\n"


@pytest.mark.anyio
async def test_print_output_echoes_what_is_still_read(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with ManagedProcess(
        ["sh", "-c", "echo one; echo two; echo err >&2"], print_output=True, stderr_relay=False
    ) as proc:
        assert await proc.read_line_async(timeout=10) == "one"
        assert await proc.read_line_async(timeout=10) == "two"
        assert proc.process is not None
        proc.process.wait(timeout=10)
    assert sorted(capsys.readouterr().out.splitlines()) == ["err", "one", "two"]


def test_bufsize_and_kwargs_are_kept(sync_call: SyncCall) -> None:
    def scenario() -> None:
        proc = ManagedProcess(["echo", "abcdef"], bufsize=2, encoding="latin-1", stop_signal=2)
        assert proc.bufsize == 2
        assert proc.kwargs == {"encoding": "latin-1", "stop_signal": 2}
        with proc:
            # Reads are bufsize bytes long (not observable from outside: the owner's size).
            assert proc._owner is not None
            assert proc._owner.stdout.read_size == 2
            assert proc.process is not None
            proc.process.wait(timeout=10)
            assert proc.stdout_tail == "abcdef\n"
        default = ManagedProcess(["true"], bufsize=-1)
        with default:
            assert default._owner is not None
            assert default._owner.stdout.read_size > 1024

    sync_call(scenario)


@pytest.mark.anyio
async def test_small_bufsize_still_reads_whole_lines() -> None:
    async with ManagedProcess(["printf", "abcdef\\nxy\\n"], bufsize=1) as proc:
        assert await proc.read_line_async(timeout=10) == "abcdef"
        assert await proc.read_line_async(timeout=10) == "xy"


# -- two threads on one child (issue #22, item 8) ----------------------------------------------

IGNORES_TERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('up', flush=True); time.sleep(60)"
)


def test_wait_ends_when_the_child_exits_while_another_thread_terminates_it() -> None:
    with ManagedProcess([sys.executable, "-c", IGNORES_TERM], kill_grace=1.5) as proc:
        assert anyio.run(proc.read_line_async) == "up"
        handle = proc.process
        assert handle is not None
        stopper = threading.Thread(target=proc.terminate_gracefully, args=(1.5,))
        started = time.monotonic()
        stopper.start()
        try:
            time.sleep(0.2)  # the stop is in its grace: SIGTERM was ignored
            code = handle.wait(timeout=10)
        finally:
            stopper.join(30)
        elapsed = time.monotonic() - started
    assert code == -signal.SIGKILL  # its real code, after the grace
    assert elapsed > 1.0


def test_wait_ready_reports_the_real_code_when_another_thread_terminates_the_child() -> None:
    with ManagedProcess([sys.executable, "-c", IGNORES_TERM], kill_grace=1.5) as proc:
        stopper = threading.Timer(0.5, proc.terminate_gracefully, args=(1.5,))
        stopper.start()
        try:
            with pytest.raises(ProcessError, match="exited with code -9") as caught:
                proc.wait_ready(port=1, timeout=20)  # nothing listens there: never ready
        finally:
            stopper.join(30)
    assert caught.value.return_code == -signal.SIGKILL
