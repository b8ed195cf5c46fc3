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

__all__ = ["Echo", "Feedable", "write_bytes"]

_READ_SIZE: Final = 1024 * 1024


class Feedable(Protocol):
    """A sink that can also take bytes read by someone else (``b""``: end of file)."""

    size: int

    def fill_from(self, fd: int) -> bool: ...

    def feed(self, data: bytes) -> None: ...


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
    """Reads a pipe, writes each chunk to ``sys.stdout``, and feeds it to ``inner``."""

    __slots__ = ("inner", "size")

    def __init__(self, inner: Feedable) -> None:
        self.inner = inner
        self.size = 0

    def fill_from(self, fd: int) -> bool:
        try:
            data = os.read(fd, _READ_SIZE)
        except BlockingIOError:
            return False
        if data:
            self.size += len(data)
            write_bytes(sys.stdout, data)
        self.inner.feed(data)
        return not data
