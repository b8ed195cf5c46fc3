"""Talking to a long-running child: ``expect`` on its owner's stdout buffer, writes to its stdin.

A :class:`Talk` belongs to one :class:`~procfound.engine.owner.ChildOwner` and runs, like it, in
the portal loop; it is the owner's companion, and works on the owner's buffer with the owner's
own buffer steps (the unread offset, the wait for more output, the pacing after a read).
``expect`` reads the owner's one stdout buffer through a
:class:`~procfound.engine.expect.DecodedWindow`, so it shares that buffer with the line,
character and handshake reads: what one consumes the next does not see, and an expect that times
out or meets the end of the output consumes nothing. Writes go through a
:class:`~procfound.engine.stdin.StdinWriter`, whose waits for room hold up only the request that
writes.

The engine words no user-facing error: what goes wrong is told by the exceptions below, which
the launching layer turns into its own (with the command, the return code and the tails).
"""

from __future__ import annotations

import contextlib

import anyio

from procfound.engine.expect import DecodedWindow, ExpectMatch, Patterns
from procfound.engine.owner import ChildOwner
from procfound.engine.stdin import StdinClosedError, StdinWriter, WriteProgress

__all__ = ["ExpectEnded", "ExpectTimedOut", "Talk", "WriteTimedOut"]


class ExpectTimedOut(Exception):
    """No pattern matched in time; nothing was consumed (``text``: the unread output)."""

    def __init__(self, text: str) -> None:
        super().__init__("no pattern matched in time")
        self.text = text


class ExpectEnded(Exception):
    """The output ended before a pattern matched; nothing was consumed (``text``: unread)."""

    def __init__(self, text: str) -> None:
        super().__init__("the output ended before a pattern matched")
        self.text = text


class WriteTimedOut(Exception):
    """A write did not finish in time; ``written`` of its bytes went in."""

    def __init__(self, written: int) -> None:
        super().__init__(f"{written} bytes were written before the timeout")
        self.written = written


class Talk:
    """The conversation side of a :class:`~procfound.engine.owner.ChildOwner`.

    Args:
        owner: The child's owner (its stdout buffer and its notifications).
        writer: Our end of the child's stdin, or None when it has none to write to.
    """

    __slots__ = ("_owner", "_window", "writer")

    def __init__(self, owner: ChildOwner, writer: StdinWriter | None) -> None:
        self._owner = owner
        self._window = DecodedWindow(owner.encoding, owner.decode_errors)
        self.writer = writer
        if writer is not None:
            owner.at_finish.append(writer.abort)  # the child is gone: its stdin goes too

    async def expect(self, patterns: Patterns, seconds: float | None) -> ExpectMatch:
        """Read until one of ``patterns`` matches the unread output; consume through the match.

        Raises:
            ExpectTimedOut: Nothing matched within ``seconds``.
            ExpectEnded: The output ended first.
            Exception: The owner's undecodable error (``errors="strict"`` and a bad byte before
                any match: the bytes through it are consumed), or its idle-timeout error.
        """
        owner = self._owner
        window = self._window
        buffer = owner.stdout.data
        start = -1
        # Read on past the high-water mark while waiting (the pattern may come later), but as a
        # probe does: the oldest unread bytes beyond it let go, so a chatty child (`yes`) cannot
        # grow the buffer by a GiB a second while no pattern matches.
        with anyio.move_on_after(seconds), owner.probing():
            while True:
                owner._drop_skipped_lf()
                ended = owner.output_ended
                if owner._offset() != start:  # first, or another read consumed the front
                    start = owner._offset()
                    patterns.restart()
                text = window.update(buffer, start, final=ended)
                found = patterns.search(text)
                if found is not None:
                    index, match = found
                    del buffer[: window.consume(match.end(), buffer)]
                    owner._consumed()
                    return ExpectMatch(index, match, text[: match.start()])
                del text  # the window's text is then grown in place as output arrives
                if window.bad_bytes is not None:
                    await self._undecodable(window.bad_bytes)
                if ended:
                    if owner.idled is not None:
                        await owner._raise_idle()
                    raise ExpectEnded(window.text)
                await owner._more_output()
        raise ExpectTimedOut(window.text)

    async def _undecodable(self, through: int) -> None:
        """Consume the output through an undecodable sequence and raise the owner's error."""
        owner = self._owner
        buffer = owner.stdout.data
        offset = owner._offset()
        taken = bytes(buffer[:through])
        del buffer[:through]
        owner._consumed()
        try:
            taken.decode(owner.encoding, owner.decode_errors)
        except UnicodeError as exc:
            raise owner._undecodable(exc, taken, offset) from exc

    async def write(self, data: bytes, seconds: float | None) -> None:
        """Write all of ``data`` to the child's stdin within ``seconds``.

        Raises:
            StdinClosedError: The child exited or closed its stdin (``by_us=False``), or it
                was closed here (``by_us=True``).
            WriteTimedOut: Not all of it went in within ``seconds``.
        """
        writer = self.writer
        assert writer is not None, "the launching layer checks for a stdin first"
        if self._owner.exited.is_set() and not writer.closed:
            raise StdinClosedError(by_us=False)
        progress = WriteProgress()
        # While the write waits for room, the child's output is read on past the high-water
        # mark (the oldest unread bytes beyond it let go, as for a probe): a child that answers
        # as it reads (`cat`) would otherwise block on its full stdout, stop reading its stdin,
        # and the write would wait for it until its timeout.
        with anyio.move_on_after(seconds) as scope, self._owner.probing():
            await writer.write(data, progress)
        if scope.cancelled_caught:
            raise WriteTimedOut(progress.written)

    async def close_stdin(self) -> None:
        """End of file for the child (after the writes asked for before). Safe twice."""
        if self.writer is not None:
            # A terminal whose child is gone cannot take the end-of-file character: its input
            # has ended already.
            with contextlib.suppress(StdinClosedError):
                await self.writer.close()
