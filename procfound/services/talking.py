"""Talking to a ManagedProcess: writing to its stdin, end of file, ``expect`` and its terminal's
size (:class:`Talking`, a part of :class:`~procfound.ManagedProcess`), and the ``Popen``-like
``process.stdin`` (:class:`StdinFile`).

Each method checks its arguments, then runs in the child's owner through the portal, where the
engine's :class:`~procfound.engine.talk.Talk` does the work; the engine's outcomes are worded
here, with the command, the return code and the output's tails, as procfound's other errors.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Final, ParamSpec, TypeVar

import anyio

from procfound.bridge.portal import in_portal_thread
from procfound.bridge.sync import acall_in_portal, call_in_portal, make_sync
from procfound.call.checks import shown_value
from procfound.call.options import check_timeout, to_input_bytes
from procfound.engine.expect import ExpectMatch, Patterns
from procfound.engine.owner import ChildOwner
from procfound.engine.stdin import StdinClosedError, StdinWriter
from procfound.engine.talk import ExpectEnded, ExpectTimedOut, Talk, WriteTimedOut
from procfound.errors import (
    ProcessError,
    ProcessTimeoutError,
    StateError,
    ValidationError,
    command_display,
)

__all__ = ["DEFAULT_EXPECT_TIMEOUT", "StdinFile", "Talking", "check_patterns", "open_talk"]

DEFAULT_EXPECT_TIMEOUT: Final = 10.0
# After EPIPE, how long to wait for the exit status of a child that is exiting (EPIPE comes as
# its stdin closes, a moment before its exit is seen).
_EXIT_AFTER_EPIPE: Final = 0.25

Pattern = str | re.Pattern[str]
P = ParamSpec("P")
T = TypeVar("T")


def check_patterns(pattern: object) -> Patterns:
    """``expect``'s ``pattern`` argument, checked before any wait, as the engine's patterns.

    Args:
        pattern: A ``str`` (literal text), a compiled ``re.Pattern[str]``, or a non-empty list or
            tuple of them.

    Returns:
        The patterns in the order given (a literal is matched as ``re.escape`` of it).

    Raises:
        ValidationError: For an empty list, a bytes pattern, or anything else.

    Example:
        >>> check_patterns(["1+1", re.compile(r"\\d+")]).shown
        ['1+1', '\\\\d+']
    """
    if isinstance(pattern, str | re.Pattern):
        return Patterns([_checked(pattern, None)])
    if not isinstance(pattern, list | tuple):
        raise ValidationError(
            "pattern must be a str, a compiled re.Pattern[str] or a list of them, not "
            f"{type(pattern).__name__}",
            code="INVALID_ARGUMENT",
        )
    if not pattern:
        raise ValidationError(
            "pattern is an empty list: give at least one pattern", code="INVALID_ARGUMENT"
        )
    return Patterns([_checked(item, index) for index, item in enumerate(pattern)])


def _checked(item: object, index: int | None) -> str | re.Pattern[str]:
    where = "pattern" if index is None else f"pattern[{index}]"
    if isinstance(item, str):
        return item
    if isinstance(item, re.Pattern) and isinstance(item.pattern, str):
        return item
    kind = "a bytes pattern" if isinstance(item, bytes | re.Pattern) else type(item).__name__
    raise ValidationError(
        f"{where} must be a str or a compiled re.Pattern[str], not {kind} "
        "(output is matched as decoded text)",
        code="INVALID_ARGUMENT",
    )


def encode_input(data: object, encoding: str) -> bytes:
    """What a write sends: a ``str`` encoded with the process's ``encoding``, bytes as they are."""
    encoded = None if data is None else to_input_bytes(data, encoding, "the data to write")
    if encoded is None:
        raise ValidationError(
            "the data to write must be str or bytes, not None", code="INVALID_ARGUMENT"
        )
    return encoded


def open_talk(owner: ChildOwner, stdin: int | None, *, terminal: bool = False) -> Talk:
    """The talk of a child just spawned: a writer over ``stdin`` (our end of the child's stdin,
    taken over) if it has one; closed when the owner finishes the child."""
    writer = None if stdin is None else StdinWriter(stdin, terminal=terminal)
    return Talk(owner, writer)


