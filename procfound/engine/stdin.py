"""Writing to a running child's stdin: our end of its pipe (or its terminal), owned by one writer.

A :class:`StdinWriter` lives in the loop of the child's owner. Its fd is non-blocking: a write
puts in what the pipe takes and waits for room with ``anyio.wait_writable``, so a child that
reads slowly holds up only the task that writes, never the loop (the owner's other reads, other
children, the portal's other calls). Writes are queued behind a lock, so two of them never
interleave, and :meth:`StdinWriter.close` (end of file) comes after the writes asked for before
it.

A pipe's end of file is the close of our end. A terminal's is its end-of-file character
(``VEOF``, usually Ctrl-D: :func:`~procfound.engine.terminal.end_of_input`), written like input
before our end closes: closing alone sends nothing, since the terminal stays open as the
child's output (the writer holds its own duplicate of the terminal's fd, so the reader's close
and ours never touch the same fd number).

The writer tells its caller what went wrong through :class:`StdinClosedError` (the child
exited or closed its stdin: ``EPIPE``; or the writer was closed) and counts every byte that went
in (:attr:`StdinWriter.written`, and each write's own :class:`WriteProgress`), so a write cut
short by a deadline can say how far it got.
"""

from __future__ import annotations

import contextlib
import errno
import os
import weakref
from typing import Final

import anyio

from procfound.engine.terminal import canonical, end_of_input, line_cuts

__all__ = ["StdinClosedError", "StdinWriter", "WriteProgress"]

# The most one os.write hands the kernel (a pipe takes at most its size anyway).
_WRITE_CHUNK: Final = 1024 * 1024

_writers: weakref.WeakSet[StdinWriter] = weakref.WeakSet()


class StdinClosedError(Exception):
    """The child's stdin cannot take more: ``by_us`` says whether :meth:`StdinWriter.close`
    (or :meth:`StdinWriter.abort`) closed it, rather than the child (it exited, or closed its
    end)."""

    def __init__(self, *, by_us: bool) -> None:
        super().__init__("stdin was closed" + (" (close_stdin)" if by_us else " by the child"))
        self.by_us = by_us


class WriteProgress:
    """How many bytes of one write went in so far (still true after it was cancelled)."""

    __slots__ = ("written",)

    def __init__(self) -> None:
        self.written = 0


