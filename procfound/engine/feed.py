"""An input produced while the child runs: written into its stdin pipe as it comes.

``input=`` may be an iterable of bytes/str (a list, a generator, a file read in chunks) or an
async iterable. :class:`InputPump` owns our (non-blocking) write end of the child's stdin pipe
and moves one unit per :meth:`InputPump.step`: fetch the next chunk, or write what the pipe
accepts. Every step is cancel-safe, so a run's task group can run it to the end, and a stream's
per-read race (engine/pipeline.py) can cancel it whenever output wins, without losing a byte.

A sync iterable is never advanced in the event loop (its ``next()`` may block: a socket, a
queue, ``time.sleep``): one helper thread per input runs ahead of the writes, at most
:data:`_AHEAD` bytes, and wakes the loop through a pipe, which the loop waits on like any other
fd. Its ``next()`` is never cancelled half-way: a fetch that outlives the read that started it
is picked up by the next one. When the run ends first, the thread is told to stop and ends
after the ``next()`` it is in (it is a daemon thread: a ``next()`` that never returns cannot
keep the interpreter alive).

An async iterable is awaited in the loop. In a run it has a task of its own. In a stream's race
its fetch is the one step the race does not cancel (cancelling an async generator's
``__anext__`` would end the generator): a read that was won meanwhile waits for the item. The
caller's own cancellation and the stream's deadline do reach it (the stream is ending then).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from typing import Any, Final

import anyio

__all__ = ["InputPump"]

# How far the helper thread may run ahead of the writes (bytes fetched, not yet taken).
_AHEAD: Final = 1024 * 1024
# The most one write hands to the kernel (a pipe takes at most its size anyway).
_WRITE_CHUNK: Final = 1024 * 1024

Encode = Callable[[object], bytes]


class _ThreadFetcher:
    """Runs a sync iterator in a helper thread; the loop takes its chunks without blocking."""

    __slots__ = (
        "_cond",
        "_error",
        "_finished",
        "_queue",
        "_queued",
        "_stopped",
        "_wake_r",
        "_wake_w",
    )

    def __init__(self, items: Iterator[Any], encode: Encode) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[bytes] = deque()
        self._queued = 0
        self._finished = False
        self._stopped = False
        self._error: BaseException | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        thread = threading.Thread(
            target=self._produce, args=(items, encode), name="procfound-input", daemon=True
        )
        try:
            thread.start()
        except BaseException:
            self.close()
            raise

    def _produce(self, items: Iterator[Any], encode: Encode) -> None:
        try:
            for item in items:
                data = encode(item)
                with self._cond:
                    while self._queued >= _AHEAD and not self._stopped:
                        self._cond.wait()
                    if self._stopped:
                        return
                    if data:
                        self._queue.append(data)
                        self._queued += len(data)
                        self._wake()
        except BaseException as exc:  # handed to the loop, which stops the tree and raises it
            with self._cond:
                self._error = exc
        finally:
            with self._cond:
                self._finished = True
                self._wake()

    def _wake(self) -> None:
        # Called with the lock held, so close() cannot close the pipe under us.
        if self._wake_w >= 0:
            with contextlib.suppress(BlockingIOError):  # full: a wake-up is pending anyway
                os.write(self._wake_w, b"\0")

    async def next(self) -> bytes | None:
        """Everything fetched so far, joined (never empty); None at the end. Cancel-safe."""
        while True:
            with self._cond:
                if self._queue:
                    data = b"".join(self._queue) if len(self._queue) > 1 else self._queue[0]
                    self._queue.clear()
                    self._queued = 0
                    self._cond.notify()
                    return data
                if self._finished:
                    if self._error is not None:
                        error, self._error = self._error, None
                        raise error
                    return None
                # Drained under the lock: a chunk queued after this also writes a new wake-up.
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wake_r, 4096)
            await anyio.wait_readable(self._wake_r)

    def close(self) -> None:
        """Tell the thread to stop (after the ``next()`` it is in) and close the wake-up pipe."""
        with self._cond:
            self._stopped = True
            self._queue.clear()
            self._cond.notify_all()
            for fd in (self._wake_r, self._wake_w):
                if fd >= 0:
                    os.close(fd)
            self._wake_r = self._wake_w = -1


class InputPump:
    """Writes an input produced as the child runs into our end of its stdin pipe."""

    __slots__ = ("_async", "_encode", "_fd", "_fetcher", "_pending", "done", "fetching")

    def __init__(self, source: Iterable[Any] | AsyncIterable[Any], fd: int, encode: Encode):
        """Take over ``fd`` (our non-blocking write end; closed at the end of the input).

        Args:
            source: The iterable or async iterable of chunks.
            fd: The pipe to write them into.
            encode: Turns one item into bytes (raises for an item of the wrong type).
        """
        self._fd = fd
        self._encode = encode
        self._pending = memoryview(b"")
        self.done = False
        self.fetching = False  # awaiting an async iterable's next item: not to be cancelled
        self._async: AsyncIterator[Any] | None = None
        self._fetcher: _ThreadFetcher | None = None
        if isinstance(source, AsyncIterable):
            self._async = aiter(source)
        else:
            self._fetcher = _ThreadFetcher(iter(source), encode)

    async def step(self, may_fetch: Callable[[], bool] | None = None) -> None:
        """Move the input on by one unit: write what the pipe accepts, or fetch the next chunk.

        Cancel-safe, except while :attr:`fetching` (an async iterable's ``__anext__``, which a
        cancellation would end). ``may_fetch``: asked just before such a fetch starts; False
        (the race is already over) makes the step return without fetching.

        Raises:
            Exception: Whatever the iterable raised (or ``encode`` raised for an item).
        """
        if self.done:
            await anyio.sleep_forever()
        if self._pending:
            await anyio.wait_writable(self._fd)
            self._write()
            return
        if self._async is not None and may_fetch is not None and not may_fetch():
            return
        data = await self._fetch()
        if data is None:
            self._end()
            return
        self._pending = memoryview(data)
        self._write()

    async def run(self) -> None:
        """Write the whole input (the task of a run)."""
        while not self.done:
            await self.step()

    async def _fetch(self) -> bytes | None:
        if self._fetcher is not None:
            return await self._fetcher.next()
        assert self._async is not None
        while True:
            self.fetching = True
            try:
                item = await anext(self._async)
            except StopAsyncIteration:
                return None
            finally:
                self.fetching = False
            data = self._encode(item)
            if data:
                return data

    def _write(self) -> None:
        pending = self._pending
        while pending:
            try:
                written = os.write(self._fd, pending[:_WRITE_CHUNK])
            except BlockingIOError:
                break
            except BrokenPipeError:
                # The child closed its stdin (head, or it exited): as subprocess, not an error;
                # the rest of the input is not wanted.
                pending = memoryview(b"")
                self._end()
                break
            pending = pending[written:]
        self._pending = pending

    def _end(self) -> None:
        """The input is over (or not wanted): EOF for the child, stop the helper thread."""
        self.done = True
        self._pending = memoryview(b"")
        self.close()

    def close(self) -> None:
        """Close our end of the pipe and stop fetching. Idempotent."""
        self.done = True
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)
        if self._fetcher is not None:
            self._fetcher.close()
