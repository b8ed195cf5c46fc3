"""Expect: the first of several patterns in a child's decoded output. Pure: no I/O.

:class:`DecodedWindow` keeps the text of the unread output in step with the owner's byte
buffer, which the line and character reads consume too: the window is decoded incrementally
(a character split across reads waits for its last byte), as written (no newline
translation), and notices by the buffer's stream offset when another read consumed from the
front, so one buffer serves every kind of read. :class:`Patterns` finds the match (the layer
that takes the patterns from the user checks them first).

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

__all__ = ["DecodedWindow", "ExpectMatch", "Patterns"]

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


class Patterns:
    """The patterns of one ``expect``, searched in the unread text for the earliest match.

    A literal (a ``str``) is matched as ``re.escape`` of it. It can only newly match where the
    text has grown (from its last ``len - 1`` characters on): after a search that found nothing,
    it is searched only from there, so waiting for a prompt while a chatty child writes megabytes
    costs time in proportion to the output. A regex can newly match anywhere (``a.*z``) and is
    searched over the whole text each time.

    Example:
        >>> patterns = Patterns(["b", re.compile("a|b")])
        >>> index, match = patterns.search("xab")
        >>> index, match.start()
        (1, 1)
    """

    __slots__ = ("_from", "_literal", "compiled", "shown")

    def __init__(self, items: Sequence[str | re.Pattern[str]]) -> None:
        self.compiled = [
            re.compile(re.escape(item)) if isinstance(item, str) else item for item in items
        ]
        self.shown = [item if isinstance(item, str) else item.pattern for item in items]
        self._literal = [len(item) if isinstance(item, str) else None for item in items]
        self._from = [0] * len(items)

    def restart(self) -> None:
        """The text was cut at the front (a read consumed it): search it whole again."""
        self._from = [0] * len(self.compiled)

    def search(self, text: str) -> tuple[int, re.Match[str]] | None:
        """The match that starts first in ``text`` and its pattern's index (ties: the lowest
        index), or None; ``text`` is the text of the last search, grown or restarted."""
        best: tuple[int, re.Match[str]] | None = None
        for index, pattern in enumerate(self.compiled):
            found = pattern.search(text, self._from[index])
            if found is not None and (best is None or found.start() < best[1].start()):
                best = (index, found)
        if best is None:
            for index, length in enumerate(self._literal):
                if length is not None:
                    self._from[index] = max(0, len(text) - length + 1)
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
            # Grown in place where CPython can (no other reference to the text): a long wait
            # for a pattern then costs no copy of all the text per read.
            grown, self.text = self.text, ""
            grown += text
            self.text = grown
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
