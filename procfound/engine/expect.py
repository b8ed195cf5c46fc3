"""Expect: the first of several patterns in a child's decoded output. Pure: no I/O.

:class:`DecodedWindow` keeps the text of the unread output in step with the owner's byte
buffer, which the line and character reads consume too: the window is decoded incrementally
(a character split across reads waits for its last byte), as written (no newline
translation), and notices by the buffer's stream offset when another read consumed from the
front, so one buffer serves every kind of read. :func:`earliest` picks the match among the
patterns (checked and compiled by the layer that takes them from the user).

**The matching rule** (pexpect's): the unread text is searched each time output arrives, and a
pattern matches as soon as it matches the text there is. So ``a+`` matches the first ``a`` of
``aaa`` if that ``a`` arrived alone, and a pattern that can match the empty string matches at
once, before anything is read. Of several patterns the match that starts earliest wins; on a
tie the pattern given first.
"""

from __future__ import annotations

import codecs
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, final

__all__ = ["DecodedWindow", "ExpectMatch", "earliest"]

# Error handlers under which encoding the decoded text gives back the very bytes read, so a
# match's end maps to a byte offset without decoding again.
_ROUND_TRIP: Final = frozenset({"strict", "surrogateescape", "surrogatepass"})


@final
@dataclass(frozen=True)
class ExpectMatch:
    """What :meth:`~procfound.ManagedProcess.expect` found.

    Attributes:
        index: The position of the pattern that matched in the list given (0 for one pattern).
        match: The :class:`re.Match` (a literal was matched as ``re.escape`` of it);
            ``match.group()`` is the matched text.
        before: The output consumed before the match, as written (no newline translation).

    Example:
        >>> import re
        >>> m = ExpectMatch(0, re.search("x", "abx"), "ab")
        >>> m.before, m.match.group()
        ('ab', 'x')
    """

    index: int
    match: re.Match[str]
    before: str


def earliest(patterns: Sequence[re.Pattern[str]], text: str) -> tuple[int, re.Match[str]] | None:
    """The match that starts first in ``text`` and its pattern's index (ties: lowest index).

    Example:
        >>> index, match = earliest([re.compile("b"), re.compile("a|b")], "xab")
        >>> index, match.start()
        (1, 1)
    """
    best: tuple[int, re.Match[str]] | None = None
    for index, pattern in enumerate(patterns):
        found = pattern.search(text)
        if found is not None and (best is None or found.start() < best[1].start()):
            best = (index, found)
    return best