class _Conversation:
    """One child's talk as the facade reaches it: its owner, the talk, how errors name it, and
    whether the child is on a terminal."""

    __slots__ = ("command", "encoding", "owner", "talk", "terminal")

    def __init__(
        self,
        owner: ChildOwner,
        talk: Talk,
        command: list[str] | str,
        encoding: str,
        *,
        terminal: bool = False,
    ) -> None:
        self.owner = owner
        self.talk = talk
        self.command = command
        self.encoding = encoding
        self.terminal = terminal

    def writable(self) -> _Conversation:
        """Itself, if the child can be written to now."""
        if self.owner.finished:
            raise ProcessError(
                "Process not running: it was stopped; nothing can be written to it",
                code="PROCESS_NOT_RUNNING",
            )
        if self.talk.writer is None:
            raise StateError(
                f"{command_display(self.command)} has no stdin to write to: pass "
                "stdin=subprocess.PIPE (or pty=True) to ManagedProcess to talk to it",
                code="PROCESS_NO_STDIN",
            )
        return self

    async def write(self, data: bytes, seconds: float | None) -> None:
        """In the owner: write ``data``; the engine's outcome in procfound's words."""
        owner = self.owner
        try:
            await self.talk.write(data, seconds)
        except WriteTimedOut as exc:
            raise ProcessTimeoutError(
                f"Writing to the process's stdin timed out after {seconds}s "
                f"({exc.written} of {len(data)} bytes written)",
                command=self.command,
                timeout_seconds=seconds,
                code="PROCESS_WRITE_TIMEOUT",
                bytes_written=exc.written,
            ) from None
        except StdinClosedError as exc:
            if exc.by_us and not owner.finished:
                raise StateError(
                    "stdin was closed by close_stdin(): nothing more can be written",
                    code="PROCESS_STDIN_CLOSED",
                ) from None
            with anyio.move_on_after(_EXIT_AFTER_EPIPE):
                await owner.exited.wait()
            code = owner.returncode()
            how = (
                "was stopped"
                if owner.finished
                else "closed its stdin"
                if code is None
                else f"exited with code {code}"
            )
            raise ProcessError(
                f"Cannot write to the process's stdin: the process {how}",
                command=self.command,
                return_code=code,
                stderr=owner.stderr_text() or None,
                code="PROCESS_STDIN_CLOSED",
            ) from None

    async def close(self) -> None:
        """In the owner: end of file for the child."""
        await self.talk.close_stdin()

    async def resize(self, rows: int, cols: int) -> None:
        """In the owner: the terminal's new size (nothing once the child let go of it)."""
        session = self.owner.session
        if session is not None and not self.owner.finished:
            session.resize_terminal(rows, cols)

    async def expect(self, patterns: Patterns, seconds: float | None) -> ExpectMatch:
        """In the owner: wait until a pattern matches; the engine's outcome in our words."""
        shown = patterns.shown
        try:
            return await self.talk.expect(patterns, seconds)
        except ExpectTimedOut:
            raise ProcessTimeoutError(
                f"No expected pattern matched within {seconds}s (expected: {shown})",
                timeout_seconds=seconds,
                code="PROCESS_EXPECT_TIMEOUT",
                **self._with_output(),
            ) from None
        except ExpectEnded:
            code = await self.owner.exit_code()
            raise ProcessError(
                f"Process output ended (exit code {code}) before an expected pattern matched "
                f"(expected: {shown})",
                return_code=code,
                code="PROCESS_EXITED_EARLY",
                **self._with_output(),
            ) from None

    def _with_output(self) -> dict[str, Any]:
        """The keywords of an ``expect`` error: the command, and the output's tails."""
        owner = self.owner
        stderr = owner.stderr_text() or None
        return {"command": self.command, "stdout": owner.stdout_text(), "stderr": stderr}


