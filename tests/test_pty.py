"""``pty=True``: the child on a pseudo-terminal of its own (run, stream and the batch forms).

Real programs only (``tty``, ``stty``, ``cat``, ``sh``, Python children), under asyncio and trio
and from sync code (plain and inside a running loop).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import SyncCall, python, wait_gone

from procfound import (
    PlatformError,
    ProcessError,
    ProcessTimeoutError,
    ValidationError,
    async_run,
    async_stream,
    async_stream_batches,
    pipe,
    run,
    stream,
    stream_batches,
)

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith(("linux", "darwin")), reason="pseudo-terminals: Linux, macOS"
)

ISATTY = python("import os; print([os.isatty(fd) for fd in (0, 1, 2)])")
DEV_TTY = ["sh", "-c", "exec 3<>/dev/tty && echo opened"]
READ_ALL = python("import sys; print(repr(sys.stdin.read()))")
COLOUR = python(
    """
    import sys
    print("\\033[31mred\\033[0m" if sys.stdout.isatty() else "plain")
    """
)


def _terminals() -> int:
    """How many pseudo-terminal masters this process has open."""
    count = 0
    for entry in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{entry}")
        except OSError:
            continue
        count += target in ("/dev/ptmx", "/dev/pts/ptmx")
    return count


@pytest.fixture(autouse=True)
def no_terminal_left() -> Any:
    """Every call closes both of our ends of its terminal (conftest's no_leaks checks the rest)."""
    if not sys.platform.startswith("linux"):
        yield
        return
    before = _terminals()
    yield
    deadline = time.monotonic() + 3
    while _terminals() != before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _terminals() == before, "a terminal's master fd was left open"


# -- the terminal the child sees ---------------------------------------------------------------


def test_stdin_stdout_and_stderr_are_the_terminal(sync_call: SyncCall) -> None:
    assert sync_call(run, ISATTY, pty=True).stdout == "[True, True, True]\n"
    assert sync_call(run, ISATTY).stdout == "[False, False, False]\n"


@pytest.mark.anyio
async def test_stdin_stdout_and_stderr_are_the_terminal_async() -> None:
    assert (await async_run(ISATTY, pty=True)).stdout == "[True, True, True]\n"


def test_it_is_the_controlling_terminal(sync_call: SyncCall) -> None:
    name = sync_call(run, ["tty"], pty=True).stdout.strip()
    assert name.startswith("/dev/"), name
    assert sync_call(run, DEV_TTY, pty=True).stdout == "opened\n"
    # The session is the child's own, and its group is the terminal's foreground group.
    ids = sync_call(
        run,
        python("import os; print(os.getsid(0) == os.getpid() == os.tcgetpgrp(0))"),
        pty=True,
    )
    assert ids.stdout == "True\n"


def test_the_controlling_terminal_through_the_python_helper(
    sync_call: SyncCall, tmp_path: Path
) -> None:
    # A cwd that PWD does not name, and the parent-death signal, take the exact Python helper
    # instead of the /bin/sh line.
    assert sync_call(run, DEV_TTY, pty=True, cwd=tmp_path).stdout == "opened\n"
    assert sync_call(run, DEV_TTY, pty=True, kill_on_parent_death=True).stdout == "opened\n"


def test_the_popen_path_gives_the_same_terminal(spawn_path: str, tmp_path: Path) -> None:
    assert run(DEV_TTY, pty=True).stdout == "opened\n"
    assert run(DEV_TTY, pty=True, cwd=tmp_path).stdout == "opened\n"
    assert run(ISATTY, pty=True).stdout == "[True, True, True]\n"


def test_size_default_and_chosen(sync_call: SyncCall) -> None:
    assert sync_call(run, ["stty", "size"], pty=True).stdout == "24 80\n"
    assert sync_call(run, ["stty", "size"], pty=True, pty_size=(50, 132)).stdout == "50 132\n"


@pytest.mark.anyio
async def test_size_async() -> None:
    assert (await async_run(["stty", "size"], pty=True, pty_size=[3, 7])).stdout == "3 7\n"


def test_a_program_that_colours_only_on_a_terminal(sync_call: SyncCall) -> None:
    assert sync_call(run, COLOUR).stdout == "plain\n"
    assert sync_call(run, COLOUR, pty=True).stdout == "\x1b[31mred\x1b[0m\n"


# -- input -----------------------------------------------------------------------------------


def test_echo_is_off(sync_call: SyncCall) -> None:
    result = sync_call(run, ["cat"], pty=True, input="secret\n")
    assert result.stdout == "secret\n"  # once: cat's copy, not the terminal's echo
    read = sync_call(run, python("import sys; sys.stdin.readline()"), pty=True, input="hidden\n")
    assert read.stdout == ""


@pytest.mark.parametrize(("given", "read"), [("abc", "'abc'"), ("abc\n", "'abc\\n'"), ("", "''")])
def test_input_is_followed_by_the_end_of_file(sync_call: SyncCall, given: str, read: str) -> None:
    # Without a final newline one ^D only hands over the partial line: a second one is sent.
    assert sync_call(run, READ_ALL, pty=True, input=given, timeout=20).stdout == read + "\n"
    assert sync_call(run, ["cat"], pty=True, input=given, timeout=20).stdout == given


@pytest.mark.anyio
async def test_input_without_newline_async() -> None:
    result = await async_run(READ_ALL, pty=True, input=b"x\ny", timeout=20)
    assert result.stdout == "'x\\ny'\n"


def test_without_input_the_child_reads_the_end_of_file(sync_call: SyncCall) -> None:
    # As /dev/null is for a pipe call: a child that reads its stdin finishes.
    started = time.monotonic()
    assert sync_call(run, ["cat"], pty=True, timeout=20).stdout == ""
    assert time.monotonic() - started < 10


def test_a_mebibyte_of_input_through_cat(sync_call: SyncCall) -> None:
    # Lines (a terminal's line discipline keeps at most 4095 characters of one line), written
    # while cat's copy is read back through the same master: neither side may block the other.
    data = "".join(f"{i:07d} {'x' * 91}\n" for i in range(10486))
    assert len(data) > 1024 * 1024
    result = sync_call(run, ["cat"], pty=True, input=data, timeout=30)
    assert result.stdout == data


@pytest.mark.anyio
async def test_a_mebibyte_of_input_through_cat_async() -> None:
    data = b"y" * 63 + b"\n"
    result = await async_run(["cat"], pty=True, input=data * 16384, timeout=30, text=False)
    assert result.stdout == (b"y" * 63 + b"\r\n") * 16384


# -- output ------------------------------------------------------------------------------------


def test_output_written_just_before_exit_is_kept(sync_call: SyncCall) -> None:
    code = """
        import os, sys
        os.write(1, b"head\\n")
        sys.stdout.write("z" * (1024 * 1024))
        sys.stdout.flush()
        os._exit(0)
        """
    result = sync_call(run, python(code), pty=True, timeout=30)
    assert result.stdout == "head\n" + "z" * (1024 * 1024)


def test_a_child_that_lets_go_of_its_terminal_before_it_exits_exits_with_its_own_code(
    sync_call: SyncCall,
) -> None:
    # GNU cat closes 0, 1 and 2 and then runs its exit handlers: the end of the terminal's
    # output comes before the exit. Closing the master at that moment hung the terminal up,
    # and the kernel killed the child with SIGHUP (seen as a flaky "killed by SIGHUP" of cat).
    code = """
        import os, time
        os.write(1, b"bye\\n")
        for fd in (0, 1, 2):
            os.close(fd)
        time.sleep(0.5)
        os._exit(3)
        """
    result = sync_call(run, python(code), pty=True, timeout=30, check=False)
    assert (result.returncode, result.stdout) == (3, "bye\n")


@pytest.mark.anyio
async def test_output_written_just_before_exit_is_kept_async() -> None:
    code = "import os; os.write(1, b'q' * 100000); os.write(2, b'end')"
    result = await async_run(python(code), pty=True, timeout=30)
    assert result.stdout == "q" * 100000 + "end"


def test_stdout_and_stderr_are_merged_in_order(sync_call: SyncCall) -> None:
    script = "echo one; echo two >&2; echo three"
    result = sync_call(run, ["sh", "-c", script], pty=True)
    assert (result.stdout, result.stderr) == ("one\ntwo\nthree\n", "")


def test_text_reads_crlf_as_newline_and_bytes_are_as_the_terminal_gives(
    sync_call: SyncCall,
) -> None:
    printf = ["printf", "a\\nb\\n\\033[1mbold\\033[0m\\377\\n"]
    assert sync_call(run, printf, pty=True).stdout == "a\nb\n\x1b[1mbold\x1b[0m\ufffd\n"
    raw = sync_call(run, printf, pty=True, text=False).stdout
    assert raw == b"a\r\nb\r\n\x1b[1mbold\x1b[0m\xff\r\n"


def test_a_character_split_across_reads_is_decoded_whole(sync_call: SyncCall) -> None:
    code = """
        import os, time
        os.write(1, "é".encode()[:1])
        time.sleep(0.2)
        os.write(1, "é".encode()[1:] + b"\\n")
        """
    assert sync_call(run, python(code), pty=True).stdout == "é\n"
    assert sync_call(lambda: list(stream(python(code), pty=True))) == ["é"]


# -- streams ---------------------------------------------------------------------------------


def test_stream_lines_from_a_terminal(sync_call: SyncCall) -> None:
    script = "echo a; echo b >&2; tty -s && printf c"
    assert sync_call(lambda: list(stream(["sh", "-c", script], pty=True))) == ["a", "b", "c"]
    batches = sync_call(lambda: list(stream_batches(["seq", "3"], pty=True)))
    assert [line for batch in batches for line in batch] == ["1", "2", "3"]
    lines = sync_call(lambda: list(stream(["cat"], pty=True, input="in\n")))
    assert lines == ["in"]


@pytest.mark.anyio
async def test_async_stream_from_a_terminal() -> None:
    lines = [line async for line in async_stream(ISATTY, pty=True)]
    assert lines == ["[True, True, True]"]
    batches = [b async for b in async_stream_batches(["stty", "size"], pty=True, pty_size=(9, 9))]
    assert batches == [["9 9"]]
    tagged = [
        line
        async for line in async_stream(["sh", "-c", "echo o; echo e >&2"], pty=True, tagged=True)
    ]
    assert [(line.stream, line.text) for line in tagged] == [("stdout", "o"), ("stdout", "e")]


def test_a_stream_that_fails_raises_after_its_lines(sync_call: SyncCall) -> None:
    lines: list[str] = []

    def consume() -> None:
        for line in stream(["sh", "-c", "echo last words >&2; exit 4"], pty=True):
            lines.append(line)

    with pytest.raises(ProcessError) as caught:
        sync_call(consume)
    assert caught.value.return_code == 4
    assert lines == ["last words"]


# -- stopping ------------------------------------------------------------------------------------


def _pid_from(path: Path) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        time.sleep(0.02)
    raise AssertionError(f"no pid in {path}")


def test_a_grandchild_holding_the_terminal_at_timeout(sync_call: SyncCall, tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild"
    script = f"sleep 100 & echo $! > {pidfile}; echo waiting; sleep 100"
    started = time.monotonic()
    with pytest.raises(ProcessTimeoutError) as caught:
        sync_call(run, ["sh", "-c", script], pty=True, timeout=1)
    assert time.monotonic() - started < 5
    assert caught.value.result.stdout == "waiting\n"
    assert wait_gone(_pid_from(pidfile))


@pytest.mark.anyio
async def test_a_grandchild_holding_the_terminal_after_exit(tmp_path: Path) -> None:
    # The child exits; a background grandchild (same group) still holds the terminal.
    pidfile = tmp_path / "grandchild"
    script = f"trap '' HUP; (trap '' HUP; exec sleep 100) & echo $! > {pidfile}; echo done"
    started = time.monotonic()
    result = await async_run(["sh", "-c", script], pty=True, timeout=20)
    assert result.stdout == "done\n"
    assert time.monotonic() - started < 5
    assert wait_gone(_pid_from(pidfile))


def test_contain_tree_stops_an_escapee_from_the_terminal_session(
    sync_call: SyncCall, tmp_path: Path
) -> None:
    pidfile = tmp_path / "escapee"
    script = f"setsid sleep 100 & echo $! > {pidfile}; sleep 100"
    started = time.monotonic()
    with pytest.raises(ProcessTimeoutError):
        sync_call(run, ["sh", "-c", script], pty=True, timeout=1, contain="tree")
    assert time.monotonic() - started < 8
    assert wait_gone(_pid_from(pidfile))


@pytest.mark.parametrize("contain", ["group", "tree", "cgroup"])
def test_every_containment_level_works_unchanged(contain: str) -> None:
    try:
        result = run(DEV_TTY, pty=True, contain=contain, timeout=20)
    except PlatformError:
        pytest.skip(f"contain={contain!r} is not available here")
    assert result.stdout == "opened\n"


def test_idle_timeout_watches_the_terminal(sync_call: SyncCall) -> None:
    script = "echo talk; sleep 100"
    started = time.monotonic()
    with pytest.raises(ProcessTimeoutError) as caught:
        sync_call(run, ["sh", "-c", script], pty=True, idle_timeout=0.5, timeout=20)
    assert time.monotonic() - started < 8
    assert caught.value.result.stdout == "talk\n"


# -- with the other options --------------------------------------------------------------------


def test_with_env_cwd_check_and_max_output(sync_call: SyncCall, tmp_path: Path) -> None:
    script = 'echo "$X $(pwd)"; exit 3'
    result = sync_call(
        run, ["sh", "-c", script], pty=True, env={"X": "set"}, cwd=tmp_path, check=False
    )
    assert (result.returncode, result.stdout) == (3, f"set {tmp_path}\n")
    with pytest.raises(ProcessError) as caught:
        sync_call(run, ["sh", "-c", "echo why; exit 2"], pty=True)
    assert caught.value.return_code == 2
    assert caught.value.result.stdout == "why\n"
    capped = sync_call(run, ["seq", "1000"], pty=True, max_output=6)
    assert capped.stdout == "1000\n"  # the last 6 bytes: 1000\r\n
    assert capped.stdout_dropped > 0


def test_print_output_and_capture_output_false(
    sync_call: SyncCall, capfd: pytest.CaptureFixture[str]
) -> None:
    result = sync_call(run, ["echo", "shown"], pty=True, print_output=True)
    assert result.stdout == "shown\n"
    assert "shown" in capfd.readouterr().out
    live = sync_call(run, COLOUR, pty=True, capture_output=False)
    assert live.stdout == ""
    assert "\x1b[31mred" in capfd.readouterr().out


# -- refused up front ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size", [(0, 80), (24, 0), (65536, 80), (24, -1), (24,), (1, 2, 3), "24x80", 24, (24.0, 80)]
)
def test_a_bad_size_is_refused(size: object) -> None:
    with pytest.raises(ValidationError, match="pty_size"):
        run(["true"], pty=True, pty_size=size)


@pytest.mark.parametrize(
    "extra",
    [
        {"stdin": -1},
        {"stdin": None},
        {"stdout": -3},
        {"stdout": None},
        {"stderr": -1},
        {"stderr": -3},
        {"foreground": True},
        {"process_group": 0},
    ],
)
def test_options_that_cannot_apply_to_a_terminal_are_refused(extra: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="pty=True"):
        run(["true"], pty=True, **extra)


def test_what_a_terminal_does_anyway_may_be_said(sync_call: SyncCall) -> None:
    script = ["sh", "-c", "echo out; echo err >&2"]
    result = sync_call(run, script, pty=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert (result.stdout, result.stderr) == ("out\nerr\n", "")


def test_a_pipeline_and_an_iterable_input_are_refused(sync_call: SyncCall) -> None:
    with pytest.raises(ValidationError, match="pty"):
        sync_call(run, pipe(["echo", "a"], ["cat"]), pty=True)
    with pytest.raises(ValidationError, match="pty"):
        sync_call(lambda: list(stream(pipe(["echo", "a"], ["cat"]), pty=True)))
    with pytest.raises(ValidationError, match="pty=True"):
        sync_call(run, ["cat"], pty=True, input=iter([b"a"]))


def test_no_terminals_here_is_a_platform_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import procfound.call.options
    import procfound.engine.terminal

    monkeypatch.setattr(procfound.call.options, "HAS_TERMINALS", False)
    with pytest.raises(PlatformError, match="pty=True"):
        run(["true"], pty=True)
    # The engine refuses too, for callers that build requests themselves.
    monkeypatch.setattr(procfound.engine.terminal, "HAS_TERMINALS", False)
    from procfound.engine.session import ChildSession
    from procfound.engine.spawn import SpawnRequest

    with pytest.raises(PlatformError):
        ChildSession(SpawnRequest(argv=["true"], terminal=(24, 80)))


# -- the engine's terminal, as ManagedProcess builds on it -----------------------------------------


@pytest.mark.anyio
async def test_the_session_resizes_its_terminal_and_keeps_its_input_open() -> None:
    import anyio

    from procfound.engine.buffers import OutputBuffer
    from procfound.engine.session import ChildSession
    from procfound.engine.spawn import SpawnRequest

    code = """
        import os, signal, sys
        def show(*_):
            print(os.get_terminal_size(0), sys.stdin.readline().strip(), flush=True)
            os._exit(0)
        signal.signal(signal.SIGWINCH, show)
        print("ready", flush=True)
        while True:
            signal.pause()
        """
    out = OutputBuffer()
    session = ChildSession(SpawnRequest(argv=python(code), terminal=(24, 80)), stdout=out)
    try:
        assert session.child.terminal
        assert session.child.stdin is not None
        with anyio.fail_after(10):
            # The whole line: a SIGWINCH that lands inside the child's write of it would cut
            # the write short, and the handler exits before the rest is written.
            while b"ready\r\n" not in out.getvalue():
                await session.step()
            os.write(session.child.stdin, b"typed\n")  # input=None: the terminal's input is open
            session.resize_terminal(30, 100)
            await session.run_to_exit()
    finally:
        await session.finish()
    assert out.getvalue() == b"ready\r\nos.terminal_size(columns=100, lines=30) typed\r\n"
    session.resize_terminal(1, 1)  # closed: nothing to resize, no error


def test_idle_timeout_watches_output_that_is_shown_not_kept(
    capfd: pytest.CaptureFixture[str],
) -> None:
    started = time.monotonic()
    with pytest.raises(ProcessTimeoutError):
        run(["sh", "-c", "echo x; sleep 100"], pty=True, capture_output=False, idle_timeout=0.5)
    assert time.monotonic() - started < 8
    assert "x" in capfd.readouterr().out
