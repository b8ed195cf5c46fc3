"""ManagedProcess (a long-running child with a sync or async lifecycle) and
``wait_for_process_output`` (waiting for its handshake).

The lifecycle (launch, terminate, cleanup) runs in the shared portal through the engine's one
kill path; a supervisor task there relays stderr and notices the exit. Reads run in *the
caller's* event loop, asyncio or trio, straight on the non-blocking stdout fd, through one
buffer that ``read_line_async``, ``read_char_async`` and ``wait_for_process_output`` share, so
they can be mixed and a read that times out loses nothing (the seed's executor threads did).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import warnings
import weakref
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import anyio

from procfound.engine.buffers import OutputBuffer
from procfound.engine.kill import DEFAULT_GRACE, KillSchedule
from procfound.engine.matching import PatternMatcher
from procfound.engine.readiness import child_has_exited, peek_returncode
from procfound.engine.session import EXTERNAL, ChildSession, Sink, UnkillableChildError
from procfound.engine.spawn import SpawnError, Stdio
from procfound.errors import ProcessError, ProcessTimeoutError, StateError, command_text
from procfound.portal import register_shutdown_hook, submit
from procfound.request import (
    RunOptions,
    build_request,
    check_cwd,
    check_env,
    command_list,
    logger,
    redacted_env,
)
from procfound.sync import acall_in_portal, call_in_portal
from procfound.usage import ResourceUsage

__all__ = ["ManagedProcess", "wait_for_process_output"]

DEFAULT_PROCESS_TERMINATE_TIMEOUT: Final = 7.0
DEFAULT_PROCESS_WAIT_TIMEOUT: Final = 10.0
DEFAULT_PROCESS_READLINE_TIMEOUT: Final = 2.0
DEFAULT_PROCESS_READCHAR_TIMEOUT: Final = 1.0
STDERR_TAIL: Final = 64 * 1024
_READ_SIZE: Final = 64 * 1024
# How often a waiting read checks whether the child has exited while a grandchild keeps stdout
# open (a pipe that never reaches EOF), and how long it then waits for the last bytes.
_EXIT_CHECK: Final = 0.2
_AFTER_EXIT_GRACE: Final = 0.25
# A handshake can match before its line is complete (the writer split the line, or buffer_size
# cut it): wait this long for the rest of that line, so it is returned whole, not left behind.
_LINE_END_GRACE: Final = 0.1
_SUPERVISOR_STOP_WAIT: Final = 5.0

_live: weakref.WeakSet[ManagedProcess] = weakref.WeakSet()


class _StderrRelay:
    """A sink copying the child's stderr to ours as it arrives."""

    size = 0

    def fill_from(self, fd: int) -> bool:
        try:
            data = os.read(fd, _READ_SIZE)
        except BlockingIOError:
            return False
        if not data:
            return True
        self.size += len(data)
        stream = sys.stderr
        with contextlib.suppress(Exception):  # a closed or broken stderr must not kill the relay
            buffer = getattr(stream, "buffer", None)
            if buffer is not None:
                stream.flush()
                buffer.write(data)
                buffer.flush()
            else:
                stream.write(data.decode("utf-8", errors="replace"))
                stream.flush()
        return False


class _Supervisor:
    """The portal task that drives a session until it exits (stderr relay, exit notice).

    It holds the session, not the ManagedProcess, so an abandoned ManagedProcess can still be
    garbage-collected (and its child killed) while the supervisor runs.
    """

    def __init__(self) -> None:
        self.scope: anyio.CancelScope | None = None
        self.stop_requested = False
        self.finished = threading.Event()
        self._lock = threading.Lock()
        self._abandoned = False

    async def run(self, session: ChildSession) -> None:
        try:
            with anyio.CancelScope() as self.scope:
                if self.stop_requested:
                    self.scope.cancel()
                await session.run_to_exit()
        finally:
            with self._lock:
                self.finished.set()
                abandoned = self._abandoned
            if abandoned:  # its ManagedProcess was garbage-collected: reap and close here
                with contextlib.suppress(UnkillableChildError):
                    await session.finish()

    def abandon(self) -> bool:
        """Leave the session to this task to finish; False if the task has already ended."""
        with self._lock:
            if self.finished.is_set():
                return False
            self._abandoned = True
            return True

    async def stop(self) -> None:
        """Cancel the task (in the portal loop) and wait until it has let go of the session."""
        self.stop_requested = True
        if self.scope is not None:
            self.scope.cancel()
        # Bounded: a supervisor that never started (its portal died) must not hang the caller.
        with anyio.move_on_after(_SUPERVISOR_STOP_WAIT):
            while not self.finished.is_set():
                await anyio.sleep(0.001)


