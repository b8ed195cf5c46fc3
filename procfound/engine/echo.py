"""``print_output``: a sink that copies what it reads to our stdout, then hands it on (a tee).

The bytes go to whatever ``sys.stdout`` is at the moment of the write (so pytest's capture and a
redirected stdout see them), in the order they were read; the wrapped sink keeps or streams
them exactly as it would without the echo.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Final, Protocol, TextIO

__all__ = ["Echo", "Fed", "Feedable", "write_bytes"]

_READ_SIZE: Final = 1024 * 1024


class Fed(Protocol):
    """What takes the bytes an :class:`Echo` read (``b""``: end of file)."""

    def feed(self, data: bytes) -> None: ...


class Feedable(Fed, Protocol):
    """A sink that can also take bytes read by someone else (``b""``: end of file)."""

    size: int

    def fill_from(self, fd: int) -> bool: ...


def write_bytes(stream: TextIO | None, data: bytes) -> None:
    """Write ``data`` to a text stream as it is (through its binary buffer where it has one).

    A closed or broken stream must not break the child's session: errors are swallowed.
    """
    if stream is None:
        return
    with contextlib.suppress(Exception):
        buffer = getattr(stream, "buffer", None)
        if buffer is not None:
            stream.flush()  # what was printed before goes first
            buffer.write(data)
            buffer.flush()
        else:
            stream.write(data.decode(getattr(stream, "encoding", None) or "utf-8", "replace"))
            stream.flush()


class Echo:
    """Reads a pipe, writes each chunk to ``sys.stdout`` (or ``sys.stderr``), feeds it to ``inner``.

    ``stream`` names the stream the chunks are copied to, looked up at each write; None copies
    them nowhere, which makes this the plain read loop of a sink that only takes fed bytes (a
    ManagedProcess's stdout). ``read_size`` bounds one read.
    """

    __slots__ = ("inner", "read_size", "size", "stream")

    def __init__(
        self, inner: Fed, stream: str | None = "stdout", read_size: int = _READ_SIZE
    ) -> None:
        self.inner = inner
        self.size = 0
        self.stream = stream
        self.read_size = read_size

    def fill_from(self, fd: int) -> bool:
        try:
            data = os.read(fd, self.read_size)
        except BlockingIOError:
            return False
        if data:
            self.size += len(data)
            if self.stream is not None:
                write_bytes(getattr(sys, self.stream), data)
        self.inner.feed(data)
        return not data
