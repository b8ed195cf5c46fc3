"""ManagedProcess on a terminal (issue 26, item 3): pty=True, pty_size, resize (SIGWINCH), end of
file by close_stdin, and write/expect exactly as on pipes, with real interactive programs."""

from __future__ import annotations

import re
import sys

import anyio
import pytest
from conftest import SyncCall, python

from procfound import ManagedProcess, ProcessError, StateError, ValidationError

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux terminals")

# Prints its terminal's size at start and again on each SIGWINCH, as "size ROWSxCOLS".
SIZE_REPORTER = python(
    """
    import os, signal, sys, time
    def report(*_):
        size = os.get_terminal_size(sys.stdout.fileno())
        os.write(1, f"size {size.lines}x{size.columns}\\n".encode())
    signal.signal(signal.SIGWINCH, report)
    report()
    while True:
        time.sleep(0.05)
    """
)
REPL = [sys.executable, "-q", "-i"]
REPL_ENV = {"PYTHON_BASIC_REPL": "1", "PYTHONSTARTUP": None}


@pytest.mark.anyio
async def test_python_repl_driven_on_a_terminal() -> None:
    async with ManagedProcess(REPL, env=REPL_ENV, pty=True) as repl:
        await repl.aexpect(">>> ")
        await repl.awrite("6 * 7\n")
        found = await repl.aexpect(re.compile(r"(\d+)\r\n>>> "))
        assert found.match.group(1) == "42"
        assert found.before == ""  # echo is off: the question did not come back
        await repl.awrite("import sys; sys.stdin.isatty(), sys.stdout.isatty()\n")
        found = await repl.aexpect(">>> ")
        assert found.before == "(True, True)\r\n"
        await repl.aclose_stdin()  # Ctrl-D at the prompt: the REPL exits
        assert repl.process is not None
        assert await anyio.to_thread.run_sync(repl.process.wait, 10) == 0


def test_python_repl_from_sync_code(sync_call: SyncCall) -> None:
    with ManagedProcess(REPL, env=REPL_ENV, pty=True) as repl:
        sync_call(repl.expect, ">>> ")
        sync_call(repl.write, "print('é' * 3)\n")
        assert sync_call(repl.expect, ">>> ").before == "ééé\r\n"


@pytest.mark.anyio
async def test_pty_size_and_resize_reach_the_child() -> None:
    async with ManagedProcess(SIZE_REPORTER, pty=True, pty_size=(30, 100)) as proc:
        await proc.aexpect("size 30x100\r\n")
        await proc.aresize(50, 132)
        await proc.aexpect("size 50x132\r\n")


def test_resize_from_sync_code(sync_call: SyncCall) -> None:
    with ManagedProcess(SIZE_REPORTER, pty=True) as proc:
        sync_call(proc.expect, "size 24x80\r\n")
        sync_call(proc.resize, 12, 40)
        sync_call(proc.expect, "size 12x40\r\n")


@pytest.mark.anyio
async def test_close_stdin_on_a_terminal_is_end_of_file_after_a_partial_line() -> None:
    counts = python(
        """
        import sys
        data = sys.stdin.read()
        print(f"got {data!r}", flush=True)
        """
    )
    async with ManagedProcess(counts, pty=True) as proc:
        await proc.awrite("first line\nno newline")
        await proc.aclose_stdin()
        await proc.aclose_stdin()
        found = await proc.aexpect(re.compile(r"got (.*)\r\n"))
        assert found.match.group(1) == repr("first line\nno newline")
        assert proc.process is not None
        assert await anyio.to_thread.run_sync(proc.process.wait, 10) == 0


@pytest.mark.anyio
async def test_cat_on_a_terminal_answers_each_line_once() -> None:
    async with ManagedProcess(["cat"], pty=True) as cat:
        for word in ("one", "two", "three"):
            await cat.awrite(word + "\n")
            found = await cat.aexpect("\r\n")
            assert found.before == word
        assert cat.process is not None
        assert cat.process.stdin is not None


@pytest.mark.anyio
async def test_resize_without_a_terminal_is_a_state_error() -> None:
    async with ManagedProcess(["sleep", "30"]) as proc:
        with pytest.raises(StateError, match="pty=True"):
            await proc.aresize(10, 10)


@pytest.mark.parametrize(
    ("rows", "cols"), [(0, 80), (24, 0), (70_000, 80), (24.5, 80), ("24", 80), (True, 80)]
)
def test_bad_sizes_are_refused(rows: object, cols: object) -> None:
    with ManagedProcess(["sleep", "30"], pty=True) as proc, pytest.raises(ValidationError):
        proc.resize(rows, cols)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_a_megabyte_of_lines_through_a_terminal_to_a_slow_reader() -> None:
    counter = python(
        """
        import sys, time
        total = 0
        for line in sys.stdin:
            total += len(line)
            if total % 65536 < 100:
                time.sleep(0.01)
        print("total", total, flush=True)
        """
    )
    data = ("x" * 99 + "\n") * 10_000
    async with ManagedProcess(counter, pty=True) as proc:
        with anyio.fail_after(60):
            await proc.awrite(data)
            await proc.aclose_stdin()
            found = await proc.aexpect(re.compile(r"total (\d+)\r\n"))
    assert int(found.match.group(1)) == len(data)


def test_writing_to_a_terminal_whose_child_exited_is_a_process_error(sync_call: SyncCall) -> None:
    with ManagedProcess(python("raise SystemExit(4)"), pty=True) as proc:
        assert proc.process is not None
        assert proc.process.wait(timeout=10) == 4
        with pytest.raises(ProcessError) as caught:
            sync_call(proc.write, "too late\n")
        assert caught.value.code == "PROCESS_STDIN_CLOSED"
        assert caught.value.return_code == 4


def test_expect_on_a_terminal_whose_child_exited_sees_its_last_words(sync_call: SyncCall) -> None:
    last_words = python("import sys; sys.stdout.write('goodbye'); sys.stdout.flush()")
    with ManagedProcess(last_words, pty=True) as proc:
        assert sync_call(proc.expect, "goodbye").before == ""
        with pytest.raises(ProcessError) as caught:
            sync_call(proc.expect, "more")
        assert caught.value.code == "PROCESS_EXITED_EARLY"
        assert caught.value.return_code == 0