async def _in_portal(fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
    """``await fn(...)`` in the portal: at once when already there (a sync twin runs in the
    portal; a second hop through it cost a round trip, half of a write's time), else through
    :func:`~procfound.bridge.sync.acall_in_portal`."""
    if in_portal_thread():
        return await fn(*args, **kwargs)
    return await acall_in_portal(fn, *args, **kwargs)


class Talking:
    """Writing to a ManagedProcess and expecting its answers (a part of ManagedProcess: the
    facade sets ``_conversation`` at launch)."""

    _conversation: _Conversation | None = None

    def _talk(self, doing: str) -> _Conversation:
        conversation = self._conversation
        if conversation is None:
            raise ProcessError(
                f"Process not running: launch it before {doing}", code="PROCESS_NOT_RUNNING"
            )
        return conversation

    async def awrite(self, data: str | bytes, timeout: float | None = None) -> None:
        """Write all of ``data`` to the child's stdin.

        A ``str`` is encoded with the process's ``encoding`` (UTF-8 unless given); bytes go as
        they are. A child that reads slowly makes the write wait for room in the pipe, in the
        child's owner: your event loop and everything else go on meanwhile. Writes from several
        tasks or threads are written whole, one after the other.

        Args:
            data: What to write.
            timeout: Seconds to wait for it all to go in (None: no limit).

        Raises:
            ProcessTimeoutError: If not all of it went in within ``timeout`` (a
                ``TimeoutError``, code ``PROCESS_WRITE_TIMEOUT``); ``context["bytes_written"]``
                says how many bytes did. The rest is not written.
            ProcessError: If the child has exited or closed its stdin (code
                ``PROCESS_STDIN_CLOSED``, with the return code when known), or is not running.
            StateError: If the process has no stdin to write to (it needs
                ``stdin=subprocess.PIPE`` or ``pty=True``), or after :meth:`close_stdin`.
            ValidationError: If ``data`` is neither str nor bytes, or ``timeout`` is not a
                number of seconds.

        Example:
            >>> import subprocess
            >>> from procfound import ManagedProcess
            >>> with ManagedProcess(["cat"], stdin=subprocess.PIPE) as cat:
            ...     cat.write("hello\\n")
            ...     cat.expect("\\n").before
            'hello'
        """
        conversation = self._talk("writing to it")
        payload = encode_input(data, conversation.encoding)
        seconds = check_timeout(timeout)
        await _in_portal(conversation.writable().write, payload, seconds)

    async def aclose_stdin(self) -> None:
        """End of file for the child's stdin, after the writes already asked for.

        A pipe is closed; a terminal (``pty=True``) is sent its end-of-file character (Ctrl-D,
        twice when a partial line is pending), as a keyboard would, once the terminal has room
        for it. Safe to call twice. Writes after it are refused (``StateError``).

        Raises:
            StateError: If the process has no stdin to write to.
            ProcessError: If it is not running.

        Example:
            >>> import subprocess
            >>> from procfound import ManagedProcess
            >>> with ManagedProcess(["cat"], stdin=subprocess.PIPE) as cat:
            ...     cat.close_stdin()
            ...     cat.process.wait(timeout=5)
            0
        """
        conversation = self._talk("closing its stdin").writable()
        await _in_portal(conversation.close)

    async def aexpect(
        self, pattern: Pattern | Sequence[Pattern], timeout: float | None = DEFAULT_EXPECT_TIMEOUT
    ) -> ExpectMatch:
        """Read stdout until ``pattern`` matches; consume it through the end of the match.

        ``pattern`` is a ``str`` (literal text), a compiled ``re.Pattern[str]``, or a list or
        tuple of them. Of several, the match that starts first in the output wins; on a tie,
        the pattern given first. A pattern matches as soon as it matches the output read so far
        (``a+`` may match one ``a``; a pattern that matches empty text matches at once).

        The output is decoded as written (no newline translation), a character split across
        two reads never broken. It shares one buffer with :meth:`read_line_async`,
        :meth:`read_char_async` and :func:`~procfound.wait_for_process_output`: what follows the
        match stays for them, and an expect that fails consumes nothing.

        Args:
            pattern: What to wait for.
            timeout: Seconds to wait (None: no limit).

        Returns:
            ``ExpectMatch(index, match, before)``: the pattern's index, its ``re.Match``, and
            the text consumed before the match.

        Raises:
            ProcessTimeoutError: If nothing matched in time (a ``TimeoutError``, code
                ``PROCESS_EXPECT_TIMEOUT``), with the output's tail.
            ProcessError: If the output ended first (code ``PROCESS_EXITED_EARLY``, with the
                return code and the output's tail), or stdout is not captured.
            ValidationError: If ``pattern`` is not one of the above (an empty list, bytes), or
                ``timeout`` is not a number of seconds.
            DecodeError: With ``errors="strict"``, if the output does not decode before a
                match (the bytes through the bad ones are consumed).

        Example:
            >>> import re
            >>> from procfound import ManagedProcess
            >>> with ManagedProcess(["sh", "-c", "echo 'total: 42'; exec sleep 30"]) as proc:
            ...     proc.expect(re.compile(r"total: (\\d+)")).match.group(1)
            '42'
        """
        patterns = check_patterns(pattern)
        seconds = check_timeout(timeout)
        conversation = self._talk("expecting its output")
        owner = conversation.owner
        if owner.finished or not owner.capture:
            raise ProcessError(
                "Process not running or stdout not available", code="PROCESS_NO_STDOUT"
            )
        return await _in_portal(conversation.expect, patterns, seconds)

    async def aresize(self, rows: int, cols: int) -> None:
        """Change the size of the child's terminal (``pty=True``); the child gets ``SIGWINCH``.

        Args:
            rows: Lines, from 1 to 65535.
            cols: Columns, from 1 to 65535.

        Raises:
            StateError: If the process has no terminal (it needs ``pty=True``).
            ProcessError: If it is not running.
            ValidationError: If a size is not a whole number in range.

        Example:
            >>> import sys
            >>> from procfound import ManagedProcess
            >>> code = "import os; os.get_terminal_size(); input(); print(os.get_terminal_size())"
            >>> with ManagedProcess([sys.executable, "-c", code], pty=True) as proc:
            ...     proc.resize(50, 132)
            ...     proc.write("\\n")
            ...     proc.expect("\\r\\n").before
            'os.terminal_size(columns=132, lines=50)'
        """
        size = (_terminal_length(rows, "rows"), _terminal_length(cols, "cols"))
        conversation = self._talk("resizing its terminal")
        if not conversation.terminal:
            raise StateError(
                f"{command_display(conversation.command)} has no terminal to resize: pass "
                "pty=True to ManagedProcess to run it on one",
                code="PROCESS_NO_TERMINAL",
            )
        await _in_portal(conversation.resize, *size)

    write = make_sync(awrite, "write")
    close_stdin = make_sync(aclose_stdin, "close_stdin")
    expect = make_sync(aexpect, "expect")
    resize = make_sync(aresize, "resize")


def _terminal_length(value: object, name: str) -> int:
    """One side of a terminal's size: the kernel keeps it in 16 bits, and 0 means unknown."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValidationError(
            f"{name} must be a whole number from 1 to 65535, not {shown_value(value)}",
            code="INVALID_ARGUMENT",
        )
    return value


class StdinFile:
    """A launched child's stdin as a small writable binary file, for code written against
    ``Popen.stdin`` (:attr:`ManagedProcess.process.stdin <procfound.ProcessHandle>`). Writes go
    through the child's owner, as :meth:`ManagedProcess.write <procfound.ManagedProcess.write>`;
    nothing is buffered, so :meth:`flush` has nothing to do.

    Example:
        >>> import subprocess
        >>> from procfound import ManagedProcess
        >>> with ManagedProcess(["cat"], stdin=subprocess.PIPE) as cat:
        ...     cat.process.stdin.write(b"hi\\n")
        ...     cat.expect("\\n").before
        3
        'hi'
    """

    __slots__ = ("_closed", "_conversation")

    def __init__(self, conversation: _Conversation) -> None:
        self._conversation = conversation
        self._closed = False

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def writable(self) -> bool:
        """True, as for ``Popen.stdin``."""
        return True

    def _open(self) -> _Conversation:
        if self._closed:
            raise ValueError("I/O operation on closed file.")
        if in_portal_thread():  # a sync wait there would wait on itself
            raise StateError(
                "process.stdin cannot be used from procfound's portal thread",
                code="PORTAL_THREAD",
            )
        return self._conversation.writable()

    def write(self, data: bytes) -> int:
        """Write all of ``data``; return its length, as a file's ``write``.

        Raises:
            ProcessError: If the child has exited or closed its stdin (never
                ``BrokenPipeError``).
        """
        conversation = self._open()
        call_in_portal(conversation.write, encode_input(data, conversation.encoding), None)
        return len(data)

    def writelines(self, lines: Iterable[bytes]) -> None:
        """Write each of ``lines`` (no line ends are added)."""
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Nothing to flush: every write is in the pipe when it returns."""
        if self._closed:
            raise ValueError("I/O operation on closed file.")

    def close(self) -> None:
        """End of file for the child. Safe to call twice."""
        if not self._closed:
            conversation = self._open()
            self._closed = True
            call_in_portal(conversation.close)

    def __enter__(self) -> StdinFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
