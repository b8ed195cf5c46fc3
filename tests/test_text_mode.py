"""Universal newlines: text output reads ``\\r\\n`` and a lone ``\\r`` as ``\\n``, as text-mode
``subprocess`` and the seed do; bytes are left alone; ``universal_newlines`` is ``text``'s alias.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from conftest import SyncCall, python

from procfound import (
    DecodeError,
    ManagedProcess,
    ProcessError,
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


# --------------------------------------------------------------------------------------------
# Undecodable output (errors="strict"): a DecodeError that keeps the output as bytes
# --------------------------------------------------------------------------------------------

BAD_BYTES = b"ok\nbad\xff\xfe\nmore\n"  # the first undecodable byte is at position 6
WRITE_BAD = python(
    """
    import os, sys
    os.write(1, b"ok\\nbad\\xff\\xfe\\nmore\\n")
    os.write(2, b"err\\xfd")
    sys.exit(3)
    """
)
# The same output, then a child that would run for 30 s: a stream must stop it.
WRITE_BAD_AND_WAIT = python(
    """
    import os, time
    os.write(1, b"ok\\nbad\\xff\\xfe\\nmore\\n")
    time.sleep(30)
    """
)


def _check_decode_error(error: DecodeError, stream: str = "stdout") -> None:
    assert isinstance(error, ProcessError)
    assert error.code == "DECODE_ERROR"
    assert (error.encoding, error.errors, error.stream) == ("utf-8", "strict", stream)
    message = str(error)
    assert "'utf-8'" in message
    assert "errors='replace'" in message
    assert f"position {error.position}" in message


def test_run_and_shell_keep_undecodable_output_as_bytes(sync_call: SyncCall) -> None:
    with pytest.raises(DecodeError) as info:
        sync_call(run, WRITE_BAD, errors="strict", check=False)
    error = info.value
    _check_decode_error(error)
    assert error.position == 6
    assert "text=False" in str(error)
    assert error.result.stdout == BAD_BYTES
    assert error.result.stderr == b"err\xfd"
    assert error.result.returncode == error.return_code == 3
    with pytest.raises(DecodeError) as info:
        sync_call(
            shell,
            "printf 'ok\\n' && printf 'e\\375' >&2",
            errors="strict",
            allow_shell_features=True,
        )
    _check_decode_error(info.value, "stderr")
    assert (info.value.result.stdout, info.value.result.stderr) == (b"ok\n", b"e\xfd")
    # max_output: the position still counts from the first byte written.
    with pytest.raises(DecodeError) as info:
        sync_call(run, WRITE_BAD, errors="strict", check=False, max_output=12)
    assert info.value.position == 6
    assert info.value.result.stdout == BAD_BYTES[-12:]
    # Nothing changes where the output decodes, or for bytes.
    assert sync_call(run, WRITE_BAD, check=False).stdout == "ok\nbad\ufffd\ufffd\nmore\n"
    assert sync_call(run, WRITE_BAD, errors="strict", check=False, text=False).stdout == BAD_BYTES


@pytest.mark.anyio
async def test_async_run_and_shell_keep_undecodable_output_as_bytes() -> None:
    with pytest.raises(DecodeError) as info:
        await async_run(WRITE_BAD, errors="strict", check=False)
    _check_decode_error(info.value)
    assert info.value.result.stdout == BAD_BYTES
    with pytest.raises(DecodeError) as info:
        await async_shell("printf 'a\\377'", errors="strict", timeout=5)
    assert info.value.result.stdout == b"a\xff"
    assert info.value.position == 1


def _lines_then_error(lines: Any) -> tuple[list[str], DecodeError]:
    got: list[str] = []
    try:
        for line in lines:
            got.append(line)
    except DecodeError as error:
        return got, error
    raise AssertionError(f"no DecodeError after {got}")


@pytest.mark.parametrize("max_line", [None, 100])
def test_sync_streams_yield_the_decodable_lines_then_keep_the_rest_as_bytes(
    sync_call: SyncCall, max_line: int | None
) -> None:
    def read(batched: bool) -> tuple[list[str], DecodeError]:
        if batched:
            batches = stream_batches(WRITE_BAD_AND_WAIT, errors="strict", max_line=max_line)
            return _lines_then_error(line for batch in batches for line in batch)
        return _lines_then_error(stream(WRITE_BAD_AND_WAIT, errors="strict", max_line=max_line))

    for batched in (False, True):
        started = time.monotonic()
        lines, error = sync_call(read, batched)
        assert time.monotonic() - started < 10  # raised at the bad line, child stopped
        assert lines == ["ok"]
        _check_decode_error(error)
        assert error.result.stdout == b"bad\xff\xfe\nmore\n"
        assert error.result.returncode == error.return_code == -15  # stopped by SIGTERM
        assert "text=False" not in str(error)  # streams are text: the hint says so
        assert error.position == 6


@pytest.mark.anyio
async def test_async_streams_yield_the_decodable_lines_then_keep_the_rest_as_bytes() -> None:
    async def read(lines: Any) -> tuple[list[str], DecodeError]:
        got: list[str] = []
        try:
            async for line in lines:
                got.append(line)
        except DecodeError as error:
            return got, error
        raise AssertionError(f"no DecodeError after {got}")

    lines, error = await read(async_stream(WRITE_BAD_AND_WAIT, errors="strict"))
    assert lines == ["ok"]
    assert (error.position, error.result.stdout) == (6, b"bad\xff\xfe\nmore\n")

    async def flat() -> Any:
        async for batch in async_stream_batches(WRITE_BAD_AND_WAIT, errors="strict"):
            for line in batch:
                yield line

    lines, error = await read(flat())
    assert lines == ["ok"]
    assert error.result.returncode == -15
    # A last line without a newline is checked too.
    lines, error = await read(async_stream(["printf", "a\\nb\\377"], errors="strict"))
    assert (lines, error.result.stdout, error.result.returncode) == (["a"], b"b\xff", 0)


@pytest.mark.anyio
async def test_managed_reads_raise_decode_error_with_the_bytes_they_consumed() -> None:
    cmd = python(
        """
        import os, time
        os.write(1, b"ok\\nbad\\xff\\n\\xfeafter\\n")
        time.sleep(30)
        """
    )
    async with ManagedProcess(cmd, errors="strict", stderr_relay=False) as proc:
        assert await proc.read_line_async(timeout=5) == "ok"
        with pytest.raises(DecodeError) as info:
            await proc.read_line_async(timeout=5)
        _check_decode_error(info.value)
        assert info.value.position == 6
        assert info.value.result.stdout == b"bad\xff"
        with pytest.raises(DecodeError) as info:
            await proc.read_char_async(timeout=5)
        assert info.value.result.stdout == b"\xfe"
        assert await proc.read_line_async(timeout=5) == "after"  # nothing else was lost
        # The tails are diagnostics, cut at any byte: what does not decode is replaced.
        assert "\ufffd" in proc.stdout_tail