class DecodedWindow:
    """The decoded text of an unread byte buffer, kept in step as bytes arrive and go.

    The owner passes its buffer and the stream offset of the buffer's first byte to
    :meth:`update`. Bytes appended since the last call are decoded; bytes consumed from the
    front by another read (the offset moved) make the window start again from the new front.
    ``text`` holds only whole characters: the bytes of a character not complete yet stay
    undecoded until the rest arrives (or the output ends: then ``final``).

    With ``errors="strict"`` an undecodable byte stops the decoding: ``text`` ends before it,
    and :attr:`bad_bytes` says how many bytes of the buffer, from the front, run through the
    bad sequence (the owner raises its DecodeError if no pattern matches before it).

    Example:
        >>> window = DecodedWindow("utf-8", "strict")
        >>> buffer = bytearray("é>".encode()[:1])
        >>> window.update(buffer, 0)
        ''
        >>> buffer += "é>".encode()[1:]
        >>> window.update(buffer, 0)
        'é>'
        >>> taken = window.consume(1, buffer)
        >>> del buffer[:taken]
        >>> taken, window.update(buffer, taken)
        (2, '>')
    """

    __slots__ = (
        "_encoding",
        "_errors",
        "_nbytes",
        "_segments",
        "_start",
        "bad_bytes",
        "error",
        "text",
    )

    def __init__(self, encoding: str, errors: str) -> None:
        self._encoding = encoding
        self._errors = errors
        self._start = -1  # the stream offset of the buffer's front the text starts at
        self._nbytes = 0  # bytes of the buffer decoded into text
        # (bytes, characters) of each decoded piece, front first: maps a text offset to bytes.
        self._segments: deque[tuple[int, int]] = deque()
        self.text = ""
        self.bad_bytes: int | None = None
        self.error: UnicodeDecodeError | None = None

    def _restart(self, start: int) -> None:
        self._start = start
        self._nbytes = 0
        self._segments.clear()
        self.text = ""
        self.bad_bytes = None
        self.error = None

    def update(self, data: bytes | bytearray, start: int, final: bool = False) -> str:
        """Decode what ``data`` (the unread bytes, whose first is at stream offset ``start``)
        has beyond the text already decoded; return the text. ``final``: the output has ended,
        so an incomplete character at the end is decoded as it is (replaced, or an error)."""
        if start != self._start:
            self._restart(start)
        if self.bad_bytes is not None or self._nbytes >= len(data):
            return self.text
        chunk = bytes(data[self._nbytes :])
        if not chunk:
            return self.text
        decoder = codecs.getincrementaldecoder(self._encoding)(self._errors)
        try:
            text = decoder.decode(chunk, final)
        except UnicodeDecodeError as exc:
            good = chunk[: exc.start]
            text = good.decode(self._encoding, self._errors) if good else ""
            used = len(good)
            self.bad_bytes = self._nbytes + max(exc.end, exc.start + 1)
            self.error = exc
        else:
            used = len(chunk) - len(decoder.getstate()[0])
        if used:
            self._segments.append((used, len(text)))
            self._nbytes += used
            self.text += text
        return self.text

    def consume(self, chars: int, data: bytes | bytearray) -> int:
        """Drop the first ``chars`` characters of :attr:`text`; return how many bytes of
        ``data`` (the same buffer) they were decoded from, for the owner to delete."""
        taken = 0
        left = chars
        segments = self._segments
        while left and segments:
            nbytes, nchars = segments[0]
            if nchars <= left:
                segments.popleft()
                taken += nbytes
                left -= nchars
                continue
            part = self.text[chars - left : chars]
            raw = bytes(data[taken : taken + nbytes])
            inner = self._prefix_bytes(raw, part)
            if inner is None:
                # The end falls inside bytes that decode to more than one character (a
                # replaced sequence): take those bytes whole, and decode afresh from there.
                inner = _bytes_covering(raw, len(part), self._encoding, self._errors)
                taken += inner
                self._restart(self._start + taken)
                return taken
            segments[0] = (nbytes - inner, nchars - left)
            taken += inner
            left = 0
        self.text = self.text[chars:]
        self._nbytes -= taken
        self._start += taken
        if self.bad_bytes is not None:
            self.bad_bytes -= taken
        return taken

    def _prefix_bytes(self, raw: bytes, part: str) -> int | None:
        """How many bytes of ``raw`` decode to exactly ``part``, or None if no prefix does."""
        # Fast path: the text encodes back to the bytes it came from (no replaced bytes in it).
        try:
            encoded = part.encode(
                self._encoding, self._errors if self._errors in _ROUND_TRIP else "strict"
            )
        except UnicodeError:
            encoded = b""
        if encoded and raw.startswith(encoded):
            return len(encoded)
        count = _bytes_covering(raw, len(part), self._encoding, self._errors)
        decoded = raw[:count].decode(self._encoding, self._errors)
        return count if decoded == part else None


def _bytes_covering(raw: bytes, chars: int, encoding: str, errors: str) -> int:
    """The fewest bytes of ``raw`` whose decoding holds at least ``chars`` characters."""
    decoder = codecs.getincrementaldecoder(encoding)(errors)
    produced = 0
    for index in range(len(raw)):
        produced += len(decoder.decode(raw[index : index + 1]))
        if produced >= chars:
            return index + 1
    return len(raw)
