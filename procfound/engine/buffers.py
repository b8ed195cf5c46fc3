"""Byte buffers that pipes are read into and written from, without a copy per chunk."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import mmap
import os
import platform
import sys
from typing import Final

__all__ = ["BIG_PIPE", "PIPE_FULL", "InputFeeder", "OutputBuffer", "grow_pipe"]

_READ_SIZE: Final = 1024 * 1024
# A fast producer can keep a pipe full forever: give the event loop a turn after this many bytes.
_MAX_PER_FILL: Final = 16 * 1024 * 1024
_WRITE_CHUNK: Final = 1024 * 1024
# A pipe that arrives full holds a big output: grow it so each wake-up moves 1 MiB, not 64 KiB.
# Only then, since grown pipes count against the per-user pipe-buffer quota
# (/proc/sys/fs/pipe-user-pages-soft) and a run of small outputs needs none.
PIPE_FULL: Final = 64 * 1024
BIG_PIPE: Final = 1024 * 1024
_F_SETPIPE_SZ: Final = getattr(fcntl, "F_SETPIPE_SZ", None)


class _Scratch:
    """A 1 MiB read buffer, reused across reads so its pages stay warm."""

    __slots__ = ("data", "view")

    def __init__(self) -> None:
        self.data = bytearray(_READ_SIZE)
        self.view = memoryview(self.data)


# Scratch buffers not in use. A read takes one and gives it back (no await in between), so the
# pool holds about as many as threads read at once; past _MAX_SPARE the extras are let go, so
# 50 threads reading once do not pin 50 MiB for the life of the process.
_spare: list[_Scratch] = []
_MAX_SPARE: Final = 4


def _take_scratch() -> _Scratch:
    try:
        return _spare.pop()
    except IndexError:
        return _Scratch()


def _give_back(scratch: _Scratch) -> None:
    if len(_spare) < _MAX_SPARE:
        _spare.append(scratch)


# Capturing a big output straight into the memory of the result (#18). Past _RESERVE_AFTER bytes
# (without a limit) the buffer reserves address space for the rest: an io.BytesIO around
# bytes(n), which calloc maps without touching a page, so it costs no memory until written.
# Each read first touches one byte per page of the next 1 MiB (the page faults are taken here,
# while the child goes on writing) and then lands in that memory: no scratch copy, and the result
# is the reservation cut to size (getvalue() without a copy). Measured on 256 MiB from
# `head -c` (9 interleaved rounds): 0.46 of subprocess.run's time against 0.56 for reading into
# a scratch buffer and appending to a BytesIO, with the fresh-memory floor at 0.38. Reading into
# untouched memory without the touch was no faster (0.58-0.60): the faults were then taken
# inside the pipe read, under the pipe's lock, and the child waited.
_RESERVE_AFTER: Final = 4 * 1024 * 1024
_MIN_RESERVE: Final = 1024 * 1024 * 1024
_PAGE: Final = mmap.PAGESIZE
_TOUCH: Final = memoryview(bytes(_READ_SIZE // _PAGE + 1))
_reserve_ok: bool | None = None  # decided on first use; False once a reservation cost memory


def _reservations_possible() -> bool:
    """Whether address space can be reserved for free here (decided once per process).

    Only glibc's calloc is known to leave a large block untouched (not with MALLOC_PERTURB_),
    and under strict overcommit (mode 2) a reservation would take commit charge from the system.
    """
    global _reserve_ok
    if _reserve_ok is None:
        _reserve_ok = (
            sys.implementation.name == "cpython"
            and sys.maxsize > 2**32  # a 32-bit process has no gigabytes of address space to spare
            and sys.platform.startswith("linux")
            and platform.libc_ver()[0] == "glibc"
            and not os.environ.get("MALLOC_PERTURB_")
            and _overcommit_mode() != "2"
        )
    return _reserve_ok


def _overcommit_mode() -> str:
    try:
        with open("/proc/sys/vm/overcommit_memory") as file:
            return file.read().strip()
    except OSError:
        return "2"  # unknown: do not reserve


def _resident_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as file:
            return int(file.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return -1


def _reserve(size: int) -> io.BytesIO | None:
    """A BytesIO over ``size`` zero bytes that cost no memory yet, or None if that is not free."""
    global _reserve_ok
    if not _reservations_possible():
        return None
    before = _resident_bytes()
    try:
        reserved = io.BytesIO(bytes(size))  # the BytesIO holds the only reference: no copy
    except MemoryError:
        return None
    after = _resident_bytes()
    if before < 0 or after < 0 or after - before > size // 2:
        # The allocator wrote the block (a preloaded malloc, a debug setting): never again.
        _reserve_ok = False
        return None
    return reserved


def grow_pipe(fd: int) -> None:
    """Grow a pipe that arrived full to 1 MiB, so each wake-up moves more than 64 KiB."""
    if _F_SETPIPE_SZ is None:
        return
    # Over the per-user quota (/proc/sys/fs/pipe-user-pages-soft), or not a pipe: keep it.
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, _F_SETPIPE_SZ, BIG_PIPE)


class OutputBuffer:
    """What was read from one pipe; with ``limit``, only its tail.

    Reads go into a warm scratch buffer from a small shared pool, then into a
    :class:`io.BytesIO`, whose ``getvalue()`` hands over its internal buffer without a copy.
    Each byte lands in fresh memory once: on these VMs first-touch page faults cost more than
    the copies (profiled: growing a bytearray by ``extend`` took over half of a 64 MiB capture,
    and a final ``bytes`` copy most of the rest).

    Past ``limit`` bytes the buffer keeps reading (so the child never blocks on a full pipe) but
    keeps only the last ``limit`` bytes; :attr:`dropped` counts what was let go.

    Without a limit, an output past 4 MiB is read straight into reserved memory that becomes
    the result (see ``_reserve``); reads go back to the scratch path if the reservation is
    used up or cannot be had.
    """

    __slots__ = (
        "_data",
        "_grown",
        "_region",
        "_reserve_tried",
        "_touched",
        "dropped",
        "limit",
        "size",
    )

    def __init__(self, limit: int | None = None) -> None:
        if limit is not None and limit < 0:
            raise ValueError("limit must be >= 0")
        self._data = io.BytesIO()
        self.size = 0
        self.limit = limit
        self.dropped = 0
        self._grown = _F_SETPIPE_SZ is None
        self._region: memoryview | None = None  # the reserved memory, while reading into it
        self._touched = 0  # how far its pages have been touched
        self._reserve_tried = limit is not None

    def fill_from(self, fd: int) -> bool:
        """Read what ``fd`` (non-blocking) has now; return True at end of file."""
        scratch = _take_scratch()
        try:
            return self._fill(fd, scratch)
        finally:
            _give_back(scratch)

    def _fill(self, fd: int, scratch: _Scratch) -> bool:
        taken = 0
        while taken < _MAX_PER_FILL:
            if self._region is not None:
                return self._fill_region(fd, taken)
            try:
                n = os.readv(fd, [scratch.data])
            except BlockingIOError:
                return False
            if n == 0:
                return True
            self._data.write(scratch.view[:n])
            self.size += n
            taken += n
            if n >= PIPE_FULL and not self._grown:
                self._grown = True
                grow_pipe(fd)
            if self.limit is not None and self.size > 2 * self.limit + _READ_SIZE:
                self._keep_tail()
            if not self._reserve_tried and self.size >= _RESERVE_AFTER:
                self._start_region()
            if n < _READ_SIZE:
                return False  # a short read means the pipe is empty: skip the EAGAIN syscall
        return False

    def _start_region(self) -> None:
        self._reserve_tried = True
        reserved = _reserve(max(_MIN_RESERVE, 8 * self.size))
        if reserved is None:
            return
        region = reserved.getbuffer()
        with self._data.getbuffer() as kept:
            region[: self.size] = kept
        self._data, self._region = reserved, region
        self._touched = self.size

    def _fill_region(self, fd: int, taken: int) -> bool:
        region = self._region
        assert region is not None
        end = len(region)
        while taken < _MAX_PER_FILL:
            if end - self.size < _READ_SIZE:
                self._end_region()  # used up: the scratch path takes over
                return False
            if self._touched < self.size + _READ_SIZE:
                # Take the next chunk's page faults now, outside the read; only once per page:
                # a terminal hands over a few KiB per read, not the whole chunk.
                with region[self._touched : self.size + _READ_SIZE] as fresh:
                    stride = fresh[::_PAGE]
                    with _TOUCH[: len(stride)] as zeros:
                        stride[:] = zeros
                    stride.release()
                self._touched = self.size + _READ_SIZE
            with region[self.size : self.size + _READ_SIZE] as chunk:
                try:
                    n = os.readv(fd, [chunk])
                except BlockingIOError:
                    return False
            if n == 0:
                return True
            self.size += n
            taken += n
            if n < _READ_SIZE:
                return False
        return False

    def _end_region(self) -> None:
        """Stop reading into the reservation: cut it to what was read (no copy), append after."""
        region, self._region = self._region, None
        if region is None:
            return
        region.release()
        self._data.truncate(self.size)
        self._data.seek(self.size)

    def feed(self, data: bytes) -> None:
        """Add bytes read elsewhere (``print_output``'s tee), kept like bytes read here."""
        if not data:
            return
        self._end_region()
        self._data.write(data)
        self.size += len(data)
        if self.limit is not None and self.size > 2 * self.limit + _READ_SIZE:
            self._keep_tail()

    def _keep_tail(self) -> None:
        # Trimming only once the buffer holds twice the limit keeps the copying amortised O(1)
        # per byte while memory stays within a small multiple of the limit.
        assert self.limit is not None
        excess = self.size - self.limit
        with self._data.getbuffer() as view:
            tail = bytes(view[excess:])
        self._data = io.BytesIO()
        self._data.write(tail)
        self.size = self.limit
        self.dropped += excess

    def getvalue(self) -> bytes:
        """The bytes read so far (the last ``limit`` of them, with a limit)."""
        if self.limit is not None and self.size > self.limit:
            self._keep_tail()
        self._end_region()
        return self._data.getvalue()

    def decode(self, encoding: str = "utf-8", errors: str = "replace") -> str:
        """The bytes read so far, decoded once (no intermediate bytes copy)."""
        if self.limit is not None and self.size > self.limit:
            self._keep_tail()
        if self._region is not None:
            with self._region[: self.size] as read:
                return str(read, encoding, errors)
        with self._data.getbuffer() as view:
            return str(view, encoding, errors)


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
            except OSError as exc:  # a terminal whose child has let go of it: EIO
                if exc.errno != errno.EIO:
                    raise
                return True
        return True
