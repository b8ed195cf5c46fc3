"""ManagedProcess (a long-running child with a sync or async lifecycle) and
``wait_for_process_output`` (waiting for its handshake).

**One owner.** A launched child belongs to one :class:`_Owner`, which lives in the shared portal
loop and alone reads, writes, closes, signals and reaps it: a supervisor task there moves the
child's output into the owner's buffer (and relays stderr) and notices the exit. The async reads
(``read_line_async``, ``read_char_async``, ``wait_for_process_output``), awaited in any asyncio
or trio loop, are requests to that owner, answered from its one buffer and woken by its
notifications, never by polling. So a read, a handshake wait and a terminate on the same child
can race freely: no fd is touched outside the portal, a closed fd is never read, and no byte is
lost between a line, a character and a handshake read.

An earlier design read the raw fd in the caller's loop while the portal closed it; a read could
then return the bytes of an unrelated file that reused the fd number (docs/design.md).
"""

from __future__ import annotations

import codecs
import contextlib
import math
import os
import signal
import subprocess
import sys
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final, NoReturn, cast

import anyio

from procfound.bridge.portal import in_portal_thread, register_shutdown_hook, submit
from procfound.bridge.sync import acall_in_portal, call_in_portal, make_sync
from procfound.call.failures import ASYNC_RUN
from procfound.call.invocation import Invocation
from procfound.call.observe import CommandObserver
from procfound.call.options import SHELL, RunOptions, check_timeout, logger, redacted_env
from procfound.call.stop import parse_signal
from procfound.engine.buffers import OutputBuffer
from procfound.engine.echo import Echo, write_bytes
from procfound.engine.lines import universal_newlines
from procfound.engine.listeners import Tree
from procfound.engine.matching import PatternMatcher
from procfound.engine.session import ChildSession, Sink, UnkillableChildError
from procfound.engine.spawn import SpawnError, Stdio
from procfound.engine.waiting import child_has_exited, peek_returncode
from procfound.engine.watch import Watch, watch_until_exit
from procfound.errors import (
    DECODE_HINT_TEXT,
    DecodeError,
    ProcessError,
    ProcessTimeoutError,
    StateError,
    ValidationError,
    command_text,
    decode_error,
)
from procfound.result import CompletedProcess
from procfound.services.probes import Probe, probes_for, wait_until_ready
from procfound.usage import ResourceUsage

__all__ = ["ManagedProcess", "ProcessHandle", "wait_for_process_output"]

DEFAULT_PROCESS_TERMINATE_TIMEOUT: Final = 7.0
DEFAULT_PROCESS_WAIT_TIMEOUT: Final = 10.0
DEFAULT_PROCESS_READLINE_TIMEOUT: Final = 2.0
DEFAULT_PROCESS_READCHAR_TIMEOUT: Final = 1.0
STDERR_TAIL: Final = 64 * 1024
# The last bytes of stdout kept for errors and reports, whether or not a read consumed them.
STDOUT_TAIL: Final = 64 * 1024
_READ_SIZE: Final = 64 * 1024
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

_live: weakref.WeakSet[ManagedProcess] = weakref.WeakSet()


def _keep_tail(tail: bytearray, data: bytes, limit: int) -> None:
    """Append ``data`` to a rolling tail of about ``limit`` bytes (trimmed at twice the limit,
    so the copying stays amortised O(1) per byte); read it as ``tail[-limit:]``."""
    tail += data
    if len(tail) > 2 * limit:
        del tail[:-limit]


class _StderrRelay:
    """A sink copying the child's stderr to ours as it arrives, keeping its last 64 KiB."""

    __slots__ = ("notify", "size", "tail")

    def __init__(self, notify: Callable[[], None]) -> None:
        self.size = 0
        self.tail = bytearray()
        self.notify = notify

    def fill_from(self, fd: int) -> bool:
        try:
            data = os.read(fd, _READ_SIZE)
        except BlockingIOError:
            return False
        if not data:
            return True
        self.size += len(data)
        _keep_tail(self.tail, data, STDERR_TAIL)
        self.notify()
        write_bytes(sys.stderr, data)
        return False


class _StderrKeeper:
    """A sink draining stderr into a 64 KiB tail (no relay), telling the owner of new bytes."""

    __slots__ = ("buffer", "notify", "size")

    def __init__(self, notify: Callable[[], None]) -> None:
        self.buffer = OutputBuffer(STDERR_TAIL)
        self.notify = notify
        self.size = 0  # bytes read, as the session's Sink protocol counts them

    def fill_from(self, fd: int) -> bool:
        ended = self.buffer.fill_from(fd)
        self.size = self.buffer.size + self.buffer.dropped  # monotonic, trims or not
        self.notify()
        return ended

    def feed(self, data: bytes) -> None:
        """Bytes the echo read (``print_output``)."""
        self.buffer.feed(data)
        self.size = self.buffer.size + self.buffer.dropped
        self.notify()


