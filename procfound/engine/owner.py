"""ChildOwner: the one owner of a long-running child (a ManagedProcess's), in the portal loop.

**One owner.** A launched child belongs to one :class:`ChildOwner`, which lives in procfound's
portal loop and alone reads, writes, closes, signals and reaps it: its supervisor task
(:meth:`ChildOwner.supervise`) moves the child's output into the owner's sinks through the
session (:mod:`procfound.engine.sinks`, read by :class:`~procfound.engine.echo.Echo`) and
notices the exit. Reads (a line, a character, a handshake) are requests to the owner, answered
from its one stdout buffer and woken by its notifications, never by polling. So a read, a
handshake wait and a stop of the same child can race freely: no fd is touched outside the
portal, a closed fd is never read, and no byte is lost between a line, a character and a
handshake read. (An earlier design read the raw fd in the caller's loop while the portal closed
it; a read could then return the bytes of an unrelated file that reused the fd number.)

Every method runs in the portal thread. The owner holds no reference to the object that
launched it, so that object can be garbage-collected (and its child stopped) while the
supervisor still runs. The engine words no user-facing error: the errors a read or a handshake
raises are made by the :class:`OwnerErrors` the launching layer passes in.
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from typing import Final, NoReturn, Protocol

import anyio

from procfound.engine.echo import Echo
from procfound.engine.lines import line_end, universal_newlines
from procfound.engine.listeners import Tree
from procfound.engine.matching import PatternMatcher
from procfound.engine.session import ChildSession, Sink, UnkillableChildError
from procfound.engine.sinks import StderrKeeper, StdoutBuffer, tail_text
from procfound.engine.waiting import peek_returncode
from procfound.engine.watch import Watch, watch_until_exit

__all__ = ["DEFAULT_READ_SIZE", "STDOUT_HIGH_WATER", "ChildOwner", "OwnerErrors"]

DEFAULT_READ_SIZE: Final = 64 * 1024
# Unread stdout kept for the reader. Past this the owner stops reading and the pipe fills, as
# the seed's did (a child nobody reads must not grow our memory without bound); a reader that
# waits for more (one giant line) resumes it.
STDOUT_HIGH_WATER: Final = 4 * 1024 * 1024
# A handshake can match before its line is complete (the writer split the line, or buffer_size
# cut it): wait this long for the rest of that line, so it is returned whole, not left behind.
_LINE_END_GRACE: Final = 0.1
# Output ends (EOF) a moment before the exit status exists: how long to wait for the status.
_EXIT_STATUS_WAIT: Final = 1.0
_SUPERVISOR_STOP_WAIT: Final = 5.0

_logger: Final = logging.getLogger("procfound")


class OwnerErrors(Protocol):
    """The errors an owner raises, worded by the layer that launched the child."""

    def undecodable(
        self, error: UnicodeError, data: bytes, position: int | None, returncode: int | None
    ) -> Exception:
        """Stdout a read consumed did not decode; ``data`` are its bytes."""
        ...

    def idle(self, seconds: float, stdout: str, stderr: str, returncode: int | None) -> Exception:
        """The child wrote nothing for ``seconds`` and was stopped (tails as it was stopped)."""
        ...

    def not_matched(self, parts: list[str], seconds: float | None, text: str) -> Exception:
        """A handshake's ``parts`` did not all appear within ``seconds``; ``text`` was read."""
        ...

    def ended_early(
        self, returncode: int | None, missing: list[str], text: str, stderr: str
    ) -> Exception:
        """The output ended (the child exited) before the handshake's ``missing`` parts."""
        ...


