"""``stream_batches`` / ``async_stream_batches`` (and the line streams built on them), black-box.

Proves, with real processes only, for the sync form (from plain code and from inside a running
asyncio loop and trio loop, via ``sync_call``) and the async form (under asyncio and trio):

* the batches are non-empty lists, each the lines of at most 64 KiB of output (plus the start
  of its first line, read with the piece before), and together they are exactly the child's
  lines, in order, even for a 4 MiB line;
* a batch is delivered while the child is still running, not held until it exits;
* a last line without a newline is delivered before the non-zero exit's ``ProcessError``
  (also for the line-level ``stream`` / ``async_stream``, which now share that code path);
* a timeout delivers batches until the deadline, then raises and kills the child's whole tree;
* leaving early (``break``, ``close()`` / ``aclose()``) kills the tree within about a second;
* bad arguments (a str command, an unknown keyword, an encoding that cannot be split into lines)
  raise ``ValidationError`` before anything is started;
* ``max_line`` cuts a long line to a ``CutLine`` that says how much was dropped;
* stderr is drained on the side (4 MiB of it cannot block the child) or merged on request.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import SyncCall, python
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

from procfound import (
    ProcessError,
    ProcessTimeoutError,
    ValidationError,
    async_stream,
    async_stream_batches,
    stream,
    stream_batches,
)
from procfound.engine.lines import CutLine

# --------------------------------------------------------------------------------------------
# Children and helpers
# --------------------------------------------------------------------------------------------

SYNC_CODES = {"failed": "PROCESS_STREAM_FAILED", "timeout": "PROCESS_STREAM_TIMEOUT"}
ASYNC_CODES = {"failed": "PROCESS_ASYNC_STREAM_FAILED", "timeout": "PROCESS_ASYNC_STREAM_TIMEOUT"}

BATCH_LIMIT = 64 * 1024  # bytes of output (line endings included) one piece of a read gives

SEQ_COUNT = 200_000
SEQ = ["seq", str(SEQ_COUNT)]
SEQ_LINES = [str(i) for i in range(1, SEQ_COUNT + 1)]


UNTERMINATED_THEN_EXIT_3 = python(
    """
    import sys
    sys.stdout.write("one\\ntwo")
    sys.stdout.flush()
    sys.exit(3)
    """
)
UNTERMINATED_LINES = ["one", "two"]

LONG_LINE_THEN_SHORT = python(
    """
    import sys
    sys.stdout.buffer.write(b"x" * 100_000 + b"\\nshort\\n")
    """
)

HUGE_LINE_SIZE = 4 << 20
HUGE_LINE_SHA = hashlib.sha256(b"0123456789abcdef" * (HUGE_LINE_SIZE // 16)).hexdigest()
SHORT_LINES = [f"short {i}" for i in range(1000)]
HUGE_LINE_THEN_SHORT_LINES = python(
    f"""
    import sys
    sys.stdout.buffer.write(b"0123456789abcdef" * {HUGE_LINE_SIZE // 16} + b"\\n")
    for i in range(1000):
        sys.stdout.write(f"short {{i}}\\n")
    """
)


def check_batches(batches: list[list[str]], *, limit: int | None = BATCH_LIMIT) -> list[str]:
    """Check every batch is a non-empty list of bounded size; return all the lines.

    A batch is the lines one 64 KiB piece of output completes, so it holds at most ``limit``
    bytes besides the start of its first line, which may have been read with the previous piece
    (measured with ``seq``: up to 65541 bytes in all). The bound is checked in that form; it
    still catches a whole 1 MiB read handed over as one batch.
    """
    lines: list[str] = []
    for index, batch in enumerate(batches):
        assert isinstance(batch, list), f"batch {index} is a {type(batch).__name__}"
        assert batch, f"batch {index} is empty"
        if limit is not None:
            size = sum(len(line.encode()) + 1 for line in batch)
            carried = len(batch[0].encode())  # at most this much was read before the piece
            assert size - carried <= limit, (
                f"batch {index} holds {size} bytes of output ({carried} in its first line), "
                f"over {limit} besides its first line"
            )
        lines.extend(batch)
    return lines


def collect_batches(cmd: list[str], **kwargs: Any) -> list[list[str]]:
    return list(stream_batches(cmd, **kwargs))


async def collect_batches_async(cmd: list[str], **kwargs: Any) -> list[list[str]]:
    return [batch async for batch in async_stream_batches(cmd, **kwargs)]


# --------------------------------------------------------------------------------------------
# Batches: complete, in order, never empty, bounded
# --------------------------------------------------------------------------------------------


def test_batches_of_seq_are_every_line_in_order_non_empty_and_at_most_64_kib(
    sync_call: SyncCall,
) -> None:
    batches = sync_call(collect_batches, SEQ, timeout=30)
    assert_same_lines(check_batches(batches), SEQ_LINES)


@pytest.mark.anyio
async def test_async_batches_of_seq_are_every_line_in_order_non_empty_and_at_most_64_kib() -> None:
    batches = await collect_batches_async(SEQ, timeout=30)
    assert_same_lines(check_batches(batches), SEQ_LINES)


def test_first_batch_arrives_while_the_child_is_still_running(sync_call: SyncCall) -> None:
    def first_batch() -> tuple[list[str], float]:
        started = time.monotonic()
        for batch in stream_batches(SLOW_SECOND_LINE):
            return batch, time.monotonic() - started
        raise AssertionError("no batch at all")

    batch, after = sync_call(first_batch)
    assert batch == ["a"]
    assert after < 2.0, f"the first batch took {after:.2f}s: it was held until the child ended"


@pytest.mark.anyio
async def test_async_first_batch_arrives_while_the_child_is_still_running() -> None:
    started = time.monotonic()
    first: list[str] = []
    async with aclosing(async_stream_batches(SLOW_SECOND_LINE)) as batches:
        async for batch in batches:
            first, after = batch, time.monotonic() - started
            break
    assert first == ["a"]
    assert after < 2.0, f"the first batch took {after:.2f}s: it was held until the child ended"


def check_huge_line(lines: list[str]) -> None:
    count = len(lines)
    assert count == 1 + len(SHORT_LINES), f"{count} lines, lengths {[len(x) for x in lines[:5]]}"
    huge = lines[0]
    assert len(huge) == HUGE_LINE_SIZE, f"the big line has {len(huge)} chars"
    assert hashlib.sha256(huge.encode()).hexdigest() == HUGE_LINE_SHA, "the big line changed"
    assert_same_lines(lines[1:], SHORT_LINES)


def test_4_mib_line_then_1000_short_lines_arrive_exactly(sync_call: SyncCall) -> None:
    batches = sync_call(collect_batches, HUGE_LINE_THEN_SHORT_LINES, timeout=30)
    check_huge_line(check_batches(batches, limit=None))


@pytest.mark.anyio
async def test_async_4_mib_line_then_1000_short_lines_arrive_exactly() -> None:
    batches = await collect_batches_async(HUGE_LINE_THEN_SHORT_LINES, timeout=30)
    check_huge_line(check_batches(batches, limit=None))


def check_cut(lines: list[str]) -> None:
    assert len(lines) == 2, f"{len(lines)} lines, lengths {[len(x) for x in lines]}"
    cut, short = lines
    assert isinstance(cut, CutLine), f"the long line came as a {type(cut).__name__}"
    assert cut == "x" * 10
    assert cut.dropped == 99_990
    assert short == "short"
    assert not isinstance(short, CutLine)


def test_max_line_cuts_a_100_000_byte_line_and_says_how_much_was_dropped(
    sync_call: SyncCall,
) -> None:
    batches = sync_call(collect_batches, LONG_LINE_THEN_SHORT, max_line=10)
    check_cut(check_batches(batches))


@pytest.mark.anyio
async def test_async_max_line_cuts_a_100_000_byte_line_and_says_how_much_was_dropped() -> None:
    check_cut(check_batches(await collect_batches_async(LONG_LINE_THEN_SHORT, max_line=10)))


# --------------------------------------------------------------------------------------------
# stderr: drained on the side, or merged
# --------------------------------------------------------------------------------------------


def test_4_mib_of_stderr_before_stdout_does_not_block_the_child(sync_call: SyncCall) -> None:
    batches = sync_call(collect_batches, STDERR_FLOOD_FIRST, timeout=30)
    assert check_batches(batches) == STDERR_FLOOD_LINES


@pytest.mark.anyio
async def test_async_4_mib_of_stderr_before_stdout_does_not_block_the_child() -> None:
    batches = await collect_batches_async(STDERR_FLOOD_FIRST, timeout=30)
    assert check_batches(batches) == STDERR_FLOOD_LINES


def test_stream_stderr_true_merges_both_streams_in_the_childs_order(sync_call: SyncCall) -> None:
    batches = sync_call(collect_batches, INTERLEAVED, stream_stderr=True)
    assert check_batches(batches) == INTERLEAVED_MERGED


@pytest.mark.anyio
async def test_async_stream_stderr_true_merges_both_streams_in_the_childs_order() -> None:
    batches = await collect_batches_async(INTERLEAVED, stream_stderr=True)
    assert check_batches(batches) == INTERLEAVED_MERGED


# --------------------------------------------------------------------------------------------
# A last line without a newline comes before the non-zero exit's error
# --------------------------------------------------------------------------------------------


def check_flushed_before_error(seen: list[str], error: ProcessError | None, code: str) -> None:
    assert seen == UNTERMINATED_LINES, f"lines before the error: {seen!r}"
    assert error is not None, "a non-zero exit raised nothing"
    assert not isinstance(error, ProcessTimeoutError)
    assert error.return_code == 3
    assert error.code == code


def batches_then_error() -> tuple[list[str], ProcessError | None]:
    seen: list[str] = []
    try:
        for batch in stream_batches(UNTERMINATED_THEN_EXIT_3):
            assert batch, "an empty batch"
            seen.extend(batch)
    except ProcessError as exc:
        return seen, exc
    return seen, None


def lines_then_error() -> tuple[list[str], ProcessError | None]:
    seen: list[str] = []
    try:
        for line in stream(UNTERMINATED_THEN_EXIT_3):
            seen.append(line)
    except ProcessError as exc:
        return seen, exc
    return seen, None


def test_unterminated_last_line_arrives_before_the_exit_error(sync_call: SyncCall) -> None:
    seen, error = sync_call(batches_then_error)
    check_flushed_before_error(seen, error, SYNC_CODES["failed"])


def test_stream_unterminated_last_line_arrives_before_the_exit_error(sync_call: SyncCall) -> None:
    seen, error = sync_call(lines_then_error)
    check_flushed_before_error(seen, error, SYNC_CODES["failed"])


@pytest.mark.anyio
async def test_async_unterminated_last_line_arrives_before_the_exit_error() -> None:
    seen: list[str] = []
    error: ProcessError | None = None
    try:
        async for batch in async_stream_batches(UNTERMINATED_THEN_EXIT_3):
            assert batch, "an empty batch"
            seen.extend(batch)
    except ProcessError as exc:
        error = exc
    check_flushed_before_error(seen, error, ASYNC_CODES["failed"])


@pytest.mark.anyio
async def test_async_stream_unterminated_last_line_arrives_before_the_exit_error() -> None:
    seen: list[str] = []
    error: ProcessError | None = None
    try:
        async for line in async_stream(UNTERMINATED_THEN_EXIT_3):
            seen.append(line)
    except ProcessError as exc:
        error = exc
    check_flushed_before_error(seen, error, ASYNC_CODES["failed"])


# --------------------------------------------------------------------------------------------
# Timeout: batches until the deadline, then the whole tree is killed
# --------------------------------------------------------------------------------------------

GONE_LIMIT = 2.0

Arrivals = list[tuple[float, str]]


def pids_in(arrivals: Arrivals) -> list[int]:
    """The tree's pids if the first line names them (for cleanup after a failed check)."""
    found = re.fullmatch(r"child=(\d+) grandchild=(\d+)", arrivals[0][1]) if arrivals else None
    return [int(found[1]), int(found[2])] if found else []


def check_timeout(
    arrivals: Arrivals, error: ProcessTimeoutError | None, error_at: float, code: str
) -> list[int]:
    """Check batches of ``TIMEOUT_TREE`` stopped by ``timeout=TIMEOUT``; return the tree's pids."""
    assert arrivals, "no batch arrived before the deadline"
    pids = tree_pids(arrivals[0][1])
    assert error is not None, "the stream ended without a timeout error"
    ticks = [at for at, line in arrivals if line.startswith("tick ")]
    assert len(ticks) >= 3, f"only {len(ticks)} lines before the deadline: {arrivals}"
    assert ticks[0] < TIMEOUT - 0.3, f"the first tick came at {ticks[0]:.2f}s: not live"
    assert ticks[-1] > TIMEOUT - 0.5, f"batches stopped at {ticks[-1]:.2f}s, before the deadline"
    assert error_at >= TIMEOUT - 0.05, f"timed out early, at {error_at:.2f}s"
    assert error_at < TIMEOUT + 2.0, f"the error came {error_at - TIMEOUT:.2f}s after the deadline"
    assert error.timeout_seconds == TIMEOUT
    assert error.code == code
    return pids


def batches_until_timeout() -> tuple[Arrivals, ProcessTimeoutError | None, float]:
    arrivals: Arrivals = []
    started = time.monotonic()
    try:
        for batch in stream_batches(TIMEOUT_TREE, timeout=TIMEOUT):
            at = time.monotonic() - started
            arrivals.extend((at, line) for line in batch)
    except ProcessTimeoutError as exc:
        return arrivals, exc, time.monotonic() - started
    return arrivals, None, time.monotonic() - started


def test_timeout_yields_batches_until_the_deadline_then_kills_the_tree(
    sync_call: SyncCall,
) -> None:
    arrivals, error, error_at = sync_call(batches_until_timeout)
    try:
        pids = check_timeout(arrivals, error, error_at, SYNC_CODES["timeout"])
        gone = seconds_until_gone(pids, time.monotonic(), GONE_LIMIT)
        assert gone < GONE_LIMIT, "the tree survived the timeout"
    finally:
        kill_leftovers(pids_in(arrivals))


@pytest.mark.anyio
async def test_async_timeout_yields_batches_until_the_deadline_then_kills_the_tree() -> None:
    arrivals: Arrivals = []
    error: ProcessTimeoutError | None = None
    started = time.monotonic()
    try:
        async for batch in async_stream_batches(TIMEOUT_TREE, timeout=TIMEOUT):
            at = time.monotonic() - started
            arrivals.extend((at, line) for line in batch)
    except ProcessTimeoutError as exc:
        error = exc
    error_at = time.monotonic() - started
    try:
        pids = check_timeout(arrivals, error, error_at, ASYNC_CODES["timeout"])
        gone = await seconds_until_gone_async(pids, time.monotonic(), GONE_LIMIT)
        assert gone < GONE_LIMIT, "the tree survived the timeout"
    finally:
        kill_leftovers(pids_in(arrivals))


# --------------------------------------------------------------------------------------------
# Leaving early kills the tree
# --------------------------------------------------------------------------------------------


def leave_by_break() -> tuple[list[int], float]:
    pids: list[int] = []
    left = 0.0
    for batch in stream_batches(CHATTY_TREE):
        pids = tree_pids(batch[0])
        left = time.monotonic()
        break
    return pids, left


def leave_by_close() -> tuple[list[int], float]:
    batches = stream_batches(CHATTY_TREE)
    pids = tree_pids(next(batches)[0])
    left = time.monotonic()
    batches.close()
    return pids, left


LEAVE_SYNC: dict[str, Callable[[], tuple[list[int], float]]] = {
    "break": leave_by_break,
    "close": leave_by_close,
}


@pytest.mark.parametrize("how", list(LEAVE_SYNC))
def test_leaving_early_kills_the_tree_within_a_second(sync_call: SyncCall, how: str) -> None:
    pids, left = sync_call(LEAVE_SYNC[how])
    try:
        assert pids, "no batch arrived"
        elapsed = seconds_until_gone(pids, left)
        assert elapsed < LEAVE_LIMIT, f"the tree outlived the loop by {elapsed:.2f}s ({how})"
    finally:
        kill_leftovers(pids)


async def leave_async_by_break() -> tuple[list[int], float]:
    pids: list[int] = []
    left = 0.0
    async with aclosing(async_stream_batches(CHATTY_TREE)) as batches:
        async for batch in batches:
            pids = tree_pids(batch[0])
            left = time.monotonic()
            break
    return pids, left


async def leave_async_by_aclose() -> tuple[list[int], float]:
    batches = async_stream_batches(CHATTY_TREE)
    pids = tree_pids((await anext(batches))[0])
    left = time.monotonic()
    await batches.aclose()
    return pids, left


LEAVE_ASYNC = {"break-in-aclosing": leave_async_by_break, "aclose": leave_async_by_aclose}


@pytest.mark.anyio
@pytest.mark.parametrize("how", list(LEAVE_ASYNC))
async def test_async_leaving_early_kills_the_tree_within_a_second(how: str) -> None:
    with anyio.fail_after(15):
        pids, left = await LEAVE_ASYNC[how]()
    try:
        assert pids, "no batch arrived"
        elapsed = await seconds_until_gone_async(pids, left)
        assert elapsed < LEAVE_LIMIT, f"the tree outlived the loop by {elapsed:.2f}s ({how})"
    finally:
        kill_leftovers(pids)


# --------------------------------------------------------------------------------------------
# Validation: bad arguments raise before anything starts
# --------------------------------------------------------------------------------------------


def bad_call(case: str, marker: Path) -> tuple[Any, dict[str, Any], str]:
    """The command, keyword arguments and expected error code of one invalid call.

    The command would create ``marker``, so a test can tell that nothing was started.
    """
    touch = ["touch", str(marker)]
    calls: dict[str, tuple[Any, dict[str, Any], str]] = {
        "str-command": (f"touch {marker}", {}, "INVALID_COMMAND_TYPE"),
        "stdout-elsewhere": (touch, {"stdout": subprocess.DEVNULL}, "INVALID_ARGUMENT"),
        "utf-16": (touch, {"encoding": "utf-16"}, "INVALID_ARGUMENT"),
        "unknown-codec": (touch, {"encoding": "no-such-codec"}, "INVALID_ARGUMENT"),
    }
    return calls[case]


BAD_CASES = ["str-command", "stdout-elsewhere", "utf-16", "unknown-codec"]

SYNC_STREAMS: dict[str, Callable[..., Iterator[Any]]] = {
    "stream_batches": stream_batches,
    "stream": stream,
}
ASYNC_STREAMS: dict[str, Callable[..., AsyncIterator[Any]]] = {
    "async_stream_batches": async_stream_batches,
    "async_stream": async_stream,
}


def consume(fn: Callable[..., Iterator[Any]], cmd: Any, kwargs: dict[str, Any]) -> None:
    for _ in fn(cmd, **kwargs):
        pass


@pytest.mark.parametrize("case", BAD_CASES)
@pytest.mark.parametrize("api", list(SYNC_STREAMS))
def test_invalid_arguments_raise_validation_error_and_start_nothing(
    sync_call: SyncCall, tmp_path: Path, api: str, case: str
) -> None:
    marker = tmp_path / "ran"
    cmd, kwargs, code = bad_call(case, marker)
    with pytest.raises(ValidationError) as info:
        sync_call(consume, SYNC_STREAMS[api], cmd, kwargs)
    assert info.value.code == code
    assert not marker.exists(), "the command ran"


@pytest.mark.anyio
@pytest.mark.parametrize("case", BAD_CASES)
@pytest.mark.parametrize("api", list(ASYNC_STREAMS))
async def test_async_invalid_arguments_raise_validation_error_and_start_nothing(
    tmp_path: Path, api: str, case: str
) -> None:
    marker = tmp_path / "ran"
    cmd, kwargs, code = bad_call(case, marker)
    with pytest.raises(ValidationError) as info:
        async for _ in ASYNC_STREAMS[api](cmd, **kwargs):
            pass
    assert info.value.code == code
    assert not marker.exists(), "the command ran"