class _StdoutBuffer:
    """The stdout sink: unread bytes, kept for the owner's read requests.

    ``tail`` is the last 64 KiB read, consumed or not (for errors and reports); ``dropped``
    counts unread bytes let go while a readiness probe waited (see :meth:`keep_newest`).
    """

    __slots__ = ("data", "dropped", "eof", "owner", "read_size", "size", "tail")

    def __init__(self, owner: _Owner, read_size: int) -> None:
        self.data = bytearray()
        self.tail = bytearray()
        self.eof = False
        self.size = 0
        self.dropped = 0
        self.read_size = read_size
        self.owner = owner

    def fill_from(self, fd: int) -> bool:
        try:
            chunk = os.read(fd, self.read_size)
        except BlockingIOError:
            return False
        self.feed(chunk)
        return not chunk

    def feed(self, chunk: bytes) -> None:
        """Keep ``chunk`` for the reads (``b""``: end of output)."""
        if chunk:
            self.data += chunk
            self.size += len(chunk)
            _keep_tail(self.tail, chunk, STDOUT_TAIL)
        else:
            self.eof = True
        self.owner.output_changed()

    def keep_newest(self, limit: int) -> None:
        """Let go of the oldest unread bytes beyond ``limit``, cutting after a line end when one
        is near, so the next line read starts at the beginning of a line."""
        excess = len(self.data) - limit
        if excess <= 0:
            return
        line_end = self.data.find(b"\n", excess, excess + _READ_SIZE)
        cut = excess if line_end < 0 else line_end + 1
        del self.data[:cut]
        self.dropped += cut


