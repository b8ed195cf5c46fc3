"""The sinks of a long-running child's owner (:mod:`procfound.engine.owner`): where its stdout
waits for reads, and where its stderr tail is kept.

Neither reads a pipe itself: the read loop is :class:`~procfound.engine.echo.Echo`'s (with or
without a copy to our stdout or stderr), which feeds them. Tails are
:class:`~procfound.engine.buffers.OutputBuffer` with a limit, the engine's one tail keeper.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from procfound.engine.buffers import OutputBuffer

__all__ = ["STDERR_TAIL", "STDOUT_TAIL", "StderrKeeper", "StdoutBuffer", "tail_text"]

STDERR_TAIL: Final = 64 * 1024
# The last bytes of stdout kept for errors and reports, whether or not a read consumed them.
STDOUT_TAIL: Final = 64 * 1024
# How far past the cut :meth:`StdoutBuffer.keep_newest` looks for a line end.
_LINE_SEARCH: Final = 64 * 1024


def tail_text(tail: OutputBuffer, encoding: str, errors: str) -> str:
    """A tail as text; it is cut at any byte, so what does not decode is replaced."""
    try:
        return tail.decode(encoding, errors)
    except UnicodeError:
        return tail.decode(encoding, "replace")


class StderrKeeper:
    """Keeps the last 64 KiB of stderr fed to it, telling the owner of new bytes."""

    __slots__ = ("buffer", "notify", "size")

    def __init__(self, notify: Callable[[], None]) -> None:
        self.buffer = OutputBuffer(STDERR_TAIL)
        self.notify = notify
        self.size = 0  # bytes fed, as the session's Sink protocol counts them

    def feed(self, data: bytes) -> None:
        """Bytes read from stderr (``b""``: its end)."""
        self.buffer.feed(data)
        self.size += len(data)
        self.notify()


class StdoutBuffer:
    """Unread stdout, kept for the owner's read requests.

    ``tail`` is the last 64 KiB read, consumed or not (for errors and reports); ``dropped``
    counts unread bytes let go while a readiness probe waited (see :meth:`keep_newest`);
    ``read_size`` is the size of one read of the pipe (``ManagedProcess(bufsize=...)``).
    """

    __slots__ = ("changed", "data", "dropped", "eof", "read_size", "size", "tail")

    def __init__(self, changed: Callable[[], None], read_size: int) -> None:
        self.data = bytearray()
        self.tail = OutputBuffer(STDOUT_TAIL)
        self.eof = False
        self.size = 0
        self.dropped = 0
        self.read_size = read_size
        self.changed = changed

    def feed(self, chunk: bytes) -> None:
        """Keep ``chunk`` for the reads (``b""``: end of output)."""
        if chunk:
            self.data += chunk
            self.size += len(chunk)
            self.tail.feed(chunk)
        else:
            self.eof = True
        self.changed()

    def keep_newest(self, limit: int) -> None:
        """Let go of the oldest unread bytes beyond ``limit``, cutting after a line end when one
        is near, so the next line read starts at the beginning of a line."""
        excess = len(self.data) - limit
        if excess <= 0:
            return
        line_end = self.data.find(b"\n", excess, excess + _LINE_SEARCH)
        cut = excess if line_end < 0 else line_end + 1
        del self.data[:cut]
        self.dropped += cut
