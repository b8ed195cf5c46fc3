"""``print_output``: a sink that copies what it reads to our stdout, then hands it on (a tee).

The bytes go to whatever ``sys.stdout`` is at the moment of the write (so pytest's capture and a
redirected stdout see them), in the order they were read; the wrapped sink keeps or streams
them exactly as it would without the echo.
"""

from __future__ import annotations

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


def write_bytes(stream: TextIO | None, data: bytes, *, relay: bool = False) -> None:
    """Write ``data`` to a text stream as it is (through its binary buffer where it has one).

    A closed or broken stream must not break the child's session: errors are swallowed, except
    a ``BrokenPipeError`` when ``relay`` (see :class:`Echo`).
    """
    if stream is None:
        return
    try:
        buffer = getattr(stream, "buffer", None)
        if buffer is not None:
            stream.flush()  # what was printed before goes first
            buffer.write(data)
            buffer.flush()
        else:
            stream.write(data.decode(getattr(stream, "encoding", None) or "utf-8", "replace"))
            stream.flush()
    except BrokenPipeError:
        if relay:
            raise
    except Exception:  # a broken stream must not break the session (see above)
        pass


class Echo:
    """Reads a pipe, writes each chunk to ``sys.stdout`` (or ``sys.stderr``), feeds it to ``inner``.

    ``stream`` names the stream the chunks are copied to, looked up at each write; None copies
    them nowhere, which makes this the plain read loop of a sink that only takes fed bytes (a
    ManagedProcess's stdout). ``read_size`` bounds one read.

    ``relay``: the copy is the only way the output is seen (a terminal's output shown as it
    comes, ``pty=True`` without capture), as if the child wrote to our stdout itself. Once that
    is gone (``| head -1``), a child writing to a pipe would get ``EPIPE``/``SIGPIPE``; one
    writing to a terminal never does and would run on unseen. So the ``BrokenPipeError``
    is raised from the read, and the call stops the tree, as it does for any error.
    """

    __slots__ = ("inner", "read_size", "relay", "size", "stream")

    def __init__(
        self,
        inner: Fed,
        stream: str | None = "stdout",
        read_size: int = _READ_SIZE,
        *,
        relay: bool = False,
    ) -> None:
        self.inner = inner
        self.size = 0
        self.stream = stream
        self.read_size = read_size
        self.relay = relay

    def fill_from(self, fd: int) -> bool:
        try:
            data = os.read(fd, self.read_size)
        except BlockingIOError:
            return False
        if data:
            self.size += len(data)
            if self.stream is not None:
                write_bytes(getattr(sys, self.stream), data, relay=self.relay)
        self.inner.feed(data)
        return not data