class _Owner:
    """The one owner of a launched child, living in the portal loop (see the module docstring).

    Every method runs in the portal thread. It holds no reference to its ManagedProcess, so an
    abandoned ManagedProcess can be garbage-collected (and its child stopped) while the
    supervisor still runs.
    """

    def __init__(
        self,
        options: RunOptions,
        *,
        capture: bool,
        relay_stderr: bool,
        read_size: int,
        universal: bool = False,
        command: str = "",
    ) -> None:
        self.options = options
        self.command = command  # for the messages of the errors raised here
        # text_mode: "\r\n" and a lone "\r" end a line too (universal newlines), as the seed's
        # text-mode Popen reads. A "\r" that was the last byte read may be the first half of
        # "\r\n": the "\n", when it comes, is dropped (_skip_lf), so no empty line appears.
        self.universal = universal
        self._skip_lf = False
        self.pid_of_creator = os.getpid()
        self.stdout = _StdoutBuffer(self, read_size)
        self.stderr_tail: OutputBuffer | None = None
        self.stderr_sink: Sink
        if relay_stderr:
            self.stderr_sink = _StderrRelay(self._output_seen)
        else:
            keeper = _StderrKeeper(self._output_seen)
            self.stderr_sink, self.stderr_tail = keeper, keeper.buffer
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
        self.command = ""  # as messages show it (set at launch)
        self.observer: CommandObserver | None = None  # log records and span (idle_timeout)
        # Set when idle_timeout stopped the child: raised by the reads that find output ended.
        self.idle_error: ProcessTimeoutError | None = None

    # -- the supervisor ---------------------------------------------------------------------

    async def supervise(self) -> None:
        """Move output until the child exits (or :meth:`finish` stops this), then tell waiters.

        With ``idle_timeout``, a child that writes nothing on stdout or stderr for that long is
        stopped with its stop policy; the reads that find its output ended then raise
        :attr:`idle_error`.
        """
        session = self.session
        assert session is not None
        idle = self.options.idle_timeout
        ending = "exit"
        try:
            with anyio.CancelScope() as self._scope:
                if self._stop_requested:
                    self._scope.cancel()
                if idle is None:
                    await session.run_to_exit()
                else:
                    sinks = (self.stdout, self.stderr_sink)
                    watch = Watch(None, idle, lambda: sum(sink.size for sink in sinks))
                    ending = await watch_until_exit(session, watch)
                if ending == "exit":
                    self.exited.set()
        finally:
            self.supervisor_done.set()
            self.output_changed()
        if ending == "idle" and idle is not None:
            self.idle_error = ASYNC_RUN.sync_names().idle_timed_out(
                self.command, idle, self.stdout_text(), self.stderr_text()
            )
            if self.observer is not None:
                self.observer.idled(idle)
            await self.finish(interruptible=False)

    async def _raise_idle(self, error: ProcessTimeoutError) -> NoReturn:
        """Raise the idle timeout's error once the tree it stopped is gone (its code known)."""
        await self.exited.wait()  # bounded by the kill schedule
        error.return_code = self.returncode()
        error.context["process.return_code"] = error.return_code
        raise error

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

    async def _more_output(self) -> None:
        """Wait until output arrives or ends (asking for it even past the high-water mark)."""
        session, fd = self.session, self._stdout_fd()
        if session is not None and fd is not None:
            session.resume_reader(fd)
        await self._changed.wait()

    def _consumed(self) -> None:
        session, fd = self.session, self._stdout_fd()
        if session is not None and fd is not None and len(self.stdout.data) < STDOUT_HIGH_WATER:
            session.resume_reader(fd)

    # -- read requests ----------------------------------------------------------------------

    def _decode(self, data: bytes | bytearray, offset: int | None = None) -> str:
        """``data``, consumed by a read, as text; a :class:`DecodeError` keeps the bytes."""
        try:
            return str(data, self.options.encoding, self.options.errors)
        except UnicodeError as exc:
            raise self._undecodable(exc, bytes(data), offset) from exc

    def _undecodable(self, error: UnicodeError, data: bytes, offset: int | None) -> DecodeError:
        start = error.start if isinstance(error, UnicodeDecodeError) else None
        failure = decode_error(
            error,
            stream="stdout",
            encoding=self.options.encoding,
            errors=self.options.errors,
            command=self.command,
            position=None if offset is None or start is None else offset + start,
            hint=DECODE_HINT_TEXT,
            stdout=data,
        )
        failure.result = CompletedProcess(
            args=[self.command], returncode=cast(int, self.returncode()), stdout=data, stderr=b""
        )
        return failure

    def _diagnostic(self, data: bytes | bytearray) -> str:
        """A tail (cut at any byte, read for messages): what does not decode is replaced."""
        try:
            return str(data, self.options.encoding, self.options.errors)
        except UnicodeError:
            return str(data, self.options.encoding, "replace")

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
        newline = buffer.find(b"\n", 0, limit)
        if self.universal:
            cr = buffer.find(b"\r", 0, newline if newline >= 0 else limit)
            if cr >= 0:
                if cr + 1 == len(buffer):
                    self._skip_lf = True
                    return cr, cr + 1
                return cr, cr + 2 if buffer[cr + 1] == 0x0A else cr + 1
        return None if newline < 0 else (newline, newline + 1)

    async def read_line(self, seconds: float | None) -> str:
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
                    if not buffer and self.idle_error is not None:
                        await self._raise_idle(self.idle_error)
                    rest, offset = bytes(buffer), self._offset()
                    buffer.clear()
                    return self._decode(rest, offset).removesuffix("\r")
                await self._more_output()
        raise TimeoutError(f"Read timeout after {seconds}s")

    async def read_char(self, seconds: float | None) -> str:
        with anyio.move_on_after(seconds):
            while True:
                self._drop_skipped_lf()
                if self.idle_error is not None and self.output_ended and not self.stdout.data:
                    await self._raise_idle(self.idle_error)
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
        decoder = codecs.getincrementaldecoder(self.options.encoding)(self.options.errors)
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

    async def read_piece(self, size: int) -> bytes:
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

    async def finish_line(self, matcher: PatternMatcher) -> None:
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

    async def wait_for_output(
        self, parts: list[str], seconds: float | None, piece: int, command: str
    ) -> str:
        matcher = PatternMatcher(parts, self.options.encoding)
        if matcher.matched:
            # No parts: everything expected has "appeared" before any read, so nothing is read
            # (the seed returned its first read here; SPEC: read *until* every part appeared).
            return ""
        with anyio.move_on_after(seconds):
            while True:
                data = await self.read_piece(piece)
                if not data:
                    break
                if matcher.feed(data):
                    if not data.endswith(b"\n"):
                        with anyio.move_on_after(_LINE_END_GRACE):
                            await self.finish_line(matcher)
                    matcher.feed(b"", final=True)
                    return universal_newlines(matcher.text) if self.universal else matcher.text
        matcher.feed(b"", final=True)
        if not self.output_ended:
            raise ProcessTimeoutError(
                f"Expected pattern {parts} not found within {seconds}s timeout",
                command=command,
                timeout_seconds=seconds,
                stdout=matcher.text,
                code="PROCESS_WAIT_TIMEOUT",
            )
        if self.idle_error is not None:
            await self._raise_idle(self.idle_error)
        code = await self.exit_code()
        raise ProcessError(
            f"Process exited with code {code} before the expected output appeared "
            f"(missing: {matcher.missing})",
            command=command,
            return_code=code,
            stdout=matcher.text,
            stderr=self.stderr_text() or None,
            code="PROCESS_EXITED_EARLY",
        )

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
        session = self.session
        if session is None:
            return None
        if session.returncode is not None:
            return session.returncode
        code = peek_returncode(session.pid)
        return session.returncode if code is None else code

    def stderr_text(self) -> str:
        """The last 64 KiB of stderr, relayed or not."""
        sink = self.stderr_sink
        if isinstance(sink, _StderrRelay):
            return self._diagnostic(sink.tail[-STDERR_TAIL:])
        tail = self.stderr_tail
        if tail is None:
            return ""
        try:
            return tail.decode(self.options.encoding, self.options.errors)
        except UnicodeError:  # a tail is cut at any byte: what does not decode is replaced
            return tail.decode(self.options.encoding, "replace")

    def stdout_text(self) -> str:
        """The last 64 KiB of stdout, whether or not reads consumed it."""
        return self._diagnostic(self.stdout.tail[-STDOUT_TAIL:])

    # -- readiness (the probes and their wait are procfound.services.probes) -----------------------

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

    async def wait_ready(
        self, parts: list[str] | None, probes: Sequence[Probe], seconds: float | None, command: str
    ) -> list[object]:
        """The handshake (``parts``), then every probe, under one deadline; the probes' results.

        Meanwhile stdout is read past the high-water mark (see :meth:`output_changed`).
        """
        deadline = math.inf if seconds is None else anyio.current_time() + seconds
        self._probing += 1
        session, fd = self.session, self._stdout_fd()
        if session is not None and fd is not None:
            session.resume_reader(fd)
        try:
            if parts:
                await self.wait_for_output(parts, seconds, 1024, command)
            return await wait_until_ready(self, probes, deadline, seconds, command)
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
                logger.error("managed process %s could not be stopped: %s", session.pid, exc)
                self.stopped_gracefully = False
            else:
                self.stopped_gracefully = not session.killed
            finally:
                self.finished = True
                self.exited.set()  # reaped (or given up on after SIGKILL): waiters may go
                self.stdout.eof = True
                self.output_changed()
            return self.stopped_gracefully

    async def abandon(self) -> None:
        """Its ManagedProcess was garbage-collected while the child ran: kill it now."""
        await self.finish(0.0, interruptible=False)


