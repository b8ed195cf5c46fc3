"""The engine's stdin writer on real pipes to real children: a full pipe waits without blocking
the loop, a gone reader is StdinClosedError (never BrokenPipeError), and abort wakes a waiting
write."""

from __future__ import annotations

import os
import subprocess

import anyio
import pytest
from conftest import SLOW_READER, Ticker, python

from procfound.engine.stdin import StdinClosedError, StdinWriter

pytestmark = pytest.mark.anyio


def _writer_for(proc: subprocess.Popen[bytes]) -> StdinWriter:
    assert proc.stdin is not None
    fd = os.dup(proc.stdin.fileno())
    proc.stdin.close()
    proc.stdin = None
    return StdinWriter(fd)


async def test_a_write_bigger_than_the_pipe_waits_without_blocking_the_loop() -> None:
    data = b"x" * (4 * 1024 * 1024)
    with subprocess.Popen(
        python(SLOW_READER), stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as proc:
        writer = _writer_for(proc)
        ticker = Ticker()

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(ticker.run)
                with anyio.fail_after(60):
                    await writer.write(data)
                    await writer.close()
                group.cancel_scope.cancel()
        finally:
            writer.abort()
        out, _ = proc.communicate(timeout=30)
    assert int(out) == len(data)
    assert writer.written == len(data)
    assert ticker.ticks >= 10  # the loop ran other tasks while the pipe was full


async def test_writing_to_an_exited_child_is_stdin_closed_not_broken_pipe() -> None:
    with subprocess.Popen(["true"], stdin=subprocess.PIPE) as proc:
        writer = _writer_for(proc)
        proc.wait(timeout=10)
        try:
            with pytest.raises(StdinClosedError) as caught:
                await writer.write(b"hello\n" * 100_000)
        finally:
            writer.abort()
    assert caught.value.by_us is False


async def test_abort_wakes_a_write_waiting_for_room_and_counts_what_went_in() -> None:
    with subprocess.Popen(["sleep", "30"], stdin=subprocess.PIPE) as proc:
        writer = _writer_for(proc)
        try:
            async with anyio.create_task_group() as group:

                async def write() -> None:
                    with pytest.raises(StdinClosedError) as caught:
                        await writer.write(b"y" * (8 * 1024 * 1024))
                    assert caught.value.by_us is True

                group.start_soon(write)
                with anyio.fail_after(10):
                    while writer.written == 0:
                        await anyio.sleep(0.01)
                    await anyio.sleep(0.05)
                writer.abort()
            assert 0 < writer.written < 8 * 1024 * 1024
            writer.abort()  # twice is fine
            with pytest.raises(StdinClosedError):
                await writer.write(b"z")
        finally:
            writer.abort()
            proc.kill()


async def test_close_is_end_of_file_and_safe_twice() -> None:
    with subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE) as proc:
        writer = _writer_for(proc)
        try:
            await writer.write(b"abc")
            await writer.close()
            await writer.close()
            assert writer.closed
            with pytest.raises(StdinClosedError) as caught:
                await writer.write(b"more")
            assert caught.value.by_us is True
        finally:
            writer.abort()
        out, _ = proc.communicate(timeout=10)
    assert out == b"abc"
