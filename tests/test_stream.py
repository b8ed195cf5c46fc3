"""Streaming (`stream`, `async_stream`), proven black-box against the SPEC and issue 5.

Every async test runs under asyncio and trio (``anyio_backend``); every sync test runs from plain
code and from inside a running asyncio loop and trio loop (``sync_call``). A sync generator must be
consumed inside the call, so each sync test hands ``sync_call`` a closure that iterates.
"""

from __future__ import annotations

import gc
import hashlib
import os
import re
import selectors
import shlex
import subprocess
import time
from collections.abc import Callable
from contextlib import aclosing
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import PY, SyncCall, python
from stream_helpers import (
    CHATTY_TREE,
    INTERLEAVED,
    INTERLEAVED_MERGED,
    LEAVE_LIMIT,
    SLOW_SECOND_LINE,
    STDERR_FLOOD_FIRST,
    STDERR_FLOOD_LINES,
    TIMEOUT,
    TIMEOUT_TREE,
    assert_same_lines,
    kill_leftovers,
    seconds_until_gone,
    seconds_until_gone_async,
    tree_pids,
)

import procfound
from procfound import ProcessError, ProcessTimeoutError, ValidationError, async_stream, stream

# --------------------------------------------------------------------------------------------
# Children and helpers
# --------------------------------------------------------------------------------------------

SYNC_CODES = {
    "failed": "PROCESS_STREAM_FAILED",
    "timeout": "PROCESS_STREAM_TIMEOUT",
    "error": "PROCESS_STREAM_ERROR",
}
ASYNC_CODES = {
    "failed": "PROCESS_ASYNC_STREAM_FAILED",
    "timeout": "PROCESS_ASYNC_STREAM_TIMEOUT",
    "error": "PROCESS_ASYNC_STREAM_ERROR",
}
SYNC_ERROR_WORDS = "Failed to stream command: "
ASYNC_ERROR_WORDS = "Failed to stream async command: "


