"""Workload ``capture``: read N MiB of a child's stdout into memory, as throughput."""

from __future__ import annotations

import asyncio
import fcntl
import io
import mmap
import os
import shutil
import subprocess
from typing import Any, Final

import anyio

from benchmarks.harness import MIB, Contender, Workload, in_loop, procfound_attr, timed

F_SETPIPE_SZ: Final = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def _check(data: bytes | bytearray, size: int) -> None:
    # A short or wrong capture must fail the row, not report a fast time.
    if len(data) != size:
        raise AssertionError(f"captured {len(data)} bytes, expected {size}")


def _child_on_pipe(cmd: list[str], pipe_size: int | None) -> tuple[int, subprocess.Popen[bytes]]:
    """Start ``cmd`` writing into a new pipe (grown to ``pipe_size``); our read end and it."""
    r, w = os.pipe()
    try:
        if pipe_size:
            fcntl.fcntl(w, F_SETPIPE_SZ, pipe_size)
        return r, subprocess.Popen(cmd, stdout=w)
    except BaseException:
        os.close(r)
        raise
    finally:
        os.close(w)


def workload(quick: bool) -> Workload:
    size = (64 if quick else 256) * MIB
    cmd = [shutil.which("head") or "head", "-c", str(size), "/dev/zero"]

    def stdlib() -> float:
        def work() -> None:
            _check(subprocess.run(cmd, capture_output=True, check=True).stdout, size)

        return timed(work)

    def raw_read(pipe_size: int | None) -> float:
        """The physical reference: os.readv 1 MiB at a time into one reused buffer, discarded."""
        buf = bytearray(MIB)

        def work() -> None:
            r, proc = _child_on_pipe(cmd, pipe_size)
            total = 0
            try:
                while chunk := os.readv(r, [buf]):
                    total += chunk
            finally:
                os.close(r)
                proc.kill()
                proc.wait()
            if total != size:
                raise AssertionError(f"read {total} bytes, expected {size}")

        return timed(work)

    def keep_in_memory() -> float:
        """The physical floor of keeping the output: N MiB into fresh memory, no pipe at all.

        A warm 1 MiB buffer is written N times into an ``io.BytesIO`` and ``getvalue()`` is
        taken: the first-touch page faults any capture that keeps its output must pay.
        """
        chunk = bytearray(b"\0" * MIB)  # touched here, outside the clock
        kept: list[bytes] = []

        def work() -> None:
            buffer = io.BytesIO()
            for _ in range(size // MIB):
                buffer.write(chunk)
            kept.append(buffer.getvalue())

        seconds = timed(work)
        _check(kept[0], size)
        return seconds

    def read_into_fresh_memory() -> float:
        """A capture that keeps its output with no library and no event loop: blocking
        ``os.readv`` of the pipe straight into a fresh anonymous mmap, each 1 MiB's pages touched
        just before it is read into (so the faults are not taken inside the pipe read)."""
        kept: list[int] = []
        page = mmap.PAGESIZE

        def work() -> None:
            region = mmap.mmap(-1, size + MIB)
            view = memoryview(region)
            r, proc = _child_on_pipe(cmd, MIB)
            total = 0
            try:
                while True:
                    chunk = view[total : total + MIB]
                    chunk[::page] = bytes(len(chunk[::page]))
                    n = os.readv(r, [chunk])
                    chunk.release()
                    if not n:
                        break
                    total += n
            finally:
                os.close(r)
                proc.kill()
                proc.wait()
            kept.append(total)
            view.release()
            region.close()

        seconds = timed(work)
        if kept[-1] != size:
            raise AssertionError(f"read {kept[-1]} bytes, expected {size}")
        return seconds

    async def asyncio_peer() -> None:
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        out, _ = await proc.communicate()
        assert proc.returncode == 0
        _check(out, size)

    async def anyio_peer() -> None:
        _check((await anyio.run_process(cmd)).stdout, size)

    async def trio_peer() -> None:
        import trio

        result = await trio.run_process(cmd, capture_stdout=True, capture_stderr=True)
        _check(result.stdout, size)

    def stdlib_text() -> float:
        def work() -> None:
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            _check(out.encode(), size)

        return timed(work)

    def procfound_sync() -> float:
        run = procfound_attr("run")
        return timed(lambda: _check(run(cmd, text=False).stdout, size))

    def procfound_text() -> float:
        """Text mode: decoded once, and scanned for "\r" (universal newlines)."""
        run = procfound_attr("run")
        return timed(lambda: _check(run(cmd).stdout.encode(), size))

    def procfound_async(how: Any) -> float:
        async_run = procfound_attr("async_run")

        async def work() -> None:
            _check((await async_run(cmd, text=False)).stdout, size)

        return in_loop(how, work)

    return Workload(
        name="capture",
        title=f"capture: {size // MIB} MiB of stdout from `head -c`, throughput",
        unit="MB/s",
        work=size,
        contenders=[
            Contender("subprocess.run(capture_output=True)", "stdlib", stdlib, "baseline"),
            Contender(
                "os.readv 1 MiB, reused buffer, discard (physical)",
                "reference",
                lambda: raw_read(None),
                "reference",
            ),
            Contender(
                "same, pipe grown to 1 MiB (F_SETPIPE_SZ)",
                "reference",
                lambda: raw_read(MIB),
                "reference",
            ),
            Contender(
                f"keep {size // MIB} MiB in fresh memory, no pipe (physical)",
                "reference",
                keep_in_memory,
                "reference",
            ),
            Contender(
                "os.readv straight into a fresh mmap, pages touched before each read, "
                "no event loop (physical)",
                "reference",
                read_into_fresh_memory,
                "reference",
            ),
            Contender(
                "asyncio.create_subprocess_exec + communicate",
                "asyncio",
                lambda: in_loop("asyncio", asyncio_peer),
            ),
            Contender(
                "anyio.run_process", "anyio[asyncio]", lambda: in_loop("anyio[asyncio]", anyio_peer)
            ),
            Contender(
                "anyio.run_process", "anyio[trio]", lambda: in_loop("anyio[trio]", anyio_peer)
            ),
            Contender("trio.run_process(capture_*)", "trio", lambda: in_loop("trio", trio_peer)),
            Contender("procfound.run(text=False)", "procfound sync", procfound_sync),
            Contender(
                "subprocess.run(capture_output=True, text=True) (text)",
                "stdlib",
                stdlib_text,
                "reference",
            ),
            Contender(
                "procfound.run() (text, universal newlines)", "procfound sync", procfound_text
            ),
            Contender(
                "procfound.async_run(text=False)",
                "procfound[asyncio]",
                lambda: procfound_async("anyio[asyncio]"),
            ),
            Contender(
                "procfound.async_run(text=False)",
                "procfound[trio]",
                lambda: procfound_async("anyio[trio]"),
            ),
        ],
    )