class ManagedProcess:
    """A long-running child: launch it, read its output, shut it down gracefully.

    The reason it exists: a host starts a plugin or helper server, waits for its handshake line
    on stdout, talks to it, and stops it cleanly, from sync code or from an asyncio or trio
    service. The child gets its own process group, so stopping it stops its whole tree.

    **Lifecycle:** :meth:`launch`, :meth:`terminate_gracefully`, :meth:`cleanup` and the ``with``
    block are sync; :meth:`alaunch`, :meth:`aterminate_gracefully`, :meth:`acleanup` and
    ``async with`` are their async forms for services (they run the same code in procfound's
    portal without blocking the caller's event loop).

    **Reading:** :meth:`read_line_async`, :meth:`read_char_async` and
    :func:`wait_for_process_output` run in the caller's own event loop (asyncio or trio) and share
    one buffer: mixing them, or a read that times out, loses no byte.

    **stderr:** with ``stderr_relay=True`` (the default) the child's stderr is copied to ours as it
    arrives; otherwise it is drained (so it can never fill up and block the child) and its last
    64 KiB kept in :attr:`stderr_tail`.

    Args:
        command: Command and arguments as a list.
        cwd: Working directory.
        env: Environment variables to set on top of the current environment.
        capture_output: Pipe stdout (and stderr) to us; otherwise they are inherited.
        text_mode: Kept for compatibility; reads always return decoded text.
        bufsize: Read size in bytes for stdout reads (0: 64 KiB).
        stderr_relay: Copy the child's stderr to ``sys.stderr`` as it arrives.
        kill_on_parent_death: Linux: SIGKILL the child if this process dies.
        **kwargs: ``encoding``, ``errors``, ``foreground`` (as for :func:`run`).

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
        self.command = command_list(command, shell=False)
        self.cwd = check_cwd(cwd)
        self._overrides = check_env(env)
        self.capture_output = capture_output
        self.text_mode = text_mode
        self.bufsize = bufsize
        self.stderr_relay = stderr_relay
        self.kill_on_parent_death = kill_on_parent_death
        self.kwargs = kwargs
        self._options = RunOptions.from_kwargs(kwargs)
        self._started = False
        self._session: ChildSession | None = None
        self._supervisor: _Supervisor | None = None
        self._stderr_tail: OutputBuffer | None = None
        self._buffer = bytearray()
        self._eof = False
        self._finish_lock: anyio.Lock | None = None
        self._stopped_gracefully = True  # the verdict of the first terminate, for later ones

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
        return {**os.environ, **(self._overrides or {})}

    @property
    def pid(self) -> int | None:
        """The child's pid, once launched."""
        return None if self._session is None else self._session.pid

    @property
    def returncode(self) -> int | None:
        """The exit code once the child has exited (``-N`` for signal N), else None."""
        session = self._session
        if session is None:
            return None
        if session.returncode is not None:
            return session.returncode
        return peek_returncode(session.pid)

    def is_running(self) -> bool:
        """True while the child runs."""
        session = self._session
        return (
            session is not None and session.returncode is None and not child_has_exited(session.pid)
        )

    @property
    def duration(self) -> float | None:
        """Seconds from launch to reap, once the process has been stopped or cleaned up."""
        return None if self._session is None else self._session.duration

    @property
    def rusage(self) -> ResourceUsage | None:
        """CPU time and peak memory of the child, once it has been reaped."""
        session = self._session
        if session is None or session.rusage is None:
            return None
        return ResourceUsage.from_rusage(session.rusage)

    @property
    def stderr_tail(self) -> str:
        """The last 64 KiB of stderr, when it is not relayed."""
        tail = self._stderr_tail
        return "" if tail is None else tail.decode(self._options.encoding, self._options.errors)

    # -- lifecycle ----------------------------------------------------------------------------

    def launch(self) -> None:
        """Launch the managed process.

        Raises:
            StateError: If the process was already started.
            ProcessError: If the process cannot start (the message names the missing path).
        """
        self._claim_start()
        call_in_portal(self._spawn)

    def _claim_start(self) -> None:
        if self._started:
            raise StateError(
                "Process has already been started",
                code="PROCESS_ALREADY_STARTED",
                process_state="started",
            )
        self._started = True

    async def _spawn(self) -> None:
        # Runs in the portal, and records the session itself: a caller interrupted (Ctrl-C,
        # cancellation) after the spawn still leaves a launched process that cleanup can stop.
        supervisor = _Supervisor()
        stderr: Sink
        if self.stderr_relay:
            stderr = _StderrRelay()
        else:
            stderr = self._stderr_tail = OutputBuffer(limit=STDERR_TAIL)
        request = build_request(
            self.command,
            cwd=self.cwd,
            overrides=self._overrides,
            stdin=Stdio.DEVNULL,
            capture_output=self.capture_output,
            options=self._options,
            kill_on_parent_death=self.kill_on_parent_death,
        )
        logger.debug("launch %s (env=%s)", self.command, redacted_env(self._overrides))
        try:
            session = ChildSession(request, stdout=EXTERNAL, stderr=stderr)
        except SpawnError as exc:
            raise ProcessError(
                f"Failed to launch process: {exc.reason}",
                command=self.command,
                code="PROCESS_LAUNCH_FAILED",
                path=exc.filename,
            ) from exc.os_error
        # Started from inside the portal loop with the non-blocking submit: the portal's own
        # start_task_soon is a blocking call, which trio refuses from a thread running trio.
        try:
            submit(supervisor.run, session)
        except BaseException:
            session.close_now()
            raise
        self._session, self._supervisor = session, supervisor
        _live.add(self)

    def terminate_gracefully(self, timeout: float = DEFAULT_PROCESS_TERMINATE_TIMEOUT) -> bool:
        """Stop the process tree: SIGTERM to its group, wait up to ``timeout``, then SIGKILL.

        Args:
            timeout: Seconds to wait after SIGTERM before SIGKILL.

        Returns:
            True if the process had ended or ended within ``timeout``; False if it had to be
            killed (or could not be killed at all).
        """
        if self._session is None:
            return True
        if self._session.returncode is not None:
            return self._stopped_gracefully
        return call_in_portal(self._finish, KillSchedule(grace=max(0.0, timeout)))

    async def _finish(self, schedule: KillSchedule) -> bool:
        # Runs in the portal. Serialised: a second terminate waits for the first and reports
        # its verdict, instead of driving the same session twice.
        if self._finish_lock is None:
            self._finish_lock = anyio.Lock()
        async with self._finish_lock:
            session = self._session
            if session is None:
                return True
            if session.returncode is not None:
                return self._stopped_gracefully
            if self._supervisor is not None:
                await self._supervisor.stop()
            try:
                await session.finish(schedule, interruptible=True)
            except UnkillableChildError as exc:
                logger.error("managed process %s could not be stopped: %s", session.pid, exc)
                self._stopped_gracefully = False
            else:
                self._stopped_gracefully = not session.killed
            finally:
                _live.discard(self)
            return self._stopped_gracefully

    def cleanup(self) -> None:
        """Close everything; a child still running is stopped first. Safe to call twice."""
        if self._session is not None and self._session.returncode is None:
            self.terminate_gracefully(DEFAULT_GRACE)
        _live.discard(self)

    async def alaunch(self) -> None:
        """:meth:`launch` for async code (does not block the event loop)."""
        self._claim_start()
        await acall_in_portal(self._spawn)

    async def aterminate_gracefully(
        self, timeout: float = DEFAULT_PROCESS_TERMINATE_TIMEOUT
    ) -> bool:
        """:meth:`terminate_gracefully` for async code (does not block the event loop).

        Cancelling it cuts the grace short: the tree is SIGKILLed before the cancellation
        propagates.
        """
        if self._session is None:
            return True
        if self._session.returncode is not None:
            return self._stopped_gracefully
        return await acall_in_portal(self._finish, KillSchedule(grace=max(0.0, timeout)))

    async def acleanup(self) -> None:
        """:meth:`cleanup` for async code (does not block the event loop)."""
        if self._session is not None and self._session.returncode is None:
            await self.aterminate_gracefully(DEFAULT_GRACE)
        _live.discard(self)

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
        session = getattr(self, "_session", None)
        supervisor = getattr(self, "_supervisor", None)
        if session is None or supervisor is None or session.returncode is not None:
            return
        if not child_has_exited(session.pid):
            self._warn_and_kill(session)
        # The supervisor (in the portal) reaps the child and closes the fds once it sees the exit;
        # if it has already ended, nothing waits on those fds and they are closed right here.
        if not supervisor.abandon():
            session.close_now()

    def _warn_and_kill(self, session: ChildSession) -> None:
        warnings.warn(
            f"ManagedProcess {self.command!r} (pid {session.pid}) was garbage-collected while "
            "running; it was killed. Use it as a context manager or call terminate_gracefully().",
            ResourceWarning,
            stacklevel=3,
        )
        with contextlib.suppress(OSError):
            os.killpg(session.pid, signal.SIGKILL)

    # -- reading (in the caller's loop) -------------------------------------------------------

    def _stdout_fd(self) -> int:
        session = self._session
        fd = None if session is None else session.child.stdout
        if fd is None or session is None or session.returncode is not None:
            raise ProcessError(
                "Process not running or stdout not available", code="PROCESS_NO_STDOUT"
            )
        return fd

    async def _fill(self) -> None:
        """Wait for stdout and append what it has to the buffer (sets ``_eof`` at its end)."""
        fd = self._stdout_fd()
        exited_at: float | None = None
        while True:
            size = self.bufsize if self.bufsize > 0 else _READ_SIZE
            try:
                data = os.read(fd, size)
            except BlockingIOError:
                data = None
            if data is not None:
                if data:
                    self._buffer += data
                else:
                    self._eof = True
                return
            assert self._session is not None
            if exited_at is None and child_has_exited(self._session.pid):
                exited_at = anyio.current_time()
            if exited_at is not None and anyio.current_time() - exited_at > _AFTER_EXIT_GRACE:
                # The child is gone but a grandchild keeps stdout open: there is no more output.
                self._eof = True
                return
            with anyio.move_on_after(_EXIT_CHECK if exited_at is None else 0.05):
                await anyio.wait_readable(fd)

    async def _exit_code_when_visible(self) -> int | None:
        # The pipes reach EOF as the child closes its fds on the way out, a moment before its
        # exit status exists: give that moment (bounded) rather than reporting "code None".
        with anyio.move_on_after(_AFTER_EXIT_GRACE * 4):
            while self.returncode is None and self.is_running():
                await anyio.sleep(0.005)
        return self.returncode

    def _decode(self, data: bytes | bytearray) -> str:
        return data.decode(self._options.encoding, self._options.errors)

    async def read_line_async(self, timeout: float = DEFAULT_PROCESS_READLINE_TIMEOUT) -> str:
        """Read one line of stdout, without its line ending.

        Args:
            timeout: Seconds to wait for a whole line.

        Returns:
            The line; at end of output the last partial line, then "".

        Raises:
            TimeoutError: If no whole line arrived in time (nothing read is lost).
            ProcessError: If the process is not running with stdout piped.
        """
        self._stdout_fd()
        with anyio.move_on_after(timeout):
            while True:
                end = self._buffer.find(b"\n")
                if end >= 0:
                    line = self._buffer[:end]
                    del self._buffer[: end + 1]
                    return self._decode(line).removesuffix("\r")
                if self._eof:
                    rest = bytes(self._buffer)
                    self._buffer.clear()
                    return self._decode(rest)
                await self._fill()
        raise TimeoutError(f"Read timeout after {timeout}s")

    async def read_char_async(self, timeout: float = DEFAULT_PROCESS_READCHAR_TIMEOUT) -> str:
        """Read one character of stdout (a whole UTF-8 character, however many bytes).

        Args:
            timeout: Seconds to wait.

        Returns:
            The character, or "" at end of output.

        Raises:
            TimeoutError: If nothing arrived in time (nothing read is lost).
            ProcessError: If the process is not running with stdout piped.
        """
        self._stdout_fd()
        with anyio.move_on_after(timeout):
            while True:
                if self._buffer:
                    width = _utf8_width(self._buffer[0])
                    if len(self._buffer) >= width or self._eof:
                        char = self._buffer[:width]
                        del self._buffer[:width]
                        return self._decode(char)
                elif self._eof:
                    return ""
                await self._fill()
        raise TimeoutError(f"Character read timeout after {timeout}s")

    async def _read_piece(self, size: int) -> bytes:
        """Take up to ``size`` bytes, stopping after a newline; b"" at end of output.

        Stopping at line ends lets a handshake wait consume only through the line that
        completed it, so what follows stays in the buffer for the next read.
        """
        while not self._buffer and not self._eof:
            await self._fill()
        end = self._buffer.find(b"\n", 0, size)
        take = size if end < 0 else end + 1
        data = bytes(self._buffer[:take])
        del self._buffer[:take]
        return data