BIG_LINE_SIZE = 10 << 20
BIG_LINE = "0123456789abcdef" * (BIG_LINE_SIZE // 16)
BIG_LINE_SHA = hashlib.sha256(BIG_LINE.encode()).hexdigest()
BIG_LINE_THEN_UNTERMINATED = python(
    f"""
    import sys
    sys.stdout.buffer.write(b"0123456789abcdef" * {BIG_LINE_SIZE // 16} + b"\\n")
    sys.stdout.buffer.write(b"last line without newline")
    """
)


STDERR_FLOOD_THEN_FAIL = python(
    """
    import signal, sys
    signal.alarm(20)
    print("only out", flush=True)
    sys.stderr.buffer.write(b"e" * (4 << 20) + b"\\nTHE END\\n")
    sys.exit(2)
    """
)

FAILS_AFTER_LINES = python(
    """
    import sys
    for i in range(5):
        print(f"line {i}", flush=True)
    print("first err", file=sys.stderr)
    print("last err", file=sys.stderr)
    sys.exit(3)
    """
)
FAILS_AFTER_LINES_EXPECTED = [f"line {i}" for i in range(5)]
MANY_LINES_THEN_FAIL = ["sh", "-c", "seq 50000; echo 'bad end' >&2; exit 4"]

SEQ_COUNT = 1_000_000
SEQ = ["seq", str(SEQ_COUNT)]

INTERLEAVED_STDOUT = [f"out {i}" for i in range(200)]

MIXED_BYTES = python(
    r"""
    import sys
    sys.stdout.buffer.write(b"caf\xc3\xa9\r\nbad \xff\n\n  spaced  \n\ttab\nlast")
    """
)
MIXED_BYTES_LINES = ["café", "bad \ufffd", "", "  spaced  ", "\ttab", "last"]

ENV_CWD_PROBE = python(
    """
    import os
    print(os.getcwd())
    print(os.environ["PROCFOUND_T_STREAM"])
    print(os.environ.get("PROCFOUND_T_INHERITED"))
    """
)

BACKGROUND_GRANDCHILD = ["sh", "-c", 'sleep 30 & echo "gc=$!"; echo done']


def collect(cmd: list[str], **kwargs: Any) -> list[str]:
    return list(stream(cmd, **kwargs))


async def collect_async(cmd: list[str], **kwargs: Any) -> list[str]:
    return [line async for line in async_stream(cmd, **kwargs)]


# --------------------------------------------------------------------------------------------
# Lines arrive live, whole and exactly
# --------------------------------------------------------------------------------------------


def test_first_line_arrives_while_the_child_is_still_running(sync_call: SyncCall) -> None:
    def first_line() -> tuple[str, float]:
        started = time.monotonic()
        for line in stream(SLOW_SECOND_LINE):
            return line, time.monotonic() - started
        raise AssertionError("no line at all")

    line, after = sync_call(first_line)
    assert line == "a"
    assert after < 2.0, f"the first line took {after:.2f}s: it was held until the child ended"


@pytest.mark.anyio
async def test_async_first_line_arrives_while_the_child_is_still_running() -> None:
    started = time.monotonic()
    async with aclosing(async_stream(SLOW_SECOND_LINE)) as lines:
        async for line in lines:
            first, after = line, time.monotonic() - started
            break
    assert first == "a"
    assert after < 2.0, f"the first line took {after:.2f}s: it was held until the child ended"


def check_big_line(lines: list[str]) -> None:
    assert len(lines) == 2, f"{len(lines)} lines, lengths {[len(x) for x in lines][:5]}"
    assert len(lines[0]) == BIG_LINE_SIZE
    assert hashlib.sha256(lines[0].encode()).hexdigest() == BIG_LINE_SHA
    assert lines[1] == "last line without newline"


def test_10_mib_line_and_final_line_without_newline_arrive_whole(sync_call: SyncCall) -> None:
    check_big_line(sync_call(collect, BIG_LINE_THEN_UNTERMINATED, timeout=30))


@pytest.mark.anyio
async def test_async_10_mib_line_and_final_line_without_newline_arrive_whole() -> None:
    check_big_line(await collect_async(BIG_LINE_THEN_UNTERMINATED, timeout=30))


def test_endings_removed_empty_lines_and_spaces_kept_invalid_utf8_replaced(
    sync_call: SyncCall,
) -> None:
    assert sync_call(collect, MIXED_BYTES) == MIXED_BYTES_LINES


@pytest.mark.anyio
async def test_async_endings_removed_empty_lines_and_spaces_kept_invalid_utf8_replaced() -> None:
    assert await collect_async(MIXED_BYTES) == MIXED_BYTES_LINES


def test_a_million_lines_arrive_complete_and_in_order(sync_call: SyncCall) -> None:
    started = time.monotonic()
    lines = sync_call(collect, SEQ)
    elapsed = time.monotonic() - started
    assert_same_lines(lines, [str(i) for i in range(1, SEQ_COUNT + 1)])
    assert elapsed < 20.0, f"1M lines took {elapsed:.1f}s"


@pytest.mark.anyio
async def test_async_a_million_lines_arrive_complete_and_in_order() -> None:
    started = time.monotonic()
    lines = await collect_async(SEQ)
    elapsed = time.monotonic() - started
    assert_same_lines(lines, [str(i) for i in range(1, SEQ_COUNT + 1)])
    assert elapsed < 20.0, f"1M lines took {elapsed:.1f}s"


def test_stream_stderr_true_interleaves_both_in_the_childs_order(sync_call: SyncCall) -> None:
    assert sync_call(collect, INTERLEAVED, stream_stderr=True) == INTERLEAVED_MERGED


@pytest.mark.anyio
async def test_async_stream_stderr_true_interleaves_both_in_the_childs_order() -> None:
    assert await collect_async(INTERLEAVED, stream_stderr=True) == INTERLEAVED_MERGED


def test_stream_stderr_false_keeps_stderr_out_of_the_lines(
    sync_call: SyncCall, capfd: pytest.CaptureFixture[str]
) -> None:
    assert sync_call(collect, INTERLEAVED) == INTERLEAVED_STDOUT
    assert "err 0" not in capfd.readouterr().err, "the child's stderr leaked to ours"


@pytest.mark.anyio
async def test_async_stream_stderr_false_keeps_stderr_out_of_the_lines(
    capfd: pytest.CaptureFixture[str],
) -> None:
    assert await collect_async(INTERLEAVED) == INTERLEAVED_STDOUT
    assert "err 0" not in capfd.readouterr().err, "the child's stderr leaked to ours"


def check_env_cwd(lines: list[str], cwd: Path) -> None:
    assert lines == [str(cwd), "set for the stream", "from parent"]


def test_cwd_and_env_overrides_reach_the_child(
    sync_call: SyncCall, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROCFOUND_T_INHERITED", "from parent")
    env = {"PROCFOUND_T_STREAM": "set for the stream"}
    check_env_cwd(sync_call(collect, ENV_CWD_PROBE, cwd=tmp_path, env=env), tmp_path)


@pytest.mark.anyio
async def test_async_cwd_and_env_overrides_reach_the_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROCFOUND_T_INHERITED", "from parent")
    env = {"PROCFOUND_T_STREAM": "set for the stream"}
    check_env_cwd(await collect_async(ENV_CWD_PROBE, cwd=str(tmp_path), env=env), tmp_path)


# --------------------------------------------------------------------------------------------
# No deadlock, no hang
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("timeout", [None, 30.0], ids=["no-timeout", "timeout"])
def test_4_mib_of_stderr_before_the_first_stdout_line_does_not_deadlock(
    sync_call: SyncCall, timeout: float | None
) -> None:
    started = time.monotonic()
    lines = sync_call(collect, STDERR_FLOOD_FIRST, timeout=timeout)
    elapsed = time.monotonic() - started
    assert lines == STDERR_FLOOD_LINES
    assert elapsed < 10.0, f"took {elapsed:.1f}s"


@pytest.mark.anyio
@pytest.mark.parametrize("timeout", [None, 30.0], ids=["no-timeout", "timeout"])
async def test_async_4_mib_of_stderr_before_the_first_stdout_line_does_not_deadlock(
    timeout: float | None,
) -> None:
    started = time.monotonic()
    lines = await collect_async(STDERR_FLOOD_FIRST, timeout=timeout)
    elapsed = time.monotonic() - started
    assert lines == STDERR_FLOOD_LINES
    assert elapsed < 10.0, f"took {elapsed:.1f}s"


def check_background_grandchild(lines: list[str], elapsed: float) -> None:
    try:
        assert lines[1:] == ["done"]
        assert elapsed < 2.5, f"took {elapsed:.2f}s: the background grandchild made it wait"
    finally:
        kill_leftovers(int(line[3:]) for line in lines if line.startswith("gc="))


def test_background_grandchild_holding_stdout_does_not_hang_the_stream(
    sync_call: SyncCall,
) -> None:
    started = time.monotonic()
    lines = sync_call(collect, BACKGROUND_GRANDCHILD, timeout=20)
    check_background_grandchild(lines, time.monotonic() - started)


@pytest.mark.anyio
async def test_async_background_grandchild_holding_stdout_does_not_hang_the_stream() -> None:
    started = time.monotonic()
    lines = await collect_async(BACKGROUND_GRANDCHILD, timeout=20)
    check_background_grandchild(lines, time.monotonic() - started)


# --------------------------------------------------------------------------------------------
# Failure: the error comes after the last line
# --------------------------------------------------------------------------------------------


def lines_then_error(cmd: list[str]) -> tuple[list[str], ProcessError | None]:
    """Iterate ``cmd``; return the lines seen when the error arrived, and the error."""
    seen: list[str] = []
    try:
        for line in stream(cmd):
            seen.append(line)
    except ProcessError as exc:
        return seen, exc
    return seen, None


async def lines_then_error_async(cmd: list[str]) -> tuple[list[str], ProcessError | None]:
    seen: list[str] = []
    try:
        async for line in async_stream(cmd):
            seen.append(line)
    except ProcessError as exc:
        return seen, exc
    return seen, None


def check_failed_after_lines(
    seen: list[str], error: ProcessError | None, codes: dict[str, str]
) -> None:
    assert error is not None, "a non-zero exit raised nothing"
    assert not isinstance(error, ProcessTimeoutError)
    assert seen == FAILS_AFTER_LINES_EXPECTED, "the error came before every line was yielded"
    assert error.return_code == 3
    assert error.code == codes["failed"]
    assert error.timeout is False
    assert error.stderr is not None
    assert error.stderr.endswith("last err")
    assert "first err" in error.stderr
    assert str(error).startswith(f"Command failed with exit code 3: {PY} -c ")


def test_nonzero_exit_raises_process_error_after_every_line(sync_call: SyncCall) -> None:
    seen, error = sync_call(lines_then_error, FAILS_AFTER_LINES)
    check_failed_after_lines(seen, error, SYNC_CODES)


@pytest.mark.anyio
async def test_async_nonzero_exit_raises_process_error_after_every_line() -> None:
    seen, error = await lines_then_error_async(FAILS_AFTER_LINES)
    check_failed_after_lines(seen, error, ASYNC_CODES)


def check_many_lines_then_fail(seen: list[str], error: ProcessError | None) -> None:
    assert error is not None
    assert error.return_code == 4
    assert_same_lines(seen, [str(i) for i in range(1, 50_001)])
    assert error.stderr == "bad end"


def test_nonzero_exit_after_50k_lines_loses_none_of_them(sync_call: SyncCall) -> None:
    check_many_lines_then_fail(*sync_call(lines_then_error, MANY_LINES_THEN_FAIL))


@pytest.mark.anyio
async def test_async_nonzero_exit_after_50k_lines_loses_none_of_them() -> None:
    check_many_lines_then_fail(*await lines_then_error_async(MANY_LINES_THEN_FAIL))


def check_stderr_tail(seen: list[str], error: ProcessError | None) -> None:
    assert seen == ["only out"]
    assert error is not None
    assert error.return_code == 2
    assert error.stderr is not None
    assert error.stderr.endswith("THE END")
    # The tail (last 64 KiB) is kept, not all 4 MiB.
    assert 32 * 1024 < len(error.stderr) <= 66 * 1024, len(error.stderr)


def test_error_keeps_only_the_tail_of_4_mib_of_stderr(sync_call: SyncCall) -> None:
    check_stderr_tail(*sync_call(lines_then_error, STDERR_FLOOD_THEN_FAIL))


@pytest.mark.anyio
async def test_async_error_keeps_only_the_tail_of_4_mib_of_stderr() -> None:
    check_stderr_tail(*await lines_then_error_async(STDERR_FLOOD_THEN_FAIL))


def missing_programs(tmp_path: Path) -> list[str]:
    return [str(tmp_path / "no-such-program"), "procfound-no-such-program-on-path"]


def test_missing_executable_raises_process_error_with_the_stream_code(
    sync_call: SyncCall, tmp_path: Path
) -> None:
    for program in missing_programs(tmp_path):
        with pytest.raises(ProcessError) as info:
            sync_call(collect, [program, "arg"])
        assert info.value.code == SYNC_CODES["error"]
        assert str(info.value).startswith(SYNC_ERROR_WORDS)
        assert program in str(info.value)


@pytest.mark.anyio
async def test_async_missing_executable_raises_process_error_with_the_stream_code(
    tmp_path: Path,
) -> None:
    for program in missing_programs(tmp_path):
        with pytest.raises(ProcessError) as info:
            await collect_async([program, "arg"])
        assert info.value.code == ASYNC_CODES["error"]
        assert str(info.value).startswith(ASYNC_ERROR_WORDS)
        assert program in str(info.value)


def test_missing_cwd_raises_process_error_naming_the_path(
    sync_call: SyncCall, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-dir"
    with pytest.raises(ProcessError) as info:
        sync_call(collect, ["true"], cwd=missing)
    assert str(missing) in str(info.value)


@pytest.mark.anyio
async def test_async_missing_cwd_raises_process_error_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    with pytest.raises(ProcessError) as info:
        await collect_async(["true"], cwd=missing)
    assert str(missing) in str(info.value)


def test_str_cmd_raises_validation_error_and_runs_nothing(
    sync_call: SyncCall, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(ValidationError):
        sync_call(lambda: list(stream(f"touch {shlex.quote(str(marker))}")))  # type: ignore[arg-type]
    assert not marker.exists()


@pytest.mark.anyio
async def test_async_str_cmd_raises_validation_error_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(ValidationError):
        async for _ in async_stream(f"touch {shlex.quote(str(marker))}"):  # type: ignore[arg-type]
            pass
    assert not marker.exists()


# --------------------------------------------------------------------------------------------
# Timeout: lines until the deadline, then the whole tree is killed
# --------------------------------------------------------------------------------------------


def pids_in(arrivals: list[tuple[float, str]]) -> list[int]:
    """The tree's pids if the first line names them (for cleanup after a failed check)."""
    found = re.fullmatch(r"child=(\d+) grandchild=(\d+)", arrivals[0][1]) if arrivals else None
    return [int(found[1]), int(found[2])] if found else []


def check_timeout(
    arrivals: list[tuple[float, str]],
    error: ProcessTimeoutError | None,
    error_at: float,
    codes: dict[str, str],
) -> list[int]:
    """Check a stream of ``TIMEOUT_TREE`` stopped by ``timeout=TIMEOUT``; return the tree's pids."""
    assert arrivals, "no line arrived before the deadline"
    pids = tree_pids(arrivals[0][1])
    assert error is not None, "the stream ended without a timeout error"
    ticks = [at for at, line in arrivals if line.startswith("tick ")]
    assert len(ticks) >= 3, f"only {len(ticks)} lines before the deadline: {arrivals}"
    assert ticks[0] < TIMEOUT - 0.3, f"the first tick came at {ticks[0]:.2f}s: not live"
    assert ticks[-1] > TIMEOUT - 0.5, f"lines stopped at {ticks[-1]:.2f}s, before the deadline"
    assert error_at >= TIMEOUT - 0.05, f"timed out early, at {error_at:.2f}s"
    assert error_at < TIMEOUT + 2.0, f"the error came {error_at - TIMEOUT:.2f}s after the deadline"
    assert isinstance(error, TimeoutError)
    assert error.timeout is True
    assert error.timeout_seconds == TIMEOUT
    assert error.code == codes["timeout"]
    assert re.match(rf"Command timed out after 1(\.0)?s: {re.escape(PY)} -c ", str(error))
    return pids


def stream_until_timeout() -> tuple[list[tuple[float, str]], ProcessTimeoutError | None, float]:
    arrivals: list[tuple[float, str]] = []
    started = time.monotonic()
    try:
        for line in stream(TIMEOUT_TREE, timeout=TIMEOUT):
            arrivals.append((time.monotonic() - started, line))
    except ProcessTimeoutError as exc:
        return arrivals, exc, time.monotonic() - started
    return arrivals, None, time.monotonic() - started


def test_timeout_yields_lines_until_the_deadline_then_kills_the_tree(sync_call: SyncCall) -> None:
    arrivals, error, error_at = sync_call(stream_until_timeout)
    try:
        pids = check_timeout(arrivals, error, error_at, SYNC_CODES)
        assert seconds_until_gone(pids, time.monotonic(), 1.0) < 1.0, "the tree survived"
    finally:
        kill_leftovers(pids_in(arrivals))


@pytest.mark.anyio
async def test_async_timeout_yields_lines_until_the_deadline_then_kills_the_tree() -> None:
    arrivals: list[tuple[float, str]] = []
    error: ProcessTimeoutError | None = None
    started = time.monotonic()
    try:
        async for line in async_stream(TIMEOUT_TREE, timeout=TIMEOUT):
            arrivals.append((time.monotonic() - started, line))
    except ProcessTimeoutError as exc:
        error = exc
    error_at = time.monotonic() - started
    try:
        pids = check_timeout(arrivals, error, error_at, ASYNC_CODES)
        gone = await seconds_until_gone_async(pids, time.monotonic(), 1.0)
        assert gone < 1.0, "the tree survived"
    finally:
        kill_leftovers(pids_in(arrivals))


# --------------------------------------------------------------------------------------------
# Leaving early kills the tree within a second
# --------------------------------------------------------------------------------------------


class LeftTheLoop(Exception):
    """Raised from a loop body to leave the stream by an exception."""


def leave_by_break() -> tuple[list[int], float]:
    for line in stream(CHATTY_TREE):
        pids = tree_pids(line)
        left = time.monotonic()
        break
    return pids, left


def leave_by_return() -> tuple[list[int], float]:
    for line in stream(CHATTY_TREE):
        return tree_pids(line), time.monotonic()
    raise AssertionError("no line at all")


def leave_by_exception() -> tuple[list[int], float]:
    pids: list[int] = []
    try:
        for line in stream(CHATTY_TREE):
            pids = tree_pids(line)
            left = time.monotonic()
            raise LeftTheLoop
    except LeftTheLoop:
        pass
    return pids, left


def leave_by_close() -> tuple[list[int], float]:
    lines = stream(CHATTY_TREE)
    pids = tree_pids(next(lines))
    left = time.monotonic()
    lines.close()  # type: ignore[attr-defined]
    return pids, left


def leave_by_garbage_collection() -> tuple[list[int], float]:
    lines = stream(CHATTY_TREE)
    pids = tree_pids(next(lines))
    left = time.monotonic()
    del lines
    gc.collect()
    return pids, left


LEAVE_SYNC: dict[str, Callable[[], tuple[list[int], float]]] = {
    "break": leave_by_break,
    "return": leave_by_return,
    "exception": leave_by_exception,
    "close": leave_by_close,
    "garbage-collected": leave_by_garbage_collection,
}


@pytest.mark.parametrize("how", list(LEAVE_SYNC))
def test_leaving_the_loop_early_kills_the_tree_within_a_second(
    sync_call: SyncCall, how: str
) -> None:
    pids, left = sync_call(LEAVE_SYNC[how])
    try:
        elapsed = seconds_until_gone(pids, left)
        assert elapsed < LEAVE_LIMIT, f"the tree outlived the loop by {elapsed:.2f}s ({how})"
    finally:
        kill_leftovers(pids)


async def leave_async_by_break() -> tuple[list[int], float]:
    async with aclosing(async_stream(CHATTY_TREE)) as lines:
        async for line in lines:
            pids = tree_pids(line)
            left = time.monotonic()
            break
    return pids, left


async def leave_async_by_exception() -> tuple[list[int], float]:
    pids: list[int] = []
    try:
        async with aclosing(async_stream(CHATTY_TREE)) as lines:
            async for line in lines:
                pids = tree_pids(line)
                left = time.monotonic()
                raise LeftTheLoop
    except LeftTheLoop:
        pass
    return pids, left


async def leave_async_by_aclose() -> tuple[list[int], float]:
    lines = async_stream(CHATTY_TREE)
    pids = tree_pids(await anext(lines))
    left = time.monotonic()
    await lines.aclose()  # type: ignore[attr-defined]
    return pids, left


async def leave_async_by_outer_cancel_scope() -> tuple[list[int], float]:
    pids: list[int] = []
    deadline = time.monotonic() + 0.5
    with anyio.move_on_after(0.5) as scope:
        async for line in async_stream(CHATTY_TREE):
            pids = pids or tree_pids(line)
    assert scope.cancelled_caught, "the cancellation did not reach the outer scope"
    assert time.monotonic() - deadline < LEAVE_LIMIT, "the cancelled stream was slow to return"
    return pids, deadline


LEAVE_ASYNC = {
    "break-in-aclosing": leave_async_by_break,
    "exception-in-aclosing": leave_async_by_exception,
    "aclose": leave_async_by_aclose,
    "outer-cancel-scope": leave_async_by_outer_cancel_scope,
}


@pytest.mark.anyio
@pytest.mark.parametrize("how", list(LEAVE_ASYNC))
async def test_async_leaving_the_loop_early_kills_the_tree_within_a_second(how: str) -> None:
    with anyio.fail_after(15):
        pids, left = await LEAVE_ASYNC[how]()
    try:
        assert pids, "no line arrived"
        elapsed = await seconds_until_gone_async(pids, left)
        assert elapsed < LEAVE_LIMIT, f"the tree outlived the loop by {elapsed:.2f}s ({how})"
    finally:
        kill_leftovers(pids)


@pytest.mark.anyio
async def test_async_cancel_from_another_task_kills_the_tree_within_a_second() -> None:
    scope = anyio.CancelScope()
    pids: list[int] = []
    got_pids = anyio.Event()

    async def consume() -> None:
        nonlocal pids
        with scope:
            async for line in async_stream(CHATTY_TREE):
                if not pids:
                    pids = tree_pids(line)
                    got_pids.set()

    with anyio.fail_after(15):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await got_pids.wait()
            cancelled_at = time.monotonic()
            scope.cancel()
        returned = time.monotonic() - cancelled_at
    try:
        assert scope.cancelled_caught
        assert returned < LEAVE_LIMIT, f"the cancelled stream took {returned:.2f}s to return"
        elapsed = await seconds_until_gone_async(pids, cancelled_at)
        assert elapsed < LEAVE_LIMIT, f"the tree outlived the cancellation by {elapsed:.2f}s"
    finally:
        kill_leftovers(pids)


# --------------------------------------------------------------------------------------------
# The CLI streams through it
# --------------------------------------------------------------------------------------------

PROCFOUND_ROOT = str(Path(procfound.__file__).resolve().parent.parent)


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PROCFOUND_ROOT, env.get("PYTHONPATH")]))
    return env


def read_first_line(fd: int, deadline: float) -> bytes:
    """Read from ``fd`` until a newline or the deadline; return what was read."""
    data = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while b"\n" not in data:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                break
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            data += chunk
    return data


def test_cli_run_prints_each_line_live_into_a_pipe() -> None:
    cmd = [PY, "-m", "procfound", "run", "--", *SLOW_SECOND_LINE]
    started = time.monotonic()
    with subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env()
    ) as cli:
        try:
            assert cli.stdout is not None
            first = read_first_line(cli.stdout.fileno(), started + 2.0)
            arrived = time.monotonic() - started
            rest, err = cli.communicate(timeout=20)
        finally:
            if cli.poll() is None:
                cli.kill()
                cli.wait()
    assert first == b"a\n", f"after {arrived:.2f}s the CLI had printed {first!r}"
    assert arrived < 2.0
    assert first + rest == b"a\nb\n", err
    assert cli.returncode == 0, err


_STREAM_FUNCTIONS = ["stream", "async_stream", "stream_batches", "async_stream_batches"]


def _section(doc: str, title: str) -> str:
    import inspect

    # cleandoc: Python 3.13 compiles docstrings already dedented, earlier versions do not.
    return inspect.cleandoc(doc).split(f"\n{title}:\n", 1)[1].split("\n\n", 1)[0]


@pytest.mark.parametrize("name", _STREAM_FUNCTIONS)
def test_stream_docstring_documents_every_parameter(name: str) -> None:
    import inspect

    function = getattr(procfound, name)
    args = _section(function.__doc__, "Args")
    for parameter in inspect.signature(function).parameters.values():
        shown = f"**{parameter.name}" if parameter.kind is parameter.VAR_KEYWORD else parameter.name
        assert f"\n    {shown}: " in f"\n{args}", f"{name}() does not document {shown}"


def test_stream_docstrings_share_one_args_and_raises_text() -> None:
    docs = [getattr(procfound, name).__doc__ for name in _STREAM_FUNCTIONS]
    for title in ("Args", "Raises"):
        assert len({_section(doc, title) for doc in docs}) == 1, title
