"""ManagedProcess: a long-running child with a sync or async lifecycle, a thin facade over the
child's owner.

The owner (:class:`procfound.engine.owner.ChildOwner`) lives in procfound's portal loop and
alone reads, signals and reaps the child (its module docstring says why). Every method here
checks its arguments, then asks the owner through the portal (``acall_in_portal`` from a
caller's loop, ``call_in_portal`` from sync code). Its parts: the reads and the readiness waits
are :mod:`procfound.services.reading` (the probes :mod:`procfound.services.probes`); writing and
``expect`` :mod:`procfound.services.talking`; the module-level waits (``wait_for_process_output``,
``wait_for_port``...) :mod:`procfound.services.waits`; the child as ``Popen`` showed it
:mod:`procfound.services.handle`; the stop at interpreter exit :mod:`procfound.services.registry`.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final, cast

import anyio

from procfound.bridge.portal import in_portal_thread, submit
from procfound.bridge.sync import acall_in_portal, call_in_portal, make_sync
from procfound.call.invocation import Invocation
from procfound.call.options import SHELL, redacted_env
from procfound.engine.owner import DEFAULT_READ_SIZE, ChildOwner
from procfound.engine.session import ChildSession
from procfound.engine.spawn import SpawnError, Stdio
from procfound.engine.waiting import child_has_exited
from procfound.errors import ProcessError, StateError, ValidationError, command_text
from procfound.services.handle import ProcessHandle
from procfound.services.reading import (
    DEFAULT_PROCESS_READCHAR_TIMEOUT,
    DEFAULT_PROCESS_READLINE_TIMEOUT,
    DEFAULT_PROCESS_WAIT_TIMEOUT,
    Reading,
    await_probes,
)
from procfound.services.registry import track, untrack
from procfound.services.talking import StdinFile, Talking, _Conversation, open_talk
from procfound.services.wording import OwnerWording as _Wording
from procfound.services.wording import grace_seconds
from procfound.usage import ResourceUsage

__all__ = [
    "DEFAULT_PROCESS_READCHAR_TIMEOUT",
    "DEFAULT_PROCESS_READLINE_TIMEOUT",
    "DEFAULT_PROCESS_TERMINATE_TIMEOUT",
    "DEFAULT_PROCESS_WAIT_TIMEOUT",
    "ManagedProcess",
    "ProcessHandle",
    "await_probes",
]

DEFAULT_PROCESS_TERMINATE_TIMEOUT: Final = 7.0


class ManagedProcess(Reading, Talking):
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

    **Talking:** with ``stdin=subprocess.PIPE`` (or ``pty=True``, a terminal of ``pty_size``),
    :meth:`write`, :meth:`expect`, :meth:`close_stdin` and :meth:`resize`, and their async forms.

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
        options = self._call.options
        if options.ok_codes != frozenset({0}):
            raise ValidationError(
                "ok_codes says which exit codes check=True accepts in run() and the streams; "
                "a ManagedProcess has no check (read its returncode)",
                code="INVALID_ARGUMENT",
            )
        if options.pty and not capture_output:
            raise ValidationError(
                "pty=True makes the terminal the child's stdout, which procfound reads for the "
                "reads and expect(): drop capture_output=False (print_output=True shows it)",
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
        self._owner: ChildOwner | None = None
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
        ``send_signal()``, ``terminate()`` and ``kill()``, and with ``stdin=PIPE`` a ``stdin``
        file that writes as :meth:`write` does. Its output pipes are not exposed: the child's
        output belongs to this object's reads. It stays after :meth:`cleanup` (the seed set it
        to None), so the exit code can still be read.
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
        return self._owner_text(ChildOwner.stderr_text)

    @property
    def stdout_tail(self) -> str:
        """The last 64 KiB of stdout read from the child, whether or not a read consumed it."""
        return self._owner_text(ChildOwner.stdout_text)

    def _owner_text(self, text: Callable[[ChildOwner], str]) -> str:
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
        observer = call.observer(self._stop)
        owner = ChildOwner(
            _Wording(self._options, call.shown, command_text(self.command)),
            encoding=self._options.encoding,
            decode_errors=self._options.errors,
            idle_timeout=self._options.idle_timeout,
            capture=request.stdout is Stdio.PIPE,
            relay_stderr=self.stderr_relay,
            # Popen's bufsize=-1 ("default") and 0 both mean our default read size.
            read_size=self.bufsize
            if isinstance(self.bufsize, int) and self.bufsize > 0
            else DEFAULT_READ_SIZE,
            universal=call.text,
            on_idle=None if observer is None else observer.idled,
        )
        stdout, stderr = owner.sinks(echo=self._options.print_output)
        try:
            owner.session = ChildSession(
                request,
                self._stop,
                stdout=stdout,
                stderr=stderr,
                observer=observer,
                keep_stdin=True,
            )
        except SpawnError as exc:
            raise ProcessError(
                f"Failed to launch process: {exc.reason}",
                command=self.command,
                code="PROCESS_LAUNCH_FAILED",
                path=exc.filename,
            ) from exc.os_error
        self._owner = owner
        terminal = request.terminal is not None
        talk = open_talk(owner, owner.session.take_stdin(), terminal=terminal)
        self._conversation = _Conversation(
            owner, talk, self.command, self._options.encoding, terminal=terminal
        )
        stdin = None if talk.writer is None else StdinFile(self._conversation)
        self._handle = ProcessHandle(owner, command_text(self.command), stdin)
        track(self)
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
        grace = grace_seconds(timeout)
        owner = self._owner
        if owner is None:
            return True
        try:
            return await acall_in_portal(owner.finish, grace)
        finally:
            untrack(self)

    async def acleanup(self) -> None:
        """Close everything; a child still running is stopped first. Safe to call twice."""
        owner = self._owner
        if owner is not None and not owner.finished:
            await acall_in_portal(owner.finish)
        untrack(self)

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

    def _disown(self) -> None:
        """In a forked interpreter: the child is the parent's (procfound.services.registry)."""
        self._owner = None
        self._conversation = None


async def _in_owner(text: Callable[[ChildOwner], str], owner: ChildOwner) -> str:
    return text(owner)
