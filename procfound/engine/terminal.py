"""A pseudo-terminal for one child (``pty=True``): opening it, its size, its end of input, and
reading its output.

The child's stdin, stdout and stderr are the terminal's slave side; we keep the master side.
:func:`open_terminal` makes the pair with the size set (``TIOCSWINSZ``) and echo off before the
child exists, so neither a first prompt nor ``input=`` races the settings. The spawn
(``engine/spawn.py``) makes the child a session leader whose controlling terminal the slave is.

The master is one fd for both directions, so the session holds two: the master itself, read as
the child's stdout (stdout and stderr merged, as on a terminal), and a duplicate it writes the
input to; each is registered with the session's readiness set on its own, so large input and
large output move concurrently and never deadlock.

Two things differ from a pipe, and this module hides both:

* **End of output** is ``EIO`` on a read once every slave fd is closed (Linux), not a read of
  0 bytes. Linux hands over what the child wrote before it closed the terminal first, so an
  EIO comes only after the last byte. :class:`TerminalOutput` turns it into the end of file
  the sinks know.
* **End of input** is not a close: the terminal's ``VEOF`` character (``^D``) makes the child's
  ``read`` return what is pending; at the start of a line it returns 0 bytes, which is end of
  file. So :func:`end_of_input` is ``VEOF`` once after a complete line, twice after a partial
  one (the first only hands over the partial line).

A terminal hands over at most a few KiB per read (its line discipline's buffer), where a pipe
hands over up to a MiB: :class:`TerminalOutput` keeps reading while more arrives within a
moment, so a fast writer costs one trip through the event loop per many reads, not per read.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import select
import struct
import sys
import time
from typing import Final, Protocol

from procfound.engine.spawn_errors import SpawnError

__all__ = [
    "DEFAULT_SIZE",
    "HAS_TERMINALS",
    "NO_TERMINALS",
    "TerminalOutput",
    "canonical",
    "end_of_input",
    "hand_over_long_lines",
    "line_cuts",
    "open_child_terminal",
    "open_terminal",
    "set_size",
]

# A terminal's usual size (rows, columns): what a child sees unless pty_size= says otherwise.
DEFAULT_SIZE: Final = (24, 80)
# Where procfound gives a child a terminal: Linux, where it is tested. macOS has pseudo-terminals,
# but the engine waits there with poll(), which macOS documents as not supporting devices: a
# terminal's master could not be waited on, so pty=True is refused there (PlatformError)
# rather than left to spin.
HAS_TERMINALS: Final = hasattr(os, "openpty") and sys.platform.startswith("linux")
# What the refusal says.
NO_TERMINALS: Final = (
    f"pty=True is supported on Linux only ({sys.platform} is not: on macOS the engine's poll() "
    "cannot wait on a terminal)"
)

_NEWLINES: Final = (b"\n", b"\r")
_LINE_END: Final = re.compile(rb"[\r\n]")
# The most characters of a line not ended yet that a terminal in canonical mode holds: Linux
# keeps 4095 (N_TTY_BUF_SIZE - 1) and drops the rest without a word until a line end comes.
# Longer runs of input are handed over in pieces of this size with the end-of-file character
# (which, in the middle of a line, hands what is pending to the reader and is not itself read),
# so nothing written is lost. Kept below the kernel's limit.
LINE_LIMIT: Final = 4000
# After a full read, how long to wait for the next piece before going back to the event loop,
# and how long one fill may keep the loop at most (a terminal delivers its output a few KiB at
# a time; each piece is handed over by a kernel worker a moment after a read, so the wait
# usually ends at once). Measured on 64 MiB from `head -c` (CPU time of the reading process,
# the machine loaded): no wait 458 ms, 50 us 343 ms, 1 ms 299 ms, a blocking read loop with no
# event loop 308 ms.
_MORE_WAIT: Final = 1e-3
_FILL_BUDGET: Final = 0.005
# A read this large found the terminal's buffer (about 4 KiB) full: more is likely on its way.
# A smaller one (a prompt, a line) is all there is for now: no wait.
_FULL_READ: Final = 2048


class _Sink(Protocol):
    size: int

    def fill_from(self, fd: int) -> bool: ...


def open_terminal(rows: int, cols: int) -> tuple[int, int]:
    """A new pseudo-terminal: ``(master, slave)``, ``rows`` x ``cols``, echo off.

    Both fds are close-on-exec; the master is non-blocking (ours), the slave blocking (the
    child's stdin, stdout and stderr).
    """
    import termios

    master, slave = os.openpty()
    try:
        set_size(master, rows, cols)
        attrs = termios.tcgetattr(slave)
        # Echo off: what is written to the child (input=, write()) is not read back as its
        # output. Everything else as a terminal starts: canonical input, ONLCR output.
        attrs[3] &= ~(termios.ECHO | termios.ECHONL)
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        fcntl.fcntl(master, fcntl.F_SETFL, os.O_NONBLOCK)
    except BaseException:
        os.close(master)
        os.close(slave)
        raise
    return master, slave


def open_child_terminal(rows: int, cols: int) -> tuple[int, int, int, str]:
    """The terminal a spawn gives a child: ``(master, writer, slave, slave's path)``.

    The slave becomes the child's 0, 1 and 2; the master is read (the child's output) and
    ``writer``, a duplicate of it, written (its input), each in the readiness set on its own.

    Raises:
        PlatformError: No pseudo-terminals here.
        SpawnError: None could be opened (out of fds, or of terminals: ``kernel.pty.max``).
    """
    if not HAS_TERMINALS:
        from procfound.errors import PlatformError

        raise PlatformError(NO_TERMINALS, code="PLATFORM_NOT_SUPPORTED")
    opened: list[int] = []
    try:
        master, slave = open_terminal(rows, cols)
        opened += [master, slave]
        writer = os.dup(master)  # close-on-exec, and non-blocking: the same open file
        opened.append(writer)
        return master, writer, slave, os.ttyname(slave)
    except BaseException as exc:
        for fd in opened:
            os.close(fd)
        if isinstance(exc, OSError):
            raise SpawnError(
                f"cannot open a pseudo-terminal: {exc.strerror or exc}", errno_=exc.errno
            ) from exc
        raise


def set_size(fd: int, rows: int, cols: int) -> None:
    """Set the terminal's size (``TIOCSWINSZ`` on either side); the kernel sends SIGWINCH to
    its foreground process group when the size changes."""
    import termios

    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def end_of_input(fd: int, written: bytes) -> bytes:
    """The bytes that end the child's input after ``written`` (what was written last; ``b""``
    when nothing was): the terminal's ``VEOF`` character, twice unless ``written`` ended a line.

    Read from the terminal's settings now (the child may have changed them); ``^D`` if they
    cannot be read.
    """
    import termios

    try:
        char = termios.tcgetattr(fd)[6][termios.VEOF]
    except (termios.error, OSError):
        char = b"\x04"
    # A number where the terminal is in raw mode (the slot is shared with VMIN on some systems)
    eof = bytes([char]) if isinstance(char, int) else bytes(char)
    if not written or written.endswith(_NEWLINES):
        return eof
    return eof + eof


def line_cuts(data: bytes, pending: int, limit: int = LINE_LIMIT) -> tuple[list[int], int]:
    """Where in ``data`` the end-of-file character must go so that no line holds more than
    ``limit`` characters not yet handed over (``pending``: those of the line before ``data``);
    and how many are pending after ``data``.

    Example:
        >>> line_cuts(b"abcdefg\nxy", 0, limit=3)
        ([3, 6], 2)
    """
    cuts: list[int] = []
    pos, size = 0, len(data)
    while pos < size:
        found = _LINE_END.search(data, pos)
        end = size if found is None else found.start()
        while pending + end - pos > limit:
            pos += limit - pending
            cuts.append(pos)
            pending = 0
        if found is None:
            return cuts, pending + size - pos
        pos, pending = end + 1, 0
    return cuts, pending


def hand_over_long_lines(fd: int, data: bytes) -> bytes:
    """``data`` as written to a terminal (``input=``): with the end-of-file character where a
    line runs longer than the terminal holds (see :data:`LINE_LIMIT`); as it is when there is no
    such line or the terminal is not in canonical mode."""
    cuts, _ = line_cuts(data, 0)
    if not cuts or not canonical(fd):
        return data
    eof = end_of_input(fd, b"\n")
    pieces = [data[start:end] for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    return eof.join(pieces)


def canonical(fd: int) -> bool:
    """True if the terminal reads input a line at a time (``ICANON``; unknown: False)."""
    import termios

    try:
        return bool(termios.tcgetattr(fd)[3] & termios.ICANON)
    except (termios.error, OSError):
        return False


class TerminalOutput:
    """The sink for a terminal's master: reads into ``sink``; EIO is the end of file.

    The sinks know the end of file as a read that returns 0 bytes: at EIO, ``sink`` is shown
    exactly that (a read of ``/dev/null``), so each ends as it would on a pipe (an echo writes
    its last line, a line splitter keeps its last partial line).
    """

    __slots__ = ("sink", "size")

    def __init__(self, sink: _Sink) -> None:
        self.sink = sink
        self.size = sink.size  # bytes read so far

    def fill_from(self, fd: int) -> bool:
        """Read what the terminal has now (and what follows within a moment); True at the end."""
        try:
            return self._fill(fd)
        finally:
            self.size = self.sink.size

    def _fill(self, fd: int) -> bool:
        sink = self.sink
        give_up = 0.0
        while True:
            before = sink.size
            try:
                if sink.fill_from(fd):
                    return True
            except OSError as exc:
                if exc.errno != errno.EIO:
                    raise
                return _show_end(sink)
            moved = sink.size - before
            if moved < _FULL_READ:
                return False  # nothing there now (EAGAIN), or all there was
            now = time.monotonic()
            if not give_up:
                give_up = now + _FILL_BUDGET
            elif now >= give_up:
                return False  # let the event loop run; the rest comes at the next wake-up
            # More output usually follows at once; a short wait here saves a trip through the
            # event loop for each few KiB.
            with contextlib.suppress(OSError, ValueError):
                if not select.select((fd,), (), (), _MORE_WAIT)[0]:
                    return False


def _show_end(sink: _Sink) -> bool:
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    try:
        sink.fill_from(null)
    finally:
        os.close(null)
    return True
