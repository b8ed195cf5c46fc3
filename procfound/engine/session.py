"""One running child from spawn to reap: moving its bytes, noticing its exit, the one kill path.

A :class:`ChildSession` owns the child's pipes, its readiness set and its pid. Callers drive it
with :meth:`ChildSession.step` (wait once, move what is ready) and always end it with
:meth:`ChildSession.finish`, the only place a child is signalled, reaped or has its fds closed:
timeouts, cancellation, Ctrl-C and errors all end there. Whatever it has to wait for, it waits
for shielded and within the kill schedule's bound.

Every open session is in one registry (:mod:`procfound.engine.handoff`), which kills, reaps
and closes what still runs at interpreter exit and disowns the sessions a forked child inherits.
The steps of the kill path below :meth:`ChildSession.finish` are its mixin
:class:`~procfound.engine.ending.KillPath`.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
from typing import Any, Final, Protocol

import anyio

from procfound.engine.buffers import InputFeeder, OutputBuffer
from procfound.engine.ending import KillPath, UnkillableChildError
from procfound.engine.handoff import (
    close_all_sessions,
    handed_off,
    open_sessions,
    reap_stragglers,
    unreaped,
)
from procfound.engine.kill import KillSchedule, StopPolicy
from procfound.engine.spawn import Child, SpawnRequest, spawn, spawn_error
from procfound.engine.terminal import (
    TerminalOutput,
    end_of_input,
    hand_over_long_lines,
    set_size,
)
from procfound.engine.waiting import ReadinessSet, child_has_exited, open_readiness_set

__all__ = [
    "ChildSession",
    "DisownedSessionError",
    "Observer",
    "Sink",
    "UnkillableChildError",
    "close_all_sessions",
]

# After the direct child exits, pipes still open belong to a grandchild. Its group is killed and
# given this long to let go of them; a grandchild that escaped the group (setsid) is abandoned.
EXIT_DRAIN_GRACE: Final = 0.25

EOF_EXIT_SPIN: Final = 50e-6

_DEFAULT_POLICY: Final = StopPolicy()


class Observer(Protocol):
    """Watches a session's start and end (log records, spans: :mod:`procfound.call.observe`).

    ``started`` is called once the child runs; ``ended`` once, when :meth:`ChildSession.finish`
    is over (reaped, or given up on). Neither may raise.
    """

    def started(self, session: ChildSession) -> None: ...

    def ended(self, session: ChildSession) -> None: ...


class Sink(Protocol):
    """Where bytes read from one pipe go (an OutputBuffer, the stream's chunk list...).

    ``fill_from`` reads what the non-blocking ``fd`` has now (a bounded amount) and returns True
    at end of file; ``size`` counts the bytes read so far, so the session can tell whether a
    read moved anything.
    """

    size: int

    def fill_from(self, fd: int) -> bool: ...


class DisownedSessionError(RuntimeError):
    """A session opened before ``os.fork()`` was used in the child: it belongs to the parent."""


def _exit_follows_eof(pid: int, pidfd: int | None) -> bool:
    """Right after one of the child's pipes hit EOF: has it exited, waiting a few microseconds?

    A child closes its fds on the way out a moment before it becomes a zombie. Waiting up to
    :data:`EOF_EXIT_SPIN` seconds for that saves one trip through the event loop per pipe.
    The wait sleeps in ``select`` on the pidfd rather than spinning: the exiting child often
    shares our CPU (its exit is what woke us), and a spin would keep it from finishing.
    """
    if pidfd is not None:
        with contextlib.suppress(OSError, ValueError):
            return bool(select.select((pidfd,), (), (), EOF_EXIT_SPIN)[0])
    give_up = time.perf_counter() + EOF_EXIT_SPIN
    while not child_has_exited(pid):
        if time.perf_counter() > give_up:
            return False
    return True


def _abandon(child: Child) -> None:
    """Undo a spawn whose session could not be set up: kill, reap, close its fds."""
    with contextlib.suppress(OSError):
        if child.pgid is not None:
            os.killpg(child.pgid, signal.SIGKILL)
    with contextlib.suppress(OSError):  # the child itself, even if it has left the group
        if child.pidfd is not None:
            signal.pidfd_send_signal(child.pidfd, signal.SIGKILL)
        else:
            os.kill(child.pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(child.pid, 0)
    for fd in (child.stdin, child.stdout, child.stderr, child.pidfd):
        if fd is not None:
            os.close(fd)


class ChildSession(KillPath):
    """A spawned child, its pipes and the sinks its output goes to."""

    __slots__ = (
        "__weakref__",
        "_disowned",
        "_feeder",
        "_held",
        "_observer",
        "_paused",
        "_readers",
        "_readiness",
        "_stdin",
        "child",
        "schedule",
        "started_at",
    )

    def __init__(
        self,
        request: SpawnRequest,
        policy: StopPolicy = _DEFAULT_POLICY,
        *,
        stdout: Sink | None = None,
        stderr: Sink | None = None,
        input: bytes | None = None,
        keep_stdin: bool = False,
        observer: Observer | None = None,
    ) -> None:
        """Spawn the child (raises :class:`~procfound.engine.spawn.SpawnError`).

        Args:
            request: What to start. Pipes are made for the streams it marks ``PIPE``.
            policy: How the tree is stopped (checked by the caller, read here as it is): the
                containment level the child starts in, the stop signal and the grace.
            stdout: Where stdout goes, when piped (an :class:`OutputBuffer` if None).
            stderr: Where stderr goes, like ``stdout``.
            input: Bytes for stdin, when stdin is piped; stdin is closed once they are written.
                With a terminal (``request.terminal``) they are followed by the terminal's
                end of file; with None its input stays open (``child.stdin``, for a writer).
            keep_stdin: Without ``input``, keep our end of the stdin pipe open for the caller,
                who takes it over with :meth:`take_stdin` (a ManagedProcess's writer).
            observer: Told when the child has started and when the session has ended.
        """
        if unreaped or handed_off:
            reap_stragglers()
        started_at = time.monotonic()
        child = spawn(request, policy.contain)
        # From here on the child must reach finish(): nothing below may raise before the caller
        # has the session, except building the readiness set, which is cleaned up here.
        try:
            readiness = open_readiness_set(child.pid, child.pidfd)
        except BaseException as exc:
            _abandon(child)
            if isinstance(exc, OSError):  # EMFILE: the pidfd took the last free fd
                raise spawn_error(exc, request.argv[0], request.cwd) from exc
            raise
        self._readiness: ReadinessSet = readiness
        self.child: Child = child
        self.returncode: int | None = None
        self.killed = False  # True once the kill schedule had to use SIGKILL
        self.rusage: Any = None  # resource.struct_rusage from os.wait4, once reaped
        self.started_at = started_at
        self.ended_at: float | None = None
        self._exited = False
        self._disowned = False
        # The caller's stop signal and grace; finish() follows it unless given another.
        self.schedule = policy.schedule
        self._box_ended = False
        self._polite_until: float | None = None  # when the polite step's grace ends
        self._paused: set[int] = set()
        self._readers: dict[int, Sink] = {}
        # A terminal's master, read to its end but kept open until the session closes: its
        # last close hangs the terminal up, and the kernel sends SIGHUP to the child's session.
        # The end (EIO) comes when the child has closed its side, which a program may do well
        # before it exits (GNU cat closes 0, 1 and 2, then runs its exit handlers): closing
        # the master then killed it with SIGHUP instead of letting it exit with its own code.
        self._held: list[int] = []
        if child.terminal and input is not None and child.stdin is not None:
            input = hand_over_long_lines(child.stdin, input)
            input += end_of_input(child.stdin, input)  # (cannot raise)
        self._feeder = InputFeeder(input or b"")
        self._stdin = child.stdin
        try:
            for fd, sink in ((child.stdout, stdout), (child.stderr, stderr)):
                if fd is None:
                    continue
                reader: Sink = sink if sink is not None else OutputBuffer()
                self._readers[fd] = TerminalOutput(reader) if child.terminal else reader
                self._readiness.add_reader(fd)
            if self._stdin is not None and not (keep_stdin and self._feeder.done):
                if self._feeder.done:
                    if not child.terminal:  # a terminal's input stays open for a writer
                        self._close_stdin()
                else:
                    self._readiness.add_writer(self._stdin)
        except BaseException as exc:
            self.close_now()
            if isinstance(exc, OSError):
                raise spawn_error(exc, request.argv[0], request.cwd) from exc
            raise
        open_sessions[id(self)] = self
        self._observer = observer
        if observer is not None:
            observer.started(self)

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.child.pid

    @property
    def duration(self) -> float | None:
        """Seconds from spawn to reap (monotonic), once reaped."""
        return None if self.ended_at is None else self.ended_at - self.started_at

    @property
    def exited(self) -> bool:
        """True once the child has exited (it may not be reaped yet)."""
        return self._exited

    @property
    def readiness_fd(self) -> int | None:
        """An fd that is readable while :meth:`step` has something to do at once (the
        readiness set's epoll), or None where there is none; None once the session is closed."""
        return None if self.closed or self._disowned else self._readiness.fileno()

    # -- moving bytes -------------------------------------------------------------------------

    async def step(self) -> bool:
        """Wait until something is ready, then move it. Returns True once the child has exited."""
        if self._exited:
            return True
        if self._disowned:
            raise DisownedSessionError("this child belongs to the process that forked us")
        ready = await self._readiness.wait()
        open_pipes = len(self._readers)
        for fd in ready.readable:
            self._read(fd)
        for fd in ready.writable:
            self._write(fd)
        if ready.exited:
            self._exited = True
        elif len(self._readers) < open_pipes:
            # A pipe hit EOF: most often the child is exiting and closing its fds. Looking for
            # the exit right away saves a trip through the event loop per remaining pipe.
            self._exited = _exit_follows_eof(self.pid, self.child.pidfd)
        return self._exited

    async def run_to_exit(self) -> None:
        """Move bytes until the child exits, then drain what it left in the pipes."""
        while not await self.step():
            pass
        await self.drain()

    async def drain(self) -> None:
        """After exit: read what is left; kill the group if a grandchild still holds a pipe."""
        if self._disowned:
            return
        self._close_stdin()
        for fd in list(self._paused):
            self.resume_reader(fd)
        for fd in list(self._readers):
            self._read_all(fd)
        if not self._readers:
            return
        self._signal_group(signal.SIGKILL)
        # contain="tree": the holders may have left the group; stop them (bounded, shielded)
        # so the pipes close now rather than being let go after the grace.
        await self._end_box(self.schedule)
        with anyio.move_on_after(EXIT_DRAIN_GRACE):
            while self._readers:
                ready = await self._readiness.wait()
                for fd in ready.readable:
                    self._read(fd)
        for fd in list(self._readers):  # an escapee (setsid) still holds it: let it go
            self._close_reader(fd)

    def _read(self, fd: int) -> None:
        sink = self._readers.get(fd)
        if sink is not None and sink.fill_from(fd):
            self._close_reader(fd, hold=self.child.terminal)

    def _read_all(self, fd: int) -> None:
        # fill_from stops after a bounded amount; after exit nothing else competes for the loop.
        while fd in self._readers:
            before = self._bytes_marker(fd)
            self._read(fd)
            if fd in self._readers and self._bytes_marker(fd) == before:
                return

    def _bytes_marker(self, fd: int) -> int:
        sink = self._readers.get(fd)
        return -1 if sink is None else sink.size

    def pause_reader(self, fd: int) -> None:
        """Stop reading ``fd`` for now (its reader has enough): the pipe is the back-pressure."""
        if fd in self._readers and fd not in self._paused:
            self._readiness.remove(fd)
            self._paused.add(fd)

    def resume_reader(self, fd: int) -> None:
        """Read ``fd`` again after :meth:`pause_reader`."""
        if fd in self._paused:
            self._paused.discard(fd)
            self._readiness.add_reader(fd)

    def take_stdin(self) -> int | None:
        """Hand our end of the stdin pipe (kept with ``keep_stdin``, or a terminal's writer) to
        the caller, who closes it from now on; None if there is none."""
        fd, self._stdin = self._stdin, None
        return fd

    def resize_terminal(self, rows: int, cols: int) -> None:
        """With a terminal: set its size (the child's group gets SIGWINCH). Does nothing once
        both our ends of it are closed (the child has let go of it)."""
        if not self.child.terminal or self._disowned:
            return
        reader = self.child.stdout
        fd = self._stdin if self._stdin is not None else reader if reader in self._readers else None
        if fd is not None:
            set_size(fd, rows, cols)

    def _write(self, fd: int) -> None:
        if fd == self._stdin and self._feeder.write_to(fd):
            self._close_stdin()

    def _close_reader(self, fd: int, *, hold: bool = False) -> None:
        del self._readers[fd]
        if fd in self._paused:
            self._paused.discard(fd)
        else:
            self._readiness.remove(fd)
        if hold:  # a terminal's master: closed with the session (see _held)
            self._held.append(fd)
        else:
            os.close(fd)

    def _close_stdin(self) -> None:
        fd, self._stdin = self._stdin, None
        if fd is not None:
            if not self._feeder.done:
                self._readiness.remove(fd)
            os.close(fd)

    # -- ending -------------------------------------------------------------------------------

    async def finish(
        self, schedule: KillSchedule | None = None, *, interruptible: bool = False
    ) -> None:
        """End the session: stop the tree if it still runs, sweep its group, reap, close all.

        Runs shielded, so an AnyIO cancellation cannot interrupt it, and bounded by the kill
        schedule, so it cannot hang. After it returns, no fd of the session is open and the
        child is reaped, unless it outlived SIGKILL (then :class:`UnkillableChildError`).

        Whatever still interrupts it (a native asyncio ``Task.cancel()``, which AnyIO's shield
        cannot stop, as when ``asyncio.run`` finalises an abandoned stream; a ``GeneratorExit``;
        a KeyboardInterrupt raised in the loop's thread) lands in :meth:`_kill_now`, the
        synchronous last step of every kill path: SIGKILL to the group, the child and the box,
        then a reap without blocking or a hand-off to the at-exit reaper. So an interrupted
        finish still leaves no process, fd or cgroup behind.

        Args:
            schedule: The TERM→KILL schedule; the default grace is half a second.
            interruptible: A cancellation that arrives during the SIGTERM grace cuts it short:
                SIGKILL follows at once (shielded), then the cancellation propagates. For long,
                caller-chosen graces (``terminate_gracefully``), where Ctrl-C means "now".
        """
        if self._disowned or self.closed:
            return
        try:
            await self._finish(schedule or self.schedule, interruptible)
        finally:
            if not self.closed:  # cut short before the end: nothing below can be cancelled
                self._kill_now()
                self._close_all()
            observer, self._observer = self._observer, None
            if observer is not None:
                observer.ended(self)

    @property
    def closed(self) -> bool:
        """True once every fd of the session is closed (it has been finished)."""
        return id(self) not in open_sessions

    def disown(self) -> None:
        """In a forked child: close our copies of the fds, and never act on this child again."""
        self._disowned = True
        open_sessions.pop(id(self), None)
        fds = [*self._readers, *self._held, self._stdin, self.child.pidfd]
        self._readers, self._stdin, self._held = {}, None, []
        self.child.pidfd = None
        self._paused.clear()
        for fd in fds:
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        # Closing our copy of the epoll is safe; unregistering would change the parent's set.
        self._readiness.close()

    def _close_all(self) -> None:
        for fd in list(self._readers):
            self._close_reader(fd)
        held, self._held = self._held, []
        for fd in held:
            os.close(fd)
        self._close_stdin()
        self._readiness.close()
        pidfd, self.child.pidfd = self.child.pidfd, None
        if pidfd is not None:
            os.close(pidfd)
        if self.child.box is not None:
            self.child.box.close()
        open_sessions.pop(id(self), None)
