"""Workload ``streaming``: every line of ``seq N`` delivered one by one, as lines per second."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from typing import Any, Final, cast

import anyio

from benchmarks.harness import Contender, LoopKind, Workload, in_loop, procfound_attr, timed

#: The chunk size a line reader of a pipe typically receives.
CHUNK: Final = 64 * 1024


async def split_lines(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """What a user of anyio or trio writes: split received chunks, yield one line at a time."""
    pending = b""
    async for chunk in chunks:
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            yield line
    if pending:
        yield pending


async def from_memory(lines: list[str]) -> AsyncIterator[str]:
    """The least any async line iterator does: one ``yield`` per line, no I/O, no splitting."""
    for line in lines:
        yield line


def split_pieces(data: bytes) -> Iterator[list[str]]:
    """What a str line reader does to a pipe's output: each 64 KiB chunk's complete lines are
    decoded and split (the partial line carried to the next chunk); the last line too."""
    pending = b""
    for start in range(0, len(data), CHUNK):
        buf = pending + data[start : start + CHUNK]
        cut = buf.rfind(b"\n") + 1
        pending = buf[cut:]
        if cut:
            lines = buf[:cut].decode("utf-8", "replace").split("\n")
            lines.pop()  # the empty string after the final newline
            yield lines
    if pending:
        yield [pending.decode("utf-8", "replace")]


async def split_from_memory(data: bytes) -> AsyncIterator[str]:
    """The least an async line reader *of a pipe* does: the output decoded and split into new
    strings inside the clock (:func:`split_pieces`), then one ``yield`` per line; no I/O."""
    for lines in split_pieces(data):
        for line in lines:
            yield line


def workload(quick: bool) -> Workload:
    n = 200_000 if quick else 1_000_000
    cmd = [shutil.which("seq") or "seq", str(n)]
    last_text = str(n)
    last_bytes = last_text.encode()

    def check(count: int, last: object) -> None:
        if count != n or last not in (last_text, last_bytes, last_bytes + b"\n"):
            raise AssertionError(f"got {count} lines ending with {last!r}, expected {n}")

    def stdlib() -> float:
        def work() -> None:
            count, last = 0, b""
            with subprocess.Popen(cmd, stdout=subprocess.PIPE) as proc:
                try:
                    assert proc.stdout is not None
                    for last in proc.stdout:  # noqa: B007 - the last line is checked
                        count += 1
                except BaseException:
                    proc.kill()
                    raise
            check(count, last)

        return timed(work)

    async def asyncio_peer() -> None:
        proc = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.PIPE)
        count, last = 0, b""
        try:
            assert proc.stdout is not None
            while line := await proc.stdout.readline():
                count += 1
                last = line
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise
        finally:
            await proc.wait()
        check(count, last)

    async def anyio_peer() -> None:
        count, last = 0, b""
        proc = await anyio.open_process(cmd, stdin=subprocess.DEVNULL, stderr=None)
        try:
            assert proc.stdout is not None
            async for last in split_lines(proc.stdout):  # noqa: B007
                count += 1
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise
        finally:
            await proc.aclose()
        check(count, last)

    async def trio_peer() -> None:
        import trio

        count, last = 0, b""
        proc = await trio.lowlevel.open_process(cmd, stdout=subprocess.PIPE)
        try:
            assert proc.stdout is not None
            chunks = cast("AsyncIterable[bytes]", proc.stdout)
            async for last in split_lines(chunks):  # noqa: B007
                count += 1
        except BaseException:
            proc.kill()
            raise
        finally:
            if proc.stdout is not None:
                await proc.stdout.aclose()
            await proc.wait()
        check(count, last)

    def output() -> bytes:
        """The command's whole output, fetched once per sample outside the clock."""
        return subprocess.run(cmd, capture_output=True, check=True).stdout

    def split_in_memory() -> float:
        """Reference: the decode + split work of a str line reader on the same bytes, no pipe.

        The bytes are cut in 64 KiB chunks; each chunk's complete lines are decoded and split,
        the partial line carried to the next chunk; every line is then counted one by one.
        """
        data = output()

        def work() -> None:
            count, last = 0, ""
            for lines in split_pieces(data):
                for last in lines:  # noqa: B007 - the last line is checked
                    count += 1
            check(count, last)

        return timed(work)

    def count_in_loop(how: LoopKind, lines: Callable[[], AsyncIterator[str]]) -> float:
        """``async for`` over ``lines()``, every line counted, in a fresh loop."""

        async def work() -> None:
            count, last = 0, ""
            async for last in lines():  # noqa: B007
                count += 1
            check(count, last)

        return in_loop(how, work)

    def async_for_ceiling(how: LoopKind) -> float:
        """Reference: ``async for`` over a bare async generator of the lines, pre-split."""
        lines = output().decode().split("\n")
        lines.pop()
        return count_in_loop(how, lambda: from_memory(lines))

    def async_split_floor(how: LoopKind) -> float:
        """Reference: the ceiling plus the decode and split a reader of a pipe must do."""
        data = output()
        return count_in_loop(how, lambda: split_from_memory(data))

    def procfound_sync() -> float:
        stream = procfound_attr("stream")

        def work() -> None:
            count, last = 0, ""
            for last in stream(cmd):  # noqa: B007
                count += 1
            check(count, last)

        return timed(work)

    def procfound_async(how: Any) -> float:
        async_stream = procfound_attr("async_stream")

        async def work() -> None:
            count, last = 0, ""
            async for last in async_stream(cmd):  # noqa: B007
                count += 1
            check(count, last)

        return in_loop(how, work)

    def procfound_sync_batches() -> float:
        stream_batches = procfound_attr("stream_batches")

        def work() -> None:
            count, last = 0, ""
            for batch in stream_batches(cmd):
                for last in batch:  # noqa: B007 - the last line is checked
                    count += 1
            check(count, last)

        return timed(work)

    def procfound_async_batches(how: Any) -> float:
        async_stream_batches = procfound_attr("async_stream_batches")

        async def work() -> None:
            count, last = 0, ""
            async for batch in async_stream_batches(cmd):
                for last in batch:  # noqa: B007 - the last line is checked
                    count += 1
            check(count, last)

        return in_loop(how, work)

    return Workload(
        name="streaming",
        title=f"streaming: `seq {n}` line by line, throughput",
        unit="lines/s",
        work=n,
        contenders=[
            Contender("iterate subprocess.Popen(stdout=PIPE).stdout", "stdlib", stdlib, "baseline"),
            Contender(
                "decode + split the same bytes in memory, then iterate (no pipe)",
                "reference",
                split_in_memory,
                "reference",
            ),
            Contender(
                "bare async generator yielding the lines from memory "
                "(per-line async for ceiling) [asyncio]",
                "reference",
                lambda: async_for_ceiling("anyio[asyncio]"),
                "reference",
            ),
            Contender(
                "bare async generator yielding the lines from memory "
                "(per-line async for ceiling) [trio]",
                "reference",
                lambda: async_for_ceiling("anyio[trio]"),
                "reference",
            ),
            Contender(
                "bare async generator decoding + splitting 64 KiB chunks from memory "
                "(per-line floor of a pipe reader) [asyncio]",
                "reference",
                lambda: async_split_floor("anyio[asyncio]"),
                "reference",
            ),
            Contender(
                "bare async generator decoding + splitting 64 KiB chunks from memory "
                "(per-line floor of a pipe reader) [trio]",
                "reference",
                lambda: async_split_floor("anyio[trio]"),
                "reference",
            ),
            Contender(
                "StreamReader.readline loop", "asyncio", lambda: in_loop("asyncio", asyncio_peer)
            ),
            Contender(
                "anyio.open_process + split chunks",
                "anyio[asyncio]",
                lambda: in_loop("anyio[asyncio]", anyio_peer),
            ),
            Contender(
                "anyio.open_process + split chunks",
                "anyio[trio]",
                lambda: in_loop("anyio[trio]", anyio_peer),
            ),
            Contender(
                "trio.lowlevel.open_process + split chunks",
                "trio",
                lambda: in_loop("trio", trio_peer),
            ),
            Contender("procfound.stream", "procfound sync", procfound_sync),
            Contender(
                "procfound.async_stream",
                "procfound[asyncio]",
                lambda: procfound_async("anyio[asyncio]"),
            ),
            Contender(
                "procfound.async_stream", "procfound[trio]", lambda: procfound_async("anyio[trio]")
            ),
            Contender(
                "procfound.stream_batches (a for loop per batch)",
                "procfound sync",
                procfound_sync_batches,
            ),
            Contender(
                "procfound.async_stream_batches (an await per batch)",
                "procfound[asyncio]",
                lambda: procfound_async_batches("anyio[asyncio]"),
            ),
            Contender(
                "procfound.async_stream_batches (an await per batch)",
                "procfound[trio]",
                lambda: procfound_async_batches("anyio[trio]"),
            ),
        ],
        note="anyio and trio have no line reader; their rows split received chunks in an "
        "async generator, one `yield` per line, as a user would. The `*_batches` rows still "
        "touch every line, in a plain `for` over each batch.",
    )