class StdinWriter:
    """Our end of a child's stdin: ``write`` all of some bytes, ``close`` for end of file.

    Every method runs in the loop that owns the child (its owner's); the fd is taken over:
    :meth:`abort` closes it (the owner calls it when the child is finished).

    Args:
        fd: Our end: the write end of the child's stdin pipe, or a duplicate of a terminal's
            master fd (``terminal=True``). It is made non-blocking.
        terminal: ``close`` writes the terminal's end-of-file character instead of closing.
    """

    __slots__ = (
        "__weakref__",
        "_eof",
        "_fd",
        "_last",
        "_lock",
        "_pending",
        "_terminal",
        "written",
    )

    def __init__(self, fd: int, *, terminal: bool = False) -> None:
        os.set_blocking(fd, False)
        self._fd = fd
        self._terminal = terminal
        self._eof = False  # close() was asked for: no write may start after it
        self._lock: anyio.Lock | None = None
        self._last = b""  # the last byte written: a terminal's end of file depends on it
        self._pending = 0  # a terminal's: characters of the line not ended yet (line_cuts)
        self.written = 0  # bytes that went in, over all writes
        _writers.add(self)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` or :meth:`abort` was called."""
        return self._eof or self._fd < 0

    def _queue(self) -> anyio.Lock:
        if self._lock is None:  # made in the owner's loop, on first use
            self._lock = anyio.Lock()
        return self._lock

    async def write(self, data: bytes, progress: WriteProgress | None = None) -> None:
        """Write all of ``data``, waiting for room as long as it takes (the caller bounds it).

        Cancel-safe: a cancelled write has put in ``progress.written`` of its bytes (0 if it was
        still waiting for an earlier write), and the next write continues after those.

        Raises:
            StdinClosedError: The child exited or closed its stdin, or the writer was closed
                (before or during the write).
        """
        if self.closed:
            raise StdinClosedError(by_us=True)
        # The lock is fair: a close() asked for after this write waits for it.
        async with self._queue():
            progress = progress or WriteProgress()
            if not self._terminal:
                await self._put(memoryview(data), progress)
                return
            # A terminal in canonical mode drops what a line holds past its limit: a longer line
            # is handed over in pieces, each followed by the end-of-file character.
            cuts, _ = line_cuts(data, self._pending)
            start = 0
            for cut in [*cuts, len(data)]:
                await self._put(memoryview(data)[start:cut], progress)
                start = cut
                if cut < len(data):
                    await self._hand_over()

    async def _put(self, view: memoryview, progress: WriteProgress) -> None:
        while view:
            fd = self._fd
            if fd < 0:
                raise StdinClosedError(by_us=True)
            try:
                count = os.write(fd, view[:_WRITE_CHUNK])
            except BlockingIOError:
                try:
                    await anyio.wait_writable(fd)
                except anyio.ClosedResourceError:  # abort() closed it under us
                    raise StdinClosedError(by_us=True) from None
                continue
            except BrokenPipeError:  # EPIPE: no reader left (the child exited or closed it)
                raise StdinClosedError(by_us=False) from None
            except OSError as exc:
                if exc.errno == errno.EIO:  # a terminal the child let go of: as EPIPE on a pipe
                    raise StdinClosedError(by_us=False) from None
                raise
            if count:
                self.written += count
                progress.written += count
                self._last = bytes(view[count - 1 : count])
                if self._terminal:
                    _, self._pending = line_cuts(bytes(view[:count]), self._pending, 1 << 62)
                view = view[count:]

    async def _hand_over(self) -> None:
        """A terminal's end-of-file character in the middle of a line: the reader gets what is
        pending (not counted as written). Nothing in raw mode, where lines have no limit."""
        if self._pending and canonical(self._fd):
            eof = memoryview(end_of_input(self._fd, b"\n"))
            extra = WriteProgress()
            try:
                await self._put(eof, extra)
            finally:
                self.written -= extra.written
        self._pending = 0
        self._last = b"\n"  # nothing is pending now: one end-of-file ends the input

    async def close(self) -> None:
        """End of file for the child, after the writes already asked for. Safe to call twice.

        A pipe is closed; a terminal is sent its end-of-file character (twice when a partial
        line is pending: the first only hands that line to the reader).

        Raises:
            StdinClosedError: A terminal whose child is gone (only the end-of-file write can
                fail; a closed pipe is closed all the same).
        """
        if self._eof:
            return
        self._eof = True  # writes queued after this fail
        async with self._queue():
            if self._fd < 0:
                return
            try:
                if self._terminal:
                    eof = end_of_input(self._fd, self._last)
                    await self._put(memoryview(eof), WriteProgress())
            finally:
                self._close_fd()

    def abort(self) -> None:
        """Close the fd now (the child is finished): a write waiting for room fails. Safe to
        call twice; in the owner's loop thread."""
        self._eof = True
        fd = self._fd
        if fd >= 0:
            with contextlib.suppress(RuntimeError):  # no running loop: nothing can be waiting
                anyio.notify_closing(fd)
            self._close_fd()

    def _close_fd(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


def _close_after_fork() -> None:
    # A forked child's copy of our end would keep the child's stdin open after the parent
    # closes it (the child would never see end of file): the copies go at once.
    for writer in list(_writers):
        writer._eof = True
        fd, writer._fd = writer._fd, -1
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)
    _writers.clear()


os.register_at_fork(after_in_child=_close_after_fork)
