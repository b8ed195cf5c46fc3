"""Byte buffers that pipes are read into and written from, without a copy per chunk."""

from __future__ import annotations

import os
from typing import Final

__all__ = ["InputFeeder", "OutputBuffer"]

# Reads go straight into free space of one growing bytearray (readv into a memoryview), so a
# capture costs one copy from the kernel and no per-chunk bytes objects or final join.
_MIN_FREE: Final = 64 * 1024
# A fast producer can keep a pipe full forever: give the event loop a turn after this many bytes.
_MAX_PER_FILL: Final = 16 * 1024 * 1024
_WRITE_CHUNK: Final = 1024 * 1024


class OutputBuffer:
    """What was read from one pipe, in one growing bytearray; with ``limit``, only its tail.

    Past ``limit`` bytes the buffer keeps reading (so the child never blocks on a full pipe) but
    keeps only the last ``limit`` bytes; :attr:`dropped` counts what was let go.
    """

    __slots__ = ("_data", "dropped", "limit", "size")

    def __init__(self, limit: int | None = None) -> None:
        if limit is not None and limit < 0:
            raise ValueError("limit must be >= 0")
        self._data = bytearray()
        self.size = 0
        self.limit = limit
        self.dropped = 0

    def fill_from(self, fd: int) -> bool:
        """Read what ``fd`` (non-blocking) has now; return True at end of file."""
        data = self._data
        taken = 0
        while taken < _MAX_PER_FILL:
            free = len(data) - self.size
            if free < _MIN_FREE:
                # Doubling keeps the number of grows logarithmic; realloc of large blocks is an
                # mremap on glibc, so growing moves no bytes.
                data.extend(bytes(max(_MIN_FREE, len(data))))
                free = len(data) - self.size
            with memoryview(data) as view, view[self.size :] as tail:
                try:
                    n = os.readv(fd, [tail])
                except BlockingIOError:
                    return False
            if n == 0:
                return True
            self.size += n
            taken += n
            if self.limit is not None and self.size > 2 * self.limit + _MIN_FREE:
                self._keep_tail()
            if n < free:
                return False  # a short read means the pipe is empty: skip the EAGAIN syscall
        return False

    def _keep_tail(self) -> None:
        # Trimming only once the buffer holds twice the limit makes the memmove amortised O(1)
        # per byte while memory stays within a small multiple of the limit.
        assert self.limit is not None
        excess = self.size - self.limit
        del self._data[:excess]
        self.size -= excess
        self.dropped += excess

    def getvalue(self) -> bytes:
        """The bytes read so far (the last ``limit`` of them, with a limit)."""
        if self.limit is not None and self.size > self.limit:
            self._keep_tail()
        return bytes(memoryview(self._data)[: self.size])

    def decode(self, encoding: str = "utf-8", errors: str = "replace") -> str:
        """The bytes read so far, decoded once (no intermediate bytes copy)."""
        if self.limit is not None and self.size > self.limit:
            self._keep_tail()
        with memoryview(self._data) as view, view[: self.size] as used:
            return str(used, encoding, errors)


class InputFeeder:
    """Bytes still to be written to a child's stdin, written as fast as the pipe accepts them."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._pos = 0

    @property
    def done(self) -> bool:
        """True once every byte was written."""
        return self._pos >= len(self._data)

    def write_to(self, fd: int) -> bool:
        """Write what ``fd`` (non-blocking) accepts now; return True when finished or broken.

        A child that closes its stdin early (``head``, or one that exited) makes the write fail
        with EPIPE; like ``subprocess``, that is not an error: the rest of the input is dropped.
        """
        data = self._data
        while self._pos < len(data):
            try:
                self._pos += os.write(fd, data[self._pos : self._pos + _WRITE_CHUNK])
            except BlockingIOError:
                return False
            except BrokenPipeError:
                return True
        return True