def _grace(timeout: object) -> float:
    """``terminate_gracefully``'s timeout as a grace period (negative: none; NaN: refused)."""
    if isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout < 0:
        return 0.0
    seconds = check_timeout(timeout)
    if seconds is None or seconds == float("inf"):
        # Bounded like every kill schedule: the tree is SIGKILLed after the grace, always.
        raise ValidationError("timeout must be a finite number of seconds", code="INVALID_TIMEOUT")
    return seconds


class ProcessHandle:
    """A launched :class:`ManagedProcess`'s child, with the part of ``Popen``'s API that the
    seed's ``ManagedProcess.process`` offered (what :attr:`ManagedProcess.process` returns).

    Signals go to the child alone (not its group, as ``Popen.send_signal``), through its pidfd,
    and are sent by the child's owner in procfound's portal: never to a pid that was reaped and
    reused. The owner also reaps the child: :meth:`wait` waits for the exit, and the process is
    reaped by :meth:`ManagedProcess.terminate_gracefully` or :meth:`ManagedProcess.cleanup`.

    Example:
        >>> with ManagedProcess(["sleep", "30"]) as proc:
        ...     proc.process.terminate()
        ...     proc.process.wait(timeout=5)
        -15
    """

    __slots__ = ("_owner", "args")

    def __init__(self, owner: _Owner, command: str) -> None:
        self._owner = owner
        self.args = command

    def __repr__(self) -> str:
        return f"<ProcessHandle pid={self.pid} returncode={self.returncode}>"

    @property
    def pid(self) -> int:
        """The child's process id."""
        session = self._owner.session
        assert session is not None
        return session.pid

    @property
    def returncode(self) -> int | None:
        """The exit code once the child has exited (``-N`` for signal N), else None."""
        return self._owner.returncode()

    def poll(self) -> int | None:
        """The exit code if the child has exited, else None; never blocks."""
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the child to exit and return its exit code.

        When it returns, the output the child wrote before it exited has been read (it is in
        ``stdout_tail`` and the buffer the reads take from).

        Args:
            timeout: Seconds to wait (None: until it exits).

        Returns:
            The exit code (``-N`` for signal N).

        Raises:
            subprocess.TimeoutExpired: If it is still running after ``timeout`` (as
                ``Popen.wait``); the child keeps running.
            ValidationError: If ``timeout`` is not a number of seconds.
            StateError: If called from procfound's portal thread, or in a process forked
                after the launch (``FORKED_PROCESS``).
        """
        seconds = check_timeout(timeout)
        self._check_not_forked()
        # The owner's exit event, not a peek at the status: it is set once the output the child
        # left in its pipes has been read too, so stdout_tail is complete when wait() returns.
        if self._owner.exited.is_set():
            code = self.returncode
        else:
            code = call_in_portal(self._owner.wait_exit, seconds)
        if code is None:
            raise subprocess.TimeoutExpired(self.args, cast(float, timeout))
        return code

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` to the child (nothing once it has exited and been reaped).

        Raises:
            ValidationError: If ``sig`` is not a signal.
            StateError: In a process forked after the launch (``FORKED_PROCESS``).
        """
        number = parse_signal(sig, "sig")
        self._check_not_forked()
        if in_portal_thread():
            submit(self._owner.send_signal, number)  # a job of its own: no nested wait
        else:
            call_in_portal(self._owner.send_signal, number)

    def _check_not_forked(self) -> None:
        if self._owner.pid_of_creator != os.getpid():
            raise StateError(
                "this process was launched before os.fork(); it belongs to the parent process, "
                "which alone can wait for it or signal it",
                code="FORKED_PROCESS",
            )

    def terminate(self) -> None:
        """Send SIGTERM to the child."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """Send SIGKILL to the child."""
        self.send_signal(signal.SIGKILL)


class ManagedProcess:
    """A long-running child: launch it, read its output, shut it down gracefully.

    The reason it exists: a host starts a plugin or helper server, waits for its handshake line
    on stdout, talks to it, and stops it cleanly, from sync code or from an asyncio or trio
    service. The child gets its own process group, so stopping it stops its whole tree.

    **Lifecycle:** :meth:`launch`, :meth:`terminate_gracefully`, :meth:`cleanup` and the ``with``
    block are sync; :meth:`alaunch`, :meth:`aterminate_gracefully`, :meth:`acleanup` and
    ``async with`` are their async forms for services (the sync ones are generated from them).

    **Reading:** :meth:`read_line_async`, :meth:`read_char_async` and
    :func:`wait_for_process_output` work from any asyncio or trio loop. The child's one owner (in
    procfound's portal) reads its stdout into one buffer and answers them from it: mixing them,
    a read that times out, or a read racing :meth:`terminate_gracefully` loses no byte. Unread
    output is kept up to 4 MiB; past that the child waits on its pipe until something is read.

    **stderr:** with ``stderr_relay=True`` (the default) the child's stderr is copied to ours as it
    arrives; otherwise it is drained (so it can never fill up and block the child) and its last
    64 KiB kept in :attr:`stderr_tail`.

    Args:
        command: Command and arguments as a list.
        cwd: Working directory.
        env: Environment variables to set on top of the current environment.
        capture_output: Pipe stdout (and stderr) to us; otherwise they are inherited.
        text_mode: Kept for compatibility; reads always return decoded text.
        bufsize: Read size in bytes for stdout reads, up to 16 MiB (0 or -1: 64 KiB).
        stderr_relay: Copy the child's stderr to ``sys.stderr`` as it arrives.
        kill_on_parent_death: Linux: SIGKILL the child if this process dies.
        **kwargs: ``encoding``, ``errors``, ``foreground``, ``stop_signal``, ``kill_grace`` (as
            for :func:`run`) and ``contain``, which defaults to ``"tree"`` here: every
            descendant, even one that daemonised, is stopped with the service.

    Example:
        >>> import anyio
        >>> with ManagedProcess(["sh", "-c", "echo ready; exec sleep 30"]) as proc:
        ...     anyio.run(proc.read_line_async)
        'ready'
    """

    def __init__(
        self,
        command: list[str],
        *,
        cwd: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        capture_output: bool = True,
        text_mode: bool = False,
        bufsize: int = 0,
        stderr_relay: bool = True,
        kill_on_parent_death: bool = False,
        **kwargs: Any,
    ) -> None:
        given: object = command  # kept as the caller passed it (Popen's args), shell or not
        if kwargs.get("shell"):  # as Popen(list, shell=True): the first element is the script
            if isinstance(given, str):
                command = [given]
            elif not isinstance(given, list) or not given:
                raise ValidationError(
                    "the command must be a non-empty list of strings", code="INVALID_COMMAND_TYPE"
                )
            command = [SHELL, "-c", *command]
        self._call = Invocation.from_call(
            "ManagedProcess()",
            command,
            # bufsize (our read size here) is checked with the other options: one check, with
            # the range in its message, before the reader could fail on it
            {
                **{name: value for name, value in kwargs.items() if name != "shell"},
                "bufsize": bufsize,
            },
            cwd=cwd,
            env=env,
            # universal_newlines=True is the seed's other name for text_mode=True
            text=bool(text_mode) or bool(kwargs.get("universal_newlines")),
            kill_on_parent_death=kill_on_parent_death,
        )
        if self._call.target("stdin") is Stdio.PIPE:
            raise ValidationError(
                "ManagedProcess cannot write to the child's stdin: pass a file, an fd or "
                "subprocess.DEVNULL as stdin, or use run(..., input=...)",
                code="INVALID_ARGUMENT",
            )
        options = self._call.options
        if options.ok_codes != frozenset({0}):
            raise ValidationError(
                "ok_codes says which exit codes check=True accepts in run() and the streams; "
                "a ManagedProcess has no check (read its returncode)",
                code="INVALID_ARGUMENT",
            )
        if options.idle_timeout is not None and not capture_output:
            raise ValidationError(
                "idle_timeout watches the output procfound reads; with capture_output=False it "
                "reads none (use timeout= in the reads, or capture the output)",
                code="INVALID_ARGUMENT",
            )
        # How the child is stopped, checked whole before anything can start (procfound.call.stop).
        self._stop = self._call.stop_policy("tree")  # services are the ones that daemonise
        self.command: list[str] | str = (
            cast("list[str] | str", given) if kwargs.get("shell") else self._call.argv
        )
        self.cwd = self._call.cwd
        self._overrides = self._call.env
        self.capture_output = capture_output
        self.text_mode = text_mode
        self.bufsize = bufsize
        self.stderr_relay = stderr_relay
        self.kill_on_parent_death = kill_on_parent_death
        self.kwargs = kwargs
        self._options = self._call.options
        self._started = False
        self._owner: _Owner | None = None
        self._handle: ProcessHandle | None = None

    def __repr__(self) -> str:
        return (
            f"ManagedProcess(command={self.command!r}, pid={self.pid}, "
            f"running={self.is_running()}, env_overrides={redacted_env(self._overrides)})"
        )

    # -- state --------------------------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        """The child's environment: ours with the overrides on top (as the seed exposes it).

        Computed on access: copying the environment on every construction cost 90 µs per
        launch (measured), and the child's environment is built by the engine anyway.
        """
        env = self._call.child_env()  # a None override removes a variable (inherit_env too)
        return dict(os.environ) if env is None else env

    def _session(self) -> ChildSession | None:
        owner = self._owner
        return None if owner is None else owner.session

    @property
    def pid(self) -> int | None:
        """The child's pid, once launched."""
        session = self._session()
        return None if session is None else session.pid

    @property
    def process(self) -> ProcessHandle | None:
        """The launched child as the seed's ``Popen`` showed it (None before :meth:`launch`).

        A :class:`ProcessHandle`: ``pid``, ``returncode``, ``poll()``, ``wait()``,
        ``send_signal()``, ``terminate()`` and ``kill()``. Its pipes are not exposed: the
        child's output belongs to this object's reads. It stays after :meth:`cleanup` (the
        seed set it to None), so the exit code can still be read.
        """
        return self._handle

    @property
    def returncode(self) -> int | None:
        """The exit code once the child has exited (``-N`` for signal N), else None."""
        owner = self._owner
        return None if owner is None else owner.returncode()

    def is_running(self) -> bool:
        """True while the child runs."""
        session = self._session()
        return (
            session is not None and session.returncode is None and not child_has_exited(session.pid)
        )

    @property
    def duration(self) -> float | None:
        """Seconds from launch to reap, once the process has been stopped or cleaned up."""
        session = self._session()
        return None if session is None else session.duration

    @property
    def rusage(self) -> ResourceUsage | None:
        """CPU time and peak memory of the child, once it has been reaped."""
        session = self._session()
        if session is None or session.rusage is None:
            return None
        return ResourceUsage.from_rusage(session.rusage)

    @property
    def stderr_tail(self) -> str:
        """The last 64 KiB of stderr (also when it is relayed)."""
        return self._owner_text(_Owner.stderr_text)

    @property
    def stdout_tail(self) -> str:
        """The last 64 KiB of stdout read from the child, whether or not a read consumed it."""
        return self._owner_text(_Owner.stdout_text)

    def _owner_text(self, text: Callable[[_Owner], str]) -> str:
        owner = self._owner
        if owner is None:
            return ""
        if in_portal_thread():
            return text(owner)
        return call_in_portal(_in_owner, text, owner)  # the owner's buffers are read in its thread

    @property
    def stdout_dropped(self) -> int:
        """Bytes of unread stdout let go while a readiness probe waited past the 4 MiB mark."""
        owner = self._owner
        return 0 if owner is None else owner.stdout.dropped

    # -- lifecycle ----------------------------------------------------------------------------

    def _claim_start(self) -> None:
        if self._started:
            raise StateError(
                "Process has already been started",
                code="PROCESS_ALREADY_STARTED",
                process_state="started",
            )
        self._started = True

    async def alaunch(self) -> None:
        """Launch the managed process.

        Raises:
            StateError: If the process was already started.
            ProcessError: If the process cannot start (the message names the missing path).
        """
        self._claim_start()
        await acall_in_portal(self._spawn)

    async def _spawn(self) -> None:
        # Runs in the portal, and records the owner itself, with no await between the spawn and
        # the record: a caller interrupted (Ctrl-C, cancellation) after the spawn still leaves a
        # launched process that cleanup can stop.
        call = self._call
        piped = Stdio.PIPE if self.capture_output else Stdio.INHERIT
        request = call.request(stdin=Stdio.DEVNULL, stdout=piped, stderr=piped)
        owner = _Owner(
            self._options,
            capture=request.stdout is Stdio.PIPE,
            relay_stderr=self.stderr_relay,
            # Popen's bufsize=-1 ("default") and 0 both mean our default read size.
            read_size=self.bufsize
            if isinstance(self.bufsize, int) and self.bufsize > 0
            else _READ_SIZE,
            universal=call.text,
            command=call.shown,
        )
        echo = self._options.print_output
        stdout: Sink = Echo(owner.stdout) if echo else owner.stdout
        stderr = owner.stderr_sink
        if echo and isinstance(stderr, _StderrKeeper):  # relayed stderr is shown already
            stderr = Echo(stderr)
        owner.command = call.shown
        owner.observer = call.observer(self._stop)
        try:
            owner.session = ChildSession(
                request, self._stop, stdout=stdout, stderr=stderr, observer=owner.observer
            )
        except SpawnError as exc:
            raise ProcessError(
                f"Failed to launch process: {exc.reason}",
                command=self.command,
                code="PROCESS_LAUNCH_FAILED",
                path=exc.filename,
            ) from exc.os_error
        self._owner = owner
        self._handle = ProcessHandle(owner, command_text(self.command))
        _live.add(self)
        try:
            submit(owner.supervise)
        except BaseException:
            owner.supervisor_done.set()  # nothing supervises it; cleanup still stops it
            raise

    async def aterminate_gracefully(
        self, timeout: float = DEFAULT_PROCESS_TERMINATE_TIMEOUT
    ) -> bool:
        """Stop the process tree: SIGTERM to its group, wait up to ``timeout``, then SIGKILL.

        Cancelling it (or Ctrl-C in the sync form) cuts the grace short: the tree is SIGKILLed
        before the cancellation propagates.

        Args:
            timeout: Seconds to wait after SIGTERM before SIGKILL.

        Returns:
            True if the process had ended or ended within ``timeout``; False if it had to be
            killed (or could not be killed at all).

        Raises:
            ValidationError: If ``timeout`` is not a number of seconds.
        """
        grace = _grace(timeout)
        owner = self._owner
        if owner is None:
            return True
        try:
            return await acall_in_portal(owner.finish, grace)
        finally:
            _live.discard(self)

    async def acleanup(self) -> None:
        """Close everything; a child still running is stopped first. Safe to call twice."""
        owner = self._owner
        if owner is not None and not owner.finished:
            await acall_in_portal(owner.finish)
        _live.discard(self)

    launch = make_sync(alaunch, "launch")
    terminate_gracefully = make_sync(aterminate_gracefully, "terminate_gracefully")
    cleanup = make_sync(acleanup, "cleanup")

    def __enter__(self) -> ManagedProcess:
        self.launch()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.terminate_gracefully()
        finally:
            self.cleanup()

    async def __aenter__(self) -> ManagedProcess:
        await self.alaunch()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with anyio.CancelScope(shield=True):
            try:
                await self.aterminate_gracefully()
            finally:
                await self.acleanup()

    def __del__(self) -> None:
        owner = getattr(self, "_owner", None)
        if owner is None or owner.finished or owner.pid_of_creator != os.getpid():
            return
        # Whether it still runs is decided first: the kill below may win the race with this
        # check (the portal thread runs it at once) and the warning would be lost.
        session = owner.session
        running = session is not None and not child_has_exited(session.pid)
        # The owner stops it, in its own loop (at interpreter exit the exit path does). Asked
        # before the warning, which a strict warnings filter turns into an exception.
        with contextlib.suppress(Exception):
            submit(owner.abandon)
        if running:
            assert session is not None
            warnings.warn(
                f"ManagedProcess {self.command!r} (pid {session.pid}) was garbage-collected "
                "while running; it is being killed. Use it as a context manager or call "
                "terminate_gracefully().",
                ResourceWarning,
                stacklevel=2,
            )

    # -- reading (requests to the owner) ------------------------------------------------------

    def _reader(self) -> _Owner:
        owner = self._owner
        if owner is None or owner.finished or not owner.capture:
            raise ProcessError(
                "Process not running or stdout not available", code="PROCESS_NO_STDOUT"
            )
        return owner

    async def read_line_async(self, timeout: float = DEFAULT_PROCESS_READLINE_TIMEOUT) -> str:
        """Read one line of stdout, without its line ending.

        Args:
            timeout: Seconds to wait for a whole line (None: no limit).

        Returns:
            The line; at end of output the last partial line, then "".

        Raises:
            TimeoutError: If no whole line arrived in time (nothing read is lost).
            ProcessError: If the process is not running with stdout piped.
            DecodeError: If the line does not decode (possible with ``errors="strict"``); it is
                consumed, and ``.result.stdout`` holds its bytes.
            ValidationError: If ``timeout`` is not a number of seconds.
        """
        seconds = check_timeout(timeout)
        return await acall_in_portal(self._reader().read_line, seconds)

    async def read_char_async(self, timeout: float = DEFAULT_PROCESS_READCHAR_TIMEOUT) -> str:
        """Read one character of stdout, decoded in the process's ``encoding``.

        Args:
            timeout: Seconds to wait (None: no limit).

        Returns:
            The character, or "" at end of output.

        Raises:
            TimeoutError: If nothing arrived in time (nothing read is lost).
            ProcessError: If the process is not running with stdout piped.
            DecodeError: If the bytes do not decode (possible with ``errors="strict"``); they are
                consumed, and ``.result.stdout`` holds them.
            ValidationError: If ``timeout`` is not a number of seconds.
        """
        seconds = check_timeout(timeout)
        return await acall_in_portal(self._reader().read_char, seconds)

    # -- readiness (probes run in the owner: procfound.services.probes) ----------------------------

    async def await_ready(
        self,
        output: str | Sequence[str] | None = None,
        port: int | tuple[str, int] | None = None,
        http: str | None = None,
        path: str | os.PathLike[str] | None = None,
        timeout: float | None = DEFAULT_PROCESS_WAIT_TIMEOUT,
    ) -> None:
        """Wait until the service is ready: every given probe succeeds, under one deadline.

        In order: ``output`` (as :func:`wait_for_process_output`: the handshake is consumed from
        stdout), then ``port`` (:func:`~procfound.wait_for_port`), ``http``
        (:func:`~procfound.wait_for_http`, any 2xx or 3xx) and ``path``
        (:func:`~procfound.wait_for_path`). ``timeout`` covers all of them. The wait ends at once
        when the process exits. No probe at all returns at once.

        While it waits, stdout keeps being read even past the 4 MiB of unread output normally
        buffered: the oldest unread output beyond that is let go (whole lines where possible)
        and counted in :attr:`stdout_dropped`; the last 64 KiB stay in :attr:`stdout_tail`.

        Args:
            output: A string, or a list of strings, that must all appear in stdout.
            port: A TCP port on 127.0.0.1 that must accept a connection, or a
                ``(host, port)`` pair (``("::1", 8080)``).
            http: An ``http://`` URL that must answer a GET with a 2xx or 3xx status.
            path: A path (a unix socket, a pid file) that must exist.
            timeout: Seconds for all of them together (None: no limit).

        Raises:
            ValidationError: If a probe's argument or ``timeout`` is not acceptable.
            ProcessError: If the process exits first (code ``PROCESS_EXITED_EARLY``, with its
                return code and output tails), if a process outside its tree answers a probe
                (code ``PROBE_ANSWERED_BY_OTHER``), or if it is not running.
            ProcessTimeoutError: If it was not ready in time (a ``TimeoutError``).

        Example:
            >>> import anyio
            >>> with ManagedProcess(["sh", "-c", "echo ready; exec sleep 30"]) as proc:
            ...     anyio.run(proc.await_ready, "ready")
        """
        parts = (
            None
            if output is None
            else _expected_parts([output] if isinstance(output, str) else output)
        )
        probes = probes_for(port, http, path)
        seconds = check_timeout(timeout)
        if not parts and not probes:
            return
        await self._await_probes(probes, seconds, parts)

    wait_ready = make_sync(await_ready, "wait_ready")

    async def _await_probes(
        self, probes: Sequence[Probe], seconds: float | None, parts: list[str] | None = None
    ) -> list[object]:
        """Run the readiness wait in the owner; the probes' results (procfound.services.probes)."""
        owner = self._reader() if parts else self._prober()
        return await acall_in_portal(
            owner.wait_ready, parts, probes, seconds, command_text(self.command)
        )

    def _prober(self) -> _Owner:
        owner = self._owner
        if owner is None or owner.finished:
            raise ProcessError(
                "Process not running: launch it before waiting for it to be ready",
                code="PROCESS_NOT_RUNNING",
            )
        return owner


