"""LineSplitter: bytes in, complete text lines out. Pure: no I/O, tested without processes.

Lines are cut at ``\\n``, ``\\r\\n`` and a lone ``\\r`` (universal newlines, as text-mode
``subprocess`` and the seed read them) and lose their ending. There is no length limit. Only
whole lines are decoded, in one call per batch, so a multi-byte character split across two
reads is decoded correctly: in UTF-8 (and every ASCII-compatible encoding) the bytes ``\\n``
and ``\\r`` never occur inside a character.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator
from typing import Final

# Bytes are split 64 KiB at a time, and each piece's lines are handed over before the next is
# split, so the bytes and the new strings are still in the CPU cache when they are read.
# Measured: splitting a 1 MiB read at once made streaming almost twice as slow.
_PIECE: Final = 64 * 1024

__all__ = ["CutLine", "LineSplitter", "UndecodableOutput", "line_end", "universal_newlines"]


def universal_newlines(text: str) -> str:
    """``text`` with ``\\r\\n`` and lone ``\\r`` line ends made ``\\n``, as text-mode subprocess
    output reads (``run``'s text and every line here).

    Example:
        >>> universal_newlines("a\\r\\nb\\rc\\n")
        'a\\nb\\nc\\n'
    """
    if "\r" not in text:  # one scan; the common case copies nothing
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n")


class UndecodableOutput(Exception):
    """A line did not decode (``errors="strict"``, or a handler that refuses a byte).

    ``lines`` are the complete lines before it, decoded (not delivered yet); ``rest`` the bytes
    from the start of the failing line to the end of what was fed; ``position`` the offset of
    the first undecodable byte in the whole stream.
    """

    def __init__(
        self, error: UnicodeError, lines: list[str], rest: bytes, position: int | None
    ) -> None:
        super().__init__(str(error))
        self.error, self.lines, self.rest, self.position = error, lines, rest, position


class CutLine(str):
    """A line longer than the splitter's ``max_line``: its first ``max_line`` bytes.

    It is a ``str`` like every other line; ``dropped`` says how many bytes were let go, so a
    cut is never silent.
    """

    dropped: int

    def __new__(cls, text: str, dropped: int) -> CutLine:
        line = super().__new__(cls, text)
        line.dropped = dropped
        return line


class LineSplitter:
    """Split a byte stream into text lines.

    With ``max_line``, a longer line is cut to its first ``max_line`` bytes (at a character
    boundary) and delivered as a :class:`CutLine`; the rest of it is read and let go, so memory
    stays bounded however long the line is.

    Example:
        >>> splitter = LineSplitter()
        >>> splitter.feed(b"one\\r\\ntw")
        ['one']
        >>> splitter.feed(b"o\\n\\nthree")
        ['two', '']
        >>> splitter.feed(b"\\rfour\\rfive\\r")
        ['three', 'four', 'five']
        >>> splitter.feed(b"\\nsix\\n")
        ['six']
    """

    __slots__ = (
        "_encoding",
        "_errors",
        "_max",
        "_pending",
        "_pending_dropped",
        "_skip_lf",
        "size",
    )

    def __init__(
        self, encoding: str = "utf-8", errors: str = "replace", max_line: int | None = None
    ) -> None:
        if codecs.lookup(encoding).encode("\n")[0] != b"\n":
            raise ValueError(f"line splitting needs an ASCII-compatible encoding, not {encoding}")
        self._encoding = encoding
        self._errors = errors
        self._pending = bytearray()  # the start of a line whose end has not arrived yet
        self.size = 0  # bytes seen so far
        self._max = max_line
        self._pending_dropped = 0  # bytes of the pending line let go past max_line
        # The last byte split was a "\\r": its line was delivered at once (a progress bar's
        # update must not wait), and a "\\n" that starts the next bytes is its other half.
        self._skip_lf = False

    def feed(self, data: bytes) -> list[str]:
        """Add bytes; return the lines they complete."""
        return self._split(data, memoryview(data), 0, len(data))

    def split_chunks(self, chunks: Iterable[bytes]) -> Iterator[list[str]]:
        """Feed each chunk, 64 KiB at a time; yield each piece's lines (never an empty list)."""
        pieces = iter(chunks)
        for chunk in pieces:
            view = memoryview(chunk)
            for start in range(0, len(chunk), _PIECE):
                stop = min(start + _PIECE, len(chunk))
                try:
                    lines = self._split(chunk, view, start, stop)
                except UndecodableOutput as exc:
                    exc.rest += chunk[stop:] + b"".join(pieces)  # all that was not delivered
                    raise
                if lines:
                    yield lines

    def _split(self, data: bytes, view: memoryview, start: int, stop: int) -> list[str]:
        # data[start:stop] is new (view is a view of data). Decoding straight from the view
        # copies the bytes once, into the str.
        self.size += stop - start
        if self._skip_lf and start < stop:
            self._skip_lf = False
            if data[start] == 0x0A:
                start += 1
        if self._max is not None:
            return self._feed_capped(bytes(view[start:stop]))
        end = data.rfind(b"\n", start, stop)
        # A lone "\r" after the last "\n" ends a line too; only that short tail is searched.
        cr = data.rfind(b"\r", end + 1 if end >= 0 else start, stop)
        if cr > end:
            end = cr
            self._skip_lf = cr == stop - 1
        if end < 0:
            self._pending += view[start:stop]
            return []
        try:
            if self._pending:
                self._pending += view[start : end + 1]
                text = self._pending.decode(self._encoding, self._errors)
                self._pending = bytearray(view[end + 1 : stop])
            else:
                text = str(view[start : end + 1], self._encoding, self._errors)
                if end + 1 < stop:
                    self._pending += view[end + 1 : stop]
        except UnicodeError as exc:
            block = bytes(self._pending) if self._pending else bytes(view[start : end + 1])
            # Where the block starts in the stream: the bytes counted so far, less what of
            # this feed is not in the block, less the pending start of its first line.
            offset = self.size - (stop - end - 1) - len(block)
            raise self._undecodable(exc, block, bytes(view[end + 1 : stop]), offset) from exc
        lines = universal_newlines(text).split("\n")
        lines.pop()  # the block ends with a line end: the last piece is always empty
        return lines

    def _undecodable(
        self, error: UnicodeError, block: bytes, after: bytes, offset: int | None
    ) -> UndecodableOutput:
        """The error for ``block`` (whole lines) that did not decode: the lines before the one
        that failed are decoded (they can be: the codec is ASCII-compatible and stateless)."""
        bad = error.start if isinstance(error, UnicodeDecodeError) else 0
        cut = max(block.rfind(b"\n", 0, bad), block.rfind(b"\r", 0, bad)) + 1
        lines: list[str] = []
        if cut:
            lines = universal_newlines(block[:cut].decode(self._encoding, self._errors)).split("\n")
            lines.pop()
        position = None if offset is None else offset + bad
        return UndecodableOutput(error, lines, block[cut:] + after, position)

    def _decode_line(self, raw: bytes | bytearray, errors: str, ends_at: int) -> str:
        """One line whose bytes end at stream offset ``ends_at``, decoded."""
        try:
            return raw.decode(self._encoding, errors)
        except UnicodeError as exc:
            start = exc.start if isinstance(exc, UnicodeDecodeError) else 0
            raise UndecodableOutput(exc, [], bytes(raw), ends_at - len(raw) + start) from exc

    def _feed_capped(self, data: bytes) -> list[str]:
        # Line by line, so that no line ever holds more than max_line bytes in memory.
        assert self._max is not None
        lines: list[str] = []
        start = 0
        base = self.size - len(data)  # the stream offset of data[0]
        while True:
            end = line_end(data, start)
            piece = data[start:] if end < 0 else data[start:end]
            room = max(self._max - len(self._pending), 0)
            if len(piece) > room:
                self._pending_dropped += len(piece) - room
                piece = piece[:room]
            self._pending += piece
            if end < 0:
                return lines
            try:
                lines.append(self._finish_line(base + end))
            except UndecodableOutput as exc:
                exc.lines = lines
                exc.rest += data[end:]
                raise
            start = end + 1
            if data[end] == 0x0D:  # "\r": a "\n" right after it is part of the same line end
                if start == len(data):
                    self._skip_lf = True
                elif data[start] == 0x0A:
                    start += 1

    def _finish_line(self, ends_at: int) -> str:
        raw, dropped = self._pending, self._pending_dropped
        self._pending, self._pending_dropped = bytearray(), 0
        # "ignore" at the cut: a character split by the cap is dropped whole, not replaced.
        text = self._decode_line(raw, "ignore" if dropped else self._errors, ends_at)
        if not dropped:
            return text
        # Bytes of a character split by the cap were kept but could not be decoded: count them.
        dropped += len(raw) - len(text.encode(self._encoding))
        return CutLine(text, dropped)

    def close(self) -> list[str]:
        """End of stream: return the last line if it had no newline (as a one-line list)."""
        if not self._pending and not self._pending_dropped:
            return []
        if self._max is not None:
            return [self._finish_line(self.size)]
        offset = self.size - len(self._pending)
        try:
            text = self._pending.decode(self._encoding, self._errors)
        except UnicodeError as exc:
            raise self._undecodable(exc, bytes(self._pending), b"", offset) from exc
        self._pending = bytearray()
        return [text]


def line_end(data: bytes | bytearray, start: int = 0, stop: int | None = None) -> int:
    """The index of the first ``"\\n"`` or ``"\\r"`` in ``data[start:stop]``, or -1.

    The one universal-newline line-end search: the splitter's capped lines and the reads of a
    ManagedProcess's owner both use it.

    Example:
        >>> line_end(b"ab\\rc\\n"), line_end(b"abc\\n", 0, 2)
        (2, -1)
    """
    end = len(data) if stop is None else stop
    newline = data.find(b"\n", start, end)
    cr = data.find(b"\r", start, newline if newline >= 0 else end)
    return cr if cr >= 0 else newline
