"""Universal newlines: text output reads ``\\r\\n`` and a lone ``\\r`` as ``\\n``, as text-mode
``subprocess`` and the seed do; bytes are left alone; ``universal_newlines`` is ``text``'s alias.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import SyncCall, python

from procfound import (
    ManagedProcess,
    ValidationError,
    async_run,
    async_shell,
    async_stream,
    async_stream_batches,
    run,
    shell,
    stream,
    stream_batches,
)

MIXED = ["printf", "a\\r\\nb\\rc\\n"]  # printf expands the escapes: a CRLF, a CR, an LF
MIXED_SHELL = "printf 'a\\r\\nb\\rc\\n'"
RAW = b"a\r\nb\rc\n"
# A "\r" that ends one read and its "\n" that starts the next: one line end, not two.
SPLIT_CRLF = python(
    """
    import sys, time
    sys.stdout.write("x\\r")
    sys.stdout.flush()
    time.sleep(0.2)
    sys.stdout.write("\\ny\\n")
    """
)


def test_run_and_shell_text_reads_universal_newlines(sync_call: SyncCall) -> None:
    assert sync_call(run, MIXED).stdout == "a\nb\nc\n"
    assert sync_call(shell, MIXED_SHELL).stdout == "a\nb\nc\n"
    assert sync_call(run, ["sh", "-c", "printf 'e\\r\\n' >&2"]).stderr == "e\n"
    assert sync_call(run, SPLIT_CRLF).stdout == "x\ny\n"
    assert sync_call(run, MIXED, text=False).stdout == RAW
    assert sync_call(shell, MIXED_SHELL, text=False).stdout == RAW


@pytest.mark.anyio
async def test_run_and_shell_text_reads_universal_newlines_async() -> None:
    assert (await async_run(MIXED)).stdout == "a\nb\nc\n"
    assert (await async_shell(MIXED_SHELL)).stdout == "a\nb\nc\n"
    assert (await async_run(MIXED, text=False)).stdout == RAW
    assert (await async_shell(MIXED_SHELL, text=False)).stdout == RAW


@pytest.mark.parametrize("max_line", [None, 100])
def test_sync_streams_split_at_every_line_end(sync_call: SyncCall, max_line: int | None) -> None:
    def read() -> tuple[list[str], list[list[str]], list[str]]:
        lines = list(stream(MIXED, max_line=max_line))
        batches = list(stream_batches(MIXED, max_line=max_line))
        split = list(stream(SPLIT_CRLF, max_line=max_line))
        return lines, batches, split

    assert sync_call(read) == (["a", "b", "c"], [["a", "b", "c"]], ["x", "y"])


@pytest.mark.anyio
@pytest.mark.parametrize("max_line", [None, 100])
async def test_async_streams_split_at_every_line_end(max_line: int | None) -> None:
    assert [line async for line in async_stream(MIXED, max_line=max_line)] == ["a", "b", "c"]
    batches = [b async for b in async_stream_batches(MIXED, max_line=max_line)]
    assert [line for batch in batches for line in batch] == ["a", "b", "c"]
    split = [line async for line in async_stream(SPLIT_CRLF, max_line=max_line)]
    assert split == ["x", "y"]
    split_batches = [b async for b in async_stream_batches(SPLIT_CRLF, max_line=max_line)]
    assert split_batches == [["x"], ["y"]]


async def read_all(proc: ManagedProcess, read: Any, count: int) -> list[str]:
    return [await read(timeout=5) for _ in range(count)]


@pytest.mark.anyio
async def test_managed_text_mode_reads_universal_newlines() -> None:
    async with ManagedProcess(["printf", "a\\r\\nb\\rc\\nd"], text_mode=True) as proc:
        assert await read_all(proc, proc.read_line_async, 5) == ["a", "b", "c", "d", ""]
    async with ManagedProcess(["printf", "a\\r\\nb\\rc"], text_mode=True) as proc:
        chars = await read_all(proc, proc.read_char_async, 6)
        assert chars == ["a", "\n", "b", "\n", "c", ""]
    async with ManagedProcess(SPLIT_CRLF, text_mode=True) as proc:
        assert await read_all(proc, proc.read_line_async, 3) == ["x", "y", ""]
    async with ManagedProcess(SPLIT_CRLF, text_mode=True) as proc:
        assert await read_all(proc, proc.read_char_async, 4) == ["x", "\n", "y", "\n"]


@pytest.mark.anyio
async def test_managed_without_text_mode_splits_at_newline_only() -> None:
    # As the seed's binary reads: a line ends at "\n", its trailing "\r" removed.
    async with ManagedProcess(["printf", "a\\r\\nb\\rc\\nd"], text_mode=False) as proc:
        assert await read_all(proc, proc.read_line_async, 4) == ["a", "b\rc", "d", ""]
    async with ManagedProcess(["printf", "a\\r\\nb"], text_mode=False) as proc:
        assert await read_all(proc, proc.read_char_async, 5) == ["a", "\r", "\n", "b", ""]


@pytest.mark.anyio
async def test_managed_universal_newlines_keyword_is_text_mode() -> None:
    async with ManagedProcess(["printf", "a\\rb\\n"], universal_newlines=True) as proc:
        assert await read_all(proc, proc.read_line_async, 2) == ["a", "b"]


def test_universal_newlines_is_an_alias_of_text(sync_call: SyncCall) -> None:
    assert sync_call(run, MIXED, universal_newlines=True).stdout == "a\nb\nc\n"
    assert sync_call(run, MIXED, universal_newlines=False).stdout == RAW
    assert sync_call(run, MIXED, text=False, universal_newlines=False).stdout == RAW
    assert sync_call(shell, MIXED_SHELL, universal_newlines=False).stdout == RAW
    assert sync_call(lambda: list(stream(MIXED, universal_newlines=True))) == ["a", "b", "c"]


@pytest.mark.anyio
async def test_universal_newlines_is_an_alias_of_text_async() -> None:
    assert (await async_run(MIXED, universal_newlines=True)).stdout == "a\nb\nc\n"
    assert (await async_run(MIXED, universal_newlines=False)).stdout == RAW


def test_text_false_with_universal_newlines_true_is_refused(sync_call: SyncCall) -> None:
    with pytest.raises(ValidationError, match="contradict"):
        sync_call(run, MIXED, text=False, universal_newlines=True)
    with pytest.raises(ValidationError, match="contradict"):
        sync_call(shell, MIXED_SHELL, text=False, universal_newlines=True)


@pytest.mark.anyio
async def test_text_false_with_universal_newlines_true_is_refused_async() -> None:
    with pytest.raises(ValidationError, match="contradict"):
        await async_run(MIXED, text=False, universal_newlines=True)
    # ManagedProcess: text_mode=False is its default, so universal_newlines=True (the seed's
    # other name for it) wins rather than contradicting it.
    assert ManagedProcess(MIXED, text_mode=False, universal_newlines=True)._call.text