async def _in_owner(text: Callable[[_Owner], str], owner: _Owner) -> str:
    return text(owner)


def _expected_parts(expected_parts: object) -> list[str]:
    if isinstance(expected_parts, str | bytes) or not isinstance(expected_parts, Sequence):
        raise ValidationError(
            "expected_parts must be a list of strings (a bare string would match each of its "
            f"characters); got {type(expected_parts).__name__}",
            code="INVALID_ARGUMENT",
        )
    parts = list(expected_parts)
    for part in parts:
        if not isinstance(part, str):
            raise ValidationError(
                f"every expected part must be a str, got {type(part).__name__}",
                code="INVALID_ARGUMENT",
            )
    return parts


async def wait_for_process_output(
    process: ManagedProcess,
    expected_parts: list[str],
    timeout: float = DEFAULT_PROCESS_WAIT_TIMEOUT,
    buffer_size: int = 1024,
) -> str:
    """Wait until every string in ``expected_parts`` has appeared in the process's stdout.

    Reads stdout until each part occurs somewhere in what was read, in any order, e.g. the parts
    of a go-plugin handshake ``1|6|tcp|127.0.0.1:4242|grpc``. Works under asyncio and trio; the
    waiting happens in the child's owner, which keeps reading the child's output meanwhile.

    Args:
        process: The launched process to read from.
        expected_parts: Strings that must all appear (an empty list matches at once).
        timeout: Seconds to wait for them (None: no limit).
        buffer_size: Bytes per read.

    Returns:
        The output read while waiting, through the end of the line that completed the match;
        what came after it stays buffered for :meth:`ManagedProcess.read_line_async`.

    Raises:
        ValidationError: If ``process`` is not a ManagedProcess, ``expected_parts`` is not a list
            of strings, or ``timeout`` or ``buffer_size`` is not a number.
        ProcessTimeoutError: If the parts did not all appear in time (it is a ``TimeoutError``);
            it carries what was read.
        ProcessError: If the process ended its output (exited) before they appeared.

    Example:
        >>> import anyio
        >>> with ManagedProcess(["sh", "-c", "echo '1|6|tcp|x|grpc'; exec sleep 30"]) as p:
        ...     anyio.run(wait_for_process_output, p, ["tcp", "grpc"])
        '1|6|tcp|x|grpc\\n'
    """
    if not isinstance(process, ManagedProcess):
        raise ValidationError(
            f"process must be a ManagedProcess, not {type(process).__name__}",
            code="INVALID_ARGUMENT",
        )
    parts = _expected_parts(expected_parts)
    seconds = check_timeout(timeout)
    if isinstance(buffer_size, bool) or not isinstance(buffer_size, int):
        raise ValidationError("buffer_size must be a number of bytes", code="INVALID_ARGUMENT")
    owner = process._reader()
    return await acall_in_portal(
        owner.wait_for_output, parts, seconds, max(1, buffer_size), command_text(process.command)
    )


def _stop_all_at_exit() -> None:
    for process in list(_live):
        with contextlib.suppress(Exception):
            process.cleanup()


def _forget_after_fork() -> None:
    # The children in the registry are the parent's: a forked child must neither wait on their
    # owners (they live in the parent's portal thread) nor kill them when it exits.
    for process in list(_live):
        process._owner = None
    _live.clear()


register_shutdown_hook(_stop_all_at_exit)
os.register_at_fork(after_in_child=_forget_after_fork)