class ChildOwner:
    """The one owner of a launched child (see the module docstring).

    Built before the spawn (the session needs its sinks: :meth:`sinks`); the launcher then sets
    :attr:`session` and runs :meth:`supervise` as a task of the portal.

    Args:
        errors: Makes the errors raised here.
        encoding: The child's output encoding, for reads.
        decode_errors: The decoding error handler (``"strict"``, ``"replace"``...).
        idle_timeout: Stop the child after this many seconds without output (None: never).
        capture: Whether stdout is piped to the owner (reads need it).
        relay_stderr: Copy stderr to ours as it arrives (its tail is kept either way).
        read_size: Bytes per read of stdout.
        universal: ``"\\r\\n"`` and a lone ``"\\r"`` end a line too (text mode).
        on_idle: Called with the idle timeout when it stops the child (logs, spans).
    """

    def __init__(
        self,
        errors: OwnerErrors,
        *,
        encoding: str,
        decode_errors: str,
        idle_timeout: float | None = None,
        capture: bool,
        relay_stderr: bool,
        read_size: int = DEFAULT_READ_SIZE,
        universal: bool = False,
        on_idle: Callable[[float], None] | None = None,
    ) -> None:
        self.errors = errors
        self.encoding, self.decode_errors = encoding, decode_errors  # how the reads decode
        self.idle_timeout, self.on_idle = idle_timeout, on_idle
        # A "\r" that was the last byte read may be the first half of "\r\n": the "\n", when it
        # comes, is dropped (_skip_lf), so no empty line appears.
        self.universal = universal
        self._skip_lf = False
        self.pid_of_creator = os.getpid()
        self.stdout = StdoutBuffer(self.output_changed, read_size)
        self.stderr = StderrKeeper(self._output_seen)
        self.relay_stderr = relay_stderr
        self.capture = capture
        self.session: ChildSession | None = None
        self.supervisor_done = anyio.Event()
        # Set once the child has really exited (its code is known): not when the supervisor is
        # merely stopped by finish(), which still has the whole grace to wait through.
        self.exited = anyio.Event()
        self._changed = anyio.Event()
        self._activity = anyio.Event()  # set by any output (stdout or stderr); for probes
        self._probing = 0  # readiness waits in progress: stdout is read past the high-water mark
        self._scope: anyio.CancelScope | None = None
        self._stop_requested = False
        self._finish_lock = anyio.Lock()
        self.finished = False  # finish() has run: reaped, every fd closed
        self.stopped_gracefully = True
        # Set when idle_timeout stopped the child: (seconds, stdout tail, stderr tail) then.
        self.idled: tuple[float, str, str] | None = None
        # Called once the child is finished (reaped, its pipes closed): what else holds one of
        # its fds lets go of it then (the stdin writer: procfound.engine.talk).
        self.at_finish: list[Callable[[], None]] = []

    def sinks(self, echo: bool) -> tuple[Sink, Sink]:
        """The session's stdout and stderr sinks; ``echo`` copies both to our stdout
        (``print_output``), except a relayed stderr, which goes to our stderr already."""
        stdout = Echo(self.stdout, "stdout" if echo else None, self.stdout.read_size)
        shown = "stderr" if self.relay_stderr else "stdout" if echo else None
        return stdout, Echo(self.stderr, shown)

    # -- the supervisor ---------------------------------------------------------------------

    async def supervise(self) -> None:
        """Move output until the child exits (or :meth:`finish` stops this), then tell waiters.

        With ``idle_timeout``, a child that writes nothing on stdout or stderr for that long is
        stopped with its stop policy; the reads that find its output ended then raise the
        idle error.
        """
        session = self.session
        assert session is not None
        idle = self.idle_timeout
        ending = "exit"
        try:
            with anyio.CancelScope() as self._scope:
                if self._stop_requested:
                    self._scope.cancel()
                if idle is None:
                    await session.run_to_exit()
                else:
                    sinks = (self.stdout, self.stderr)
                    watch = Watch(None, idle, lambda: sum(sink.size for sink in sinks))
                    ending = await watch_until_exit(session, watch)
                if ending == "exit":
                    self.exited.set()
        finally:
            self.supervisor_done.set()
            self.output_changed()
        if ending == "idle" and idle is not None:
            self.idled = (idle, self.stdout_text(), self.stderr_text())
            if self.on_idle is not None:
                self.on_idle(idle)
            await self.finish(interruptible=False)

    async def _raise_idle(self) -> NoReturn:
        """Raise the idle timeout's error once the tree it stopped is gone (its code known)."""
        assert self.idled is not None
        await self.exited.wait()  # bounded by the kill schedule
        raise self.errors.idle(*self.idled, self.returncode())

    def output_changed(self) -> None:
        """Called when output arrived or ended: wake the waiting reads, pace the pipe."""
        session, stdout_fd = self.session, self._stdout_fd()
        if (
            session is not None
            and stdout_fd is not None
            and len(self.stdout.data) >= STDOUT_HIGH_WATER
        ):
            if not self._probing:
                session.pause_reader(stdout_fd)
            elif len(self.stdout.data) >= 2 * STDOUT_HIGH_WATER:
                # A probe waits: a service that writes megabytes before it listens must not
                # block on a full pipe, so keep reading and keep the newest 4 MiB.
                self.stdout.keep_newest(STDOUT_HIGH_WATER)
        changed, self._changed = self._changed, anyio.Event()
        changed.set()
        self._output_seen()

    def _stdout_fd(self) -> int | None:
        session = self.session
        return None if session is None else session.child.stdout

    @property
    def output_ended(self) -> bool:
        """No more stdout will come: EOF, or the session's pipes are closed."""
        return self.stdout.eof or self.supervisor_done.is_set()

    def _resume(self) -> None:
        session, fd = self.session, self._stdout_fd()
        if session is not None and fd is not None:
            session.resume_reader(fd)

    async def _more_output(self) -> None:
        """Wait until output arrives or ends (asking for it even past the high-water mark)."""
        self._resume()
        await self._changed.wait()

    def _consumed(self) -> None:
        if len(self.stdout.data) < STDOUT_HIGH_WATER:
            self._resume()

    # -- read requests ----------------------------------------------------------------------

    def _decode(self, data: bytes | bytearray, offset: int | None = None) -> str:
        """``data``, consumed by a read, as text; an undecodable error keeps the bytes."""
        try:
            return str(data, self.encoding, self.decode_errors)
        except UnicodeError as exc:
            raise self._undecodable(exc, bytes(data), offset) from exc

    def _undecodable(self, error: UnicodeError, data: bytes, offset: int | None) -> Exception:
        start = error.start if isinstance(error, UnicodeDecodeError) else None
        position = None if offset is None or start is None else offset + start
        return self.errors.undecodable(error, data, position, self.returncode())

    def _offset(self) -> int:
        """Where the unread stdout starts in the whole output."""
        return self.stdout.size - len(self.stdout.data)

    def _drop_skipped_lf(self) -> None:
        buffer = self.stdout.data
        if self._skip_lf and buffer:
            self._skip_lf = False
            if buffer[0] == 0x0A:
                del buffer[:1]

    def _line_end(self, limit: int) -> tuple[int, int] | None:
        """Where the first line in ``data[:limit]`` ends: (end of its text, start of what
        follows), or None. Without universal newlines a "\r" before the "\n" stays in the text.
        """
        buffer = self.stdout.data
        if not self.universal:
            newline = buffer.find(b"\n", 0, limit)
            return None if newline < 0 else (newline, newline + 1)
        end = line_end(buffer, 0, limit)
        if end < 0:
            return None
        if buffer[end] == 0x0D:  # "\r": a "\n" right after it is part of the same line end
            if end + 1 == len(buffer):
                self._skip_lf = True
                return end, end + 1
            return end, end + 2 if buffer[end + 1] == 0x0A else end + 1
        return end, end + 1

    async def read_line(self, seconds: float | None) -> str:
        """One line of stdout without its ending; at its end the last partial line, then ""."""
        buffer = self.stdout.data
        with anyio.move_on_after(seconds):
            while True:
                self._drop_skipped_lf()
                found = self._line_end(len(buffer))
                if found is not None:
                    end, after = found
                    line, offset = buffer[:end], self._offset()
                    del buffer[:after]
                    self._consumed()
                    return self._decode(line, offset).removesuffix("\r")
                if self.output_ended:
                    if not buffer and self.idled is not None:
                        await self._raise_idle()
                    rest, offset = bytes(buffer), self._offset()
                    buffer.clear()
                    return self._decode(rest, offset).removesuffix("\r")
                await self._more_output()
        raise TimeoutError(f"Read timeout after {seconds}s")

    async def read_char(self, seconds: float | None) -> str:
        """One character of stdout, or "" at its end."""
        with anyio.move_on_after(seconds):
            while True:
                self._drop_skipped_lf()
                if self.idled is not None and self.output_ended and not self.stdout.data:
                    await self._raise_idle()
                char = self._take_char()
                if char is not None:
                    self._consumed()
                    if char == "\r" and self.universal:
                        self._drop_lf_after_cr()
                        return "\n"
                    return char
                await self._more_output()
        raise TimeoutError(f"Character read timeout after {seconds}s")

    def _drop_lf_after_cr(self) -> None:
        buffer = self.stdout.data
        if not buffer:
            self._skip_lf = True
        elif buffer[0] == 0x0A:
            del buffer[:1]

    def _take_char(self) -> str | None:
        """One character from the buffer in the chosen encoding; None if it is not whole yet.

        Bytes are fed one at a time to an incremental decoder, so a character takes exactly
        the bytes its encoding says (1 for latin-1, up to 4 for UTF-8), and nothing is
        consumed until a character is complete.
        """
        buffer = self.stdout.data
        decoder = codecs.getincrementaldecoder(self.encoding)(self.decode_errors)
        offset = self._offset()
        for index in range(len(buffer)):
            try:
                text = decoder.decode(buffer[index : index + 1])
            except UnicodeError as exc:  # errors="strict": this byte ends an invalid sequence
                taken = bytes(buffer[: index + 1])
                del buffer[: index + 1]
                raise self._undecodable(exc, taken, offset) from exc
            if len(text) == 1:
                del buffer[: index + 1]
                return text
            if text:  # an invalid sequence ended by this byte: hand over what came before it
                taken = bytes(buffer[:index])
                del buffer[:index]
                return self._decode(taken, offset)
        if not self.output_ended:
            return None
        rest = bytes(buffer)
        buffer.clear()
        return self._decode(rest, offset)

    async def _read_piece(self, size: int) -> bytes:
        """Take up to ``size`` bytes, stopping after a newline; b"" once output has ended.

        Stopping at line ends lets a handshake wait consume only through the line that
        completed it, so what follows stays buffered for the next read.
        """
        buffer = self.stdout.data
        self._drop_skipped_lf()
        while not buffer and not self.output_ended:
            await self._more_output()
            self._drop_skipped_lf()
        found = self._line_end(size)
        take = size if found is None else found[1]
        data = bytes(buffer[:take])
        del buffer[:take]
        self._consumed()
        return data

    async def _finish_line(self, matcher: PatternMatcher) -> None:
        """Feed the matcher the rest of the line a handshake matched in."""
        buffer = self.stdout.data
        while True:
            self._drop_skipped_lf()
            found = self._line_end(len(buffer))
            if found is not None:
                matcher.feed(bytes(buffer[: found[1]]))
                del buffer[: found[1]]
                self._consumed()
                return
            if self.output_ended:
                return
            if buffer:
                matcher.feed(bytes(buffer))
                buffer.clear()
                self._consumed()
            await self._more_output()

    async def wait_for_output(self, parts: list[str], seconds: float | None, piece: int) -> str:
        """Read stdout, ``piece`` bytes at a time, until every one of ``parts`` appeared; the
        text read, through the end of the line that completed the match."""
        matcher = PatternMatcher(parts, self.encoding)
        if matcher.matched:
            # No parts: everything expected has "appeared" before any read, so nothing is read
            # (the seed returned its first read here; SPEC: read *until* every part appeared).
            return ""
        with anyio.move_on_after(seconds):
            while True:
                data = await self._read_piece(piece)
                if not data:
                    break
                if matcher.feed(data):
                    if not data.endswith(b"\n"):
                        with anyio.move_on_after(_LINE_END_GRACE):
                            await self._finish_line(matcher)
                    matcher.feed(b"", final=True)
                    return universal_newlines(matcher.text) if self.universal else matcher.text
        matcher.feed(b"", final=True)
        if not self.output_ended:
            raise self.errors.not_matched(parts, seconds, matcher.text)
        if self.idled is not None:
            await self._raise_idle()
        code = await self.exit_code()
        raise self.errors.ended_early(code, matcher.missing, matcher.text, self.stderr_text())

    # -- the exit -----------------------------------------------------------------------------

    async def exit_code(self) -> int | None:
        """The exit code: waited for through a stop in progress (bounded by its kill schedule),
        else briefly (the output has ended, but a child may close stdout and run on)."""
        if self._stop_requested:
            await self.exited.wait()
        else:
            with anyio.move_on_after(_EXIT_STATUS_WAIT):
                await self.exited.wait()
        return self.returncode()

    async def wait_exit(self, seconds: float | None) -> int | None:
        """The exit code once the child has exited, or None if ``seconds`` passed first.

        Whoever ends the child (its own exit, or a terminate running in another thread), this
        waits for the exit itself, not for the supervisor to stop.
        """
        with anyio.move_on_after(seconds):
            await self.exited.wait()
        return self.returncode()

    async def send_signal(self, sig: int) -> None:
        """Signal the child alone, through its pidfd; nothing once it has been reaped."""
        session = self.session
        if session is not None and not self.finished and session.returncode is None:
            session.signal_child(sig)

    def returncode(self) -> int | None:
        """The exit code once the child has exited (``-N`` for signal N), else None."""
        session = self.session
        if session is None:
            return None
        if session.returncode is not None:
            return session.returncode
        code = peek_returncode(session.pid)
        return session.returncode if code is None else code

    def stderr_text(self) -> str:
        """The last 64 KiB of stderr, relayed or not."""
        return tail_text(self.stderr.buffer, self.encoding, self.decode_errors)

    def stdout_text(self) -> str:
        """The last 64 KiB of stdout, whether or not reads consumed it."""
        return tail_text(self.stdout.tail, self.encoding, self.decode_errors)

    # -- readiness (the probes and their wait are procfound.services.probes) -------------------

    def _output_seen(self) -> None:
        activity, self._activity = self._activity, anyio.Event()
        activity.set()

    def activity(self) -> anyio.Event:
        """An event set the next time the child writes to stdout or stderr."""
        return self._activity

    def tree(self) -> Tree | None:
        """The child's tree, for telling whether it is what answered a probe."""
        session = self.session
        if session is None:
            return None
        child = session.child
        return Tree(child.pid, child.pgid, None if child.box is None else child.box.members)

    @contextlib.contextmanager
    def probing(self) -> Iterator[None]:
        """While a readiness wait runs: stdout is read past the high-water mark, the oldest
        unread bytes beyond it let go (see :meth:`output_changed`)."""
        self._probing += 1
        self._resume()
        try:
            yield
        finally:
            self._probing -= 1

    # -- ending -----------------------------------------------------------------------------

    async def finish(self, grace: float | None = None, *, interruptible: bool = True) -> bool:
        """Stop the supervisor, then the tree (the engine's kill path); True if it went politely.

        ``grace`` replaces the caller's ``kill_grace`` (the stop signal stays the caller's).
        Serialised: a second terminate waits for the first and reports its verdict.
        """
        async with self._finish_lock:
            session = self.session
            if session is None or self.finished:
                return self.stopped_gracefully
            self._stop_requested = True
            if self._scope is not None:
                self._scope.cancel()
            # Bounded: a supervisor whose job never started (the portal was stopping) must not
            # hang the stop; the session is finished all the same.
            with anyio.CancelScope(shield=True), anyio.move_on_after(_SUPERVISOR_STOP_WAIT):
                await self.supervisor_done.wait()
            try:
                schedule = session.schedule if grace is None else session.schedule.with_grace(grace)
                await session.finish(schedule, interruptible=interruptible)
            except UnkillableChildError as exc:
                _logger.error("managed process %s could not be stopped: %s", session.pid, exc)
                self.stopped_gracefully = False
            else:
                self.stopped_gracefully = not session.killed
            finally:
                for let_go in self.at_finish:
                    let_go()
                self.finished = True
                self.exited.set()  # reaped (or given up on after SIGKILL): waiters may go
                self.stdout.eof = True
                self.output_changed()
            return self.stopped_gracefully

    async def abandon(self) -> None:
        """Its launcher was garbage-collected while the child ran: kill it now."""
        await self.finish(0.0, interruptible=False)