def _utf8_width(lead: int) -> int:
    if lead < 0xC0:
        return 1
    if lead < 0xE0:
        return 2
    if lead < 0xF0:
        return 3
    return 4


async def wait_for_process_output(
    process: ManagedProcess,
    expected_parts: list[str],
    timeout: float = DEFAULT_PROCESS_WAIT_TIMEOUT,
    buffer_size: int = 1024,
) -> str:
    """Wait until every string in ``expected_parts`` has appeared in the process's stdout.

    Reads stdout (in the caller's event loop) until each part occurs somewhere in what was read,
    in any order, e.g. the parts of a go-plugin handshake ``1|6|tcp|127.0.0.1:4242|grpc``.

    Args:
        process: The launched process to read from.
        expected_parts: Strings that must all appear (an empty list matches at once).
        timeout: Seconds to wait for them.
        buffer_size: Bytes per read.

    Returns:
        The output read while waiting, through the end of the line that completed the match;
        what came after it stays buffered for :meth:`ManagedProcess.read_line_async`.

    Raises:
        ProcessTimeoutError: If the parts did not all appear in time (it is a ``TimeoutError``);
            it carries what was read.
        ProcessError: If the process ended its output (exited) before they appeared.

    Example:
        >>> import anyio
        >>> with ManagedProcess(["sh", "-c", "echo '1|6|tcp|x|grpc'; exec sleep 30"]) as p:
        ...     anyio.run(wait_for_process_output, p, ["tcp", "grpc"])
        '1|6|tcp|x|grpc\\n'
    """
    matcher = PatternMatcher(expected_parts, process._options.encoding)
    if matcher.matched:
        # No parts: everything expected has "appeared" before any read, so nothing is consumed
        # (the seed returned its first read here; SPEC: read *until* every part appeared).
        return ""
    size = max(1, buffer_size)
    with anyio.move_on_after(timeout):
        while True:
            data = await process._read_piece(size)
            if not data:
                break
            if matcher.feed(data):
                if not data.endswith(b"\n"):
                    with anyio.move_on_after(_LINE_END_GRACE):
                        await _finish_line(process, matcher)
                matcher.feed(b"", final=True)
                return matcher.text
    matcher.feed(b"", final=True)
    command = command_text(process.command)
    if not process._eof:
        raise ProcessTimeoutError(
            f"Expected pattern {expected_parts} not found within {timeout}s timeout",
            command=command,
            timeout_seconds=timeout,
            stdout=matcher.text,
            code="PROCESS_WAIT_TIMEOUT",
        )
    code = await process._exit_code_when_visible()
    raise ProcessError(
        f"Process exited with code {code} before the expected output appeared "
        f"(missing: {matcher.missing})",
        command=command,
        return_code=code,
        stdout=matcher.text,
        stderr=process.stderr_tail or None,
        code="PROCESS_EXITED_EARLY",
    )


async def _finish_line(process: ManagedProcess, matcher: PatternMatcher) -> None:
    while True:
        end = process._buffer.find(b"\n")
        if end >= 0:
            matcher.feed(bytes(process._buffer[: end + 1]))
            del process._buffer[: end + 1]
            return
        if process._eof:
            return
        if process._buffer:
            matcher.feed(bytes(process._buffer))
            process._buffer.clear()
        await process._fill()


def _stop_all_at_exit() -> None:
    for process in list(_live):
        with contextlib.suppress(Exception):
            process.cleanup()


def _forget_after_fork() -> None:
    # The children in the registry are the parent's: a forked child must neither wait on their
    # supervisors (they live in the parent's portal thread) nor kill them when it exits.
    for process in list(_live):
        process._session = None
        process._supervisor = None
    _live.clear()


register_shutdown_hook(_stop_all_at_exit)
os.register_at_fork(after_in_child=_forget_after_fork)
