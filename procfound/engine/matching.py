"""PatternMatcher: has every expected part appeared in the output yet? Pure, tested without I/O.

The handshake rule is the seed's: every part must occur somewhere in everything read so far, in
any order. Each feed searches only the new text (plus an overlap as long as the longest part),
so a chatty child costs linear time, not quadratic.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable

__all__ = ["PatternMatcher"]


class PatternMatcher:
    """Watch decoded output for a set of substrings.

    Example:
        >>> matcher = PatternMatcher(["tcp|", "|grpc"])
        >>> matcher.feed(b"1|6|tcp|127.0.0.1:4242")
        False
        >>> matcher.feed(b"|grpc\\n")
        True
        >>> matcher.text
        '1|6|tcp|127.0.0.1:4242|grpc\\n'
    """

    __slots__ = ("_decoder", "_missing", "_overlap", "_parts", "_searched", "_text")

    def __init__(self, parts: Iterable[str], encoding: str = "utf-8") -> None:
        self._parts = list(parts)
        for part in self._parts:
            if not isinstance(part, str):
                raise TypeError("expected parts must be strings")
        self._missing = [part for part in self._parts if part]
        self._overlap = max((len(part) for part in self._parts), default=0)
        self._decoder = codecs.getincrementaldecoder(encoding)("replace")
        self._text: list[str] = []
        self._searched = ""  # the tail of the text already searched, kept for the overlap

    @property
    def matched(self) -> bool:
        """True once every part has appeared."""
        return not self._missing

    @property
    def text(self) -> str:
        """Everything fed so far, decoded."""
        return "".join(self._text)

    @property
    def missing(self) -> list[str]:
        """The parts not seen yet."""
        return list(self._missing)

    def feed(self, data: bytes, final: bool = False) -> bool:
        """Add output; return :attr:`matched`."""
        chunk = self._decoder.decode(data, final)
        if chunk:
            self._text.append(chunk)
            window = self._searched + chunk
            self._missing = [part for part in self._missing if part not in window]
            keep = self._overlap - 1
            self._searched = window[-keep:] if keep > 0 else ""
        return self.matched
