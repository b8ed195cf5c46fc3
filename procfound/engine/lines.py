"""LineSplitter: bytes in, complete text lines out. Pure: no I/O, tested without processes.

Lines are cut at ``\\n`` and lose their ``\\n`` or ``\\r\\n`` ending; a lone ``\\r`` stays part of
the line. There is no length limit. Only whole lines are decoded, in one call per batch, so a
multi-byte character split across two reads is decoded correctly: in UTF-8 (and every
ASCII-compatible encoding) the byte ``\\n`` never occurs inside a character.
"""

from __future__ import annotations

import codecs
import os
from typing import Final

__all__ = ["LineSplitter"]

_READ_SIZE: Final = 256 * 1024


class LineSplitter:
    """Split a byte stream into text lines.

    Example:
        >>> splitter = LineSplitter()
        >>> splitter.feed(b"one\\r\\ntw")
        ['one']
        >>> splitter.feed(b"o\\n\\nthree")
        ['two', '']
        >>> splitter.close()
        ['three']
    """

    __slots__ = ("_encoding", "_errors", "_pending", "ready", "size")

    def __init__(self, encoding: str = "utf-8", errors: str = "replace") -> None:
        if codecs.lookup(encoding).encode("\n")[0] != b"\n":
            raise ValueError(f"line splitting needs an ASCII-compatible encoding, not {encoding}")
        self._encoding = encoding
        self._errors = errors
        self._pending = bytearray()  # the start of a line whose end has not arrived yet
        self.ready: list[str] = []  # lines split by fill_from, not yet taken
        self.size = 0  # bytes seen so far

    def feed(self, data: bytes) -> list[str]:
        """Add bytes; return the lines they complete."""
        self.size += len(data)
        end = data.rfind(b"\n")
        if end < 0:
            self._pending += data
            return []
        if self._pending:
            self._pending += data[: end + 1]
            block: bytes | bytearray = self._pending
            self._pending = bytearray(data[end + 1 :])
        else:
            block = data[: end + 1] if end + 1 < len(data) else data
            if end + 1 < len(data):
                self._pending += data[end + 1 :]
        text = block.decode(self._encoding, self._errors)
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        lines = text.split("\n")
        lines.pop()  # the block ends with "\n": the last piece is always empty
        return lines

    def close(self) -> list[str]:
        """End of stream: return the last line if it had no newline (as a one-line list)."""
        if not self._pending:
            return []
        text = self._pending.decode(self._encoding, self._errors)
        self._pending = bytearray()
        if text.endswith("\r"):
            text = text[:-1]
        return [text]

    def fill_from(self, fd: int) -> bool:
        """Read what ``fd`` (non-blocking) has now into :attr:`ready`; True at end of file."""
        try:
            data = os.read(fd, _READ_SIZE)
        except BlockingIOError:
            return False
        if not data:
            self.ready += self.close()
            return True
        self.ready += self.feed(data)
        return False

    def take(self) -> list[str]:
        """The lines split so far, handed over once."""
        lines, self.ready = self.ready, []
        return lines
